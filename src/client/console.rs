//! The client's end of a session, shared by `exec` and the REPL. A reader task opens the
//! server's frames, answers keepalive pings, writes a command's output straight to our
//! stdout and stderr (or queues it for a [`Receiver`]: `--json`, fan-out), and queues the rest as events (a
//! bounded queue). A writer task seals what we send; a thread reads our stdin straight into
//! frame buffers for it, and is stopped when the command ends ([`super::stdin`]). Output is
//! written with blocking writes from the reader task: a slow terminal slows the reader, and
//! so the server, down (backpressure), nothing grows without bound, and no byte is copied on
//! its way from the socket to the terminal. [`RemoteConsole::run`] sends one command line
//! and waits for its exit status; [`RemoteConsole::run_pty`] does the same on a remote
//! pseudo-terminal, with our terminal in raw mode ([`super::terminal`]), typed keys passed
//! through ssh's escapes and resizes passed on. File transfer messages pass through the same
//! two tasks for [`super::transfer`], except a downloaded file's data, which the reader task
//! writes into the file the transfer lends it ([`super::intake`]). It never prints the
//! server's text but a command's own output: a Close reason is shown with its control
//! characters escaped.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use super::ClientError;
use super::intake::Intake;
use super::stdin::{StdinForwarder, StdinKind};
use super::terminal::{RawMode, window_size};
use super::transfer_msg::{Reply, Request};
use crate::framepool::FrameChunk;
use crate::proto::message::MAX_TEXT;
use crate::proto::{DataKind, ExitStatus, Message, OwnedMessage, ProtoError};
use crate::shown::shown;
use crate::transport::{SecureChannel, SecureReader, SecureWriter, TransportError};

/// How long the server may take to open the console (its first ConsoleState) once the
/// handshake is done.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long ending a session waits for the server's side to end.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

/// What we tell the user, once per session, when the server runs a pty command on pipes.
const PTY_REFUSED: &str = "seashell: PTY allocation request failed: the server runs this key's commands without a terminal";

/// What the server sent, owned.
#[derive(Debug)]
enum Event {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ExitStatus),
    State(String),
    Opened(ConsoleInfo),
    /// The command of our ExecPty runs on pipes. The reader task writes none of that
    /// command's output until the console has handled this (left raw mode) and said so
    /// through the sender.
    PtyRefused(oneshot::Sender<()>),
    Transfer(Reply),
    Closed(String),
    Failed(TransportError),
    /// Writing to our stdout or stderr failed.
    Local(std::io::Error),
}

/// Where the reader task puts a command's output (an [`AtomicU8`] shared with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Route {
    /// Written to our stdout and stderr by the reader task.
    Terminal,
    /// Queued as [`Event::Stdout`] / [`Event::Stderr`].
    Queue,
    /// Dropped: the output of a command we gave up on.
    Discard,
}

impl Route {
    fn load(shared: &AtomicU8) -> Self {
        match shared.load(Ordering::Acquire) {
            0 => Self::Terminal,
            1 => Self::Queue,
            _ => Self::Discard,
        }
    }
}

impl Event {
    /// The name of the server's message behind the event, for errors.
    fn name(&self) -> &'static str {
        match self {
            Self::Stdout(_) => "Stdout",
            Self::Stderr(_) => "Stderr",
            Self::Exit(_) => "Exit",
            Self::State(_) => "ConsoleState",
            Self::Opened(_) => "ConsoleOpened",
            Self::PtyRefused(_) => "PtyRefused",
            Self::Transfer(reply) => reply.name(),
            Self::Closed(_) => "Close",
            Self::Failed(_) | Self::Local(_) => "failure",
        }
    }
}

/// What we send.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// A message as it goes on the wire (Exec, ExecPty, WindowChange, StdinEof, Interrupt,
    /// Pong).
    Message(OwnedMessage),
    /// Read by the stdin thread straight into a frame.
    Stdin(FrameChunk),
    Transfer(Request),
    Close,
}

/// Where a command's stdin comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinSource {
    /// Our own stdin, forwarded until EOF.
    Forward,
    /// The keys typed on our terminal (in its own mode), forwarded through ssh's escapes.
    Keys,
    /// Nothing: EOF at once.
    Closed,
}

/// Which of a command's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its stdout.
    Stdout,
    /// Its stderr.
    Stderr,
}

/// What receives each piece of a command's output, as it arrives; an error ends the command
/// for us (as a failed write to our terminal does).
pub type Receiver<'a> = &'a mut (dyn FnMut(Stream, &[u8]) -> std::io::Result<()> + Send);

/// Where a command's output goes.
pub enum Sink<'a> {
    /// Straight to our stdout and stderr, as it arrives.
    Terminal,
    /// Handed, piece by piece, to a receiver (`--json`, fan-out).
    Each(Receiver<'a>),
}

/// What the server says of the console it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleInfo {
    /// The server's Unix user.
    pub user: String,
    /// Its short hostname.
    pub host: String,
    /// The user's home directory.
    pub home: String,
    /// uid 0.
    pub superuser: bool,
    /// The key is restricted: no shell, only its allowed lines.
    pub restricted: bool,
    /// The key's name in the server's authorized_keys.
    pub key_name: String,
    /// What the login shell printed.
    pub banner: Vec<u8>,
    /// Why the console starts from a plain state, if it does.
    pub warning: String,
}

/// Asks the server which names complete a word, from the line editor's thread.
pub struct RemoteCompleter {
    out: mpsc::Sender<Outgoing>,
    replies: std::sync::Mutex<mpsc::Receiver<Vec<String>>>,
    runtime: tokio::runtime::Handle,
}

/// How long Tab waits for the server's names.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(2);

impl RemoteCompleter {
    /// The names the server offers for `word` (none if it does not answer in time).
    pub fn complete(&self, word: &str, command: bool) -> Vec<String> {
        if word.len() > MAX_TEXT {
            return Vec::new();
        }
        let Ok(mut replies) = self.replies.lock() else {
            return Vec::new();
        };
        // An answer that came too late for an earlier Tab is not this one's.
        while replies.try_recv().is_ok() {}
        let request = Outgoing::Message(OwnedMessage::Complete {
            word: word.to_owned(),
            command,
        });
        self.runtime
            .block_on(async {
                self.out.send(request).await.ok()?;
                tokio::time::timeout(COMPLETION_TIMEOUT, replies.recv())
                    .await
                    .ok()
                    .flatten()
            })
            .unwrap_or_default()
    }
}

/// Sends Interrupt to a console's running command: the server sends SIGINT to its process
/// group, as for Ctrl-C in the REPL.
pub struct Interrupter(mpsc::Sender<Outgoing>);

impl Interrupter {
    /// Sends it (nothing if the session is already over).
    pub async fn interrupt(&self) {
        let _ = self
            .0
            .send(Outgoing::Message(OwnedMessage::Interrupt))
            .await;
    }
}

/// How a command ended for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server reported its status.
    Exited(ExitStatus),
    /// Interrupted twice: we stopped waiting for it (the server kills it).
    GaveUp,
    /// `~.` was typed: the user dropped the connection.
    Disconnected,
}

/// Our side of a command on a remote pseudo-terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyboard {
    /// Our stdin is a terminal: raw mode while the command runs, keys through the escapes.
    Terminal,
    /// Our stdin is not a terminal (`-tt`): its bytes are forwarded as they come.
    Stream,
}

/// A command line for a remote pseudo-terminal.
#[derive(Debug, Clone)]
pub struct PtyCommand<'a> {
    /// The line.
    pub line: &'a str,
    /// The terminal type (checked by [`super::terminal::term_type`]).
    pub term: String,
    /// Our keyboard.
    pub keyboard: Keyboard,
    /// If the server runs it on pipes after all: whether Ctrl-C then interrupts it (the
    /// REPL) or keeps its default of ending us (`exec`).
    pub interrupt_on_pipes: bool,
}

/// What a running command holds on our side, released when it ends.
struct Running {
    stdin: Option<StdinForwarder>,
    raw: Option<RawMode>,
    winch: Option<Signal>,
    /// Ctrl-C sends Interrupt (a second one within 2 s gives up).
    interruptible: bool,
    /// Sent as ExecPty, and no PtyRefused yet: one may come.
    may_be_refused: bool,
    /// What `interruptible` becomes if the server runs the command on pipes.
    interrupt_on_pipes: bool,
}

impl Running {
    /// A command on pipes.
    fn pipes(stdin: Option<StdinForwarder>, interruptible: bool) -> Self {
        Self {
            stdin,
            raw: None,
            winch: None,
            interruptible,
            may_be_refused: false,
            interrupt_on_pipes: interruptible,
        }
    }

    /// Stops the stdin thread (it reads nothing more), then restores the terminal.
    async fn release(mut self) {
        if let Some(stdin) = self.stdin.take() {
            stdin.stop().await;
        }
        drop(self.raw.take());
    }
}

/// A live session with the remote console.
pub struct RemoteConsole {
    events: mpsc::Receiver<Event>,
    out: mpsc::Sender<Outgoing>,
    writer: tokio::task::JoinHandle<()>,
    route: Arc<AtomicU8>,
    /// The last byte written to our stdout or stderr was not a newline.
    mid_line: Arc<AtomicBool>,
    cwd: String,
    /// Commands we gave up on whose remaining output must be skipped.
    abandoned: usize,
    /// The user was told that this server runs pty commands on pipes.
    told_pty_refused: bool,
    /// Completion answers, until [`RemoteConsole::completer`] takes them.
    completions: Option<mpsc::Receiver<Vec<String>>>,
    /// The first command's message, already sent with ClientAuth (see [`Self::start`]).
    sent_ahead: Option<OwnedMessage>,
    /// The server ended the session after the last command's status (its shell did not
    /// come back: `exit`, `exec`).
    over: bool,
    /// The last command's status came with its sequel: a console state (the server goes
    /// on) or a plain Close. Nothing the server sends later is about that command.
    settled: bool,
}

impl RemoteConsole {
    /// Starts the reader and writer tasks and waits (up to 30 s) for the first console
    /// state. `sent_ahead` is the message that went with ClientAuth ([`super::connect`]):
    /// the first [`Self::run`], [`Self::run_pty`] or [`Self::open`] must be the one it
    /// starts, and does not send it again.
    pub async fn start<S>(
        channel: SecureChannel<S>,
        sent_ahead: Option<Ahead>,
    ) -> Result<Self, ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (event_tx, events) = mpsc::channel(16);
        let (out, out_rx) = mpsc::channel(16);
        let (completions_tx, completions) = mpsc::channel(2);
        // Output of a command sent ahead may come before its `run`: routed already.
        let first_route = match &sent_ahead {
            Some(Ahead {
                to_terminal: true, ..
            }) => Route::Terminal,
            _ => Route::Queue,
        };
        let route = Arc::new(AtomicU8::new(first_route as u8));
        let mid_line = Arc::new(AtomicBool::new(false));
        tokio::spawn(reader_task(
            channel.reader,
            event_tx,
            out.clone(),
            Output {
                route: Arc::clone(&route),
                mid_line: Arc::clone(&mid_line),
            },
            completions_tx,
        ));
        let writer = tokio::spawn(writer_task(channel.writer, out_rx));
        let mut console = Self {
            events,
            out,
            writer,
            route,
            mid_line,
            cwd: String::new(),
            abandoned: 0,
            told_pty_refused: false,
            completions: Some(completions),
            sent_ahead: sent_ahead.map(|ahead| ahead.message),
            over: false,
            settled: false,
        };
        let first = tokio::time::timeout(START_TIMEOUT, console.next())
            .await
            .map_err(|_| ClientError::ConsoleTimeout(START_TIMEOUT.as_secs()))?;
        match first? {
            Event::State(cwd) => console.cwd = cwd,
            other => return Err(unexpected(&other)),
        }
        Ok(console)
    }

    /// What interrupts the running command from outside [`Self::run`] (fan-out's Ctrl-C).
    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.out.clone())
    }

    /// The server's current directory.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// Opens the console: the server's login shell sets the session up (on a terminal of
    /// `terminal`'s type and size, or on pipes), and the server says who and where it is.
    pub async fn open(
        &mut self,
        terminal: Option<(String, crate::proto::WindowSize)>,
    ) -> Result<ConsoleInfo, ClientError> {
        self.send_command(open_message(terminal)).await?;
        tokio::time::timeout(START_TIMEOUT, async {
            let info = match self.next().await? {
                Event::Opened(info) => info,
                other => return Err(unexpected(&other)),
            };
            match self.next().await? {
                Event::State(cwd) => self.cwd = cwd,
                other => return Err(unexpected(&other)),
            }
            Ok(info)
        })
        .await
        .map_err(|_| ClientError::ConsoleTimeout(START_TIMEOUT.as_secs()))?
    }

    /// What completes words at the prompt (once: the first call takes it).
    pub fn completer(&mut self, runtime: tokio::runtime::Handle) -> Option<RemoteCompleter> {
        Some(RemoteCompleter {
            out: self.out.clone(),
            replies: std::sync::Mutex::new(self.completions.take()?),
            runtime,
        })
    }

    /// Whether the server ended the session after the last command's status.
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// Runs one line; with `interruptible`, Ctrl-C sends an interrupt and a second Ctrl-C
    /// within 2 s stops waiting.
    pub async fn run(
        &mut self,
        line: &str,
        stdin: StdinSource,
        sink: &mut Sink<'_>,
        interruptible: bool,
    ) -> Result<Outcome, ClientError> {
        if line.len() > MAX_TEXT {
            return Err(ClientError::LineTooLong(line.len()));
        }
        self.skip_abandoned().await?;
        self.set_route(match sink {
            Sink::Terminal => Route::Terminal,
            Sink::Each(_) => Route::Queue,
        });
        self.send_command(exec_message(line)).await?;
        let stdin = match stdin {
            StdinSource::Forward => Some(
                StdinForwarder::start(self.out.clone(), StdinKind::Data)
                    .map_err(ClientError::Local)?,
            ),
            StdinSource::Keys => Some(
                StdinForwarder::start(self.out.clone(), StdinKind::Keys)
                    .map_err(ClientError::Local)?,
            ),
            StdinSource::Closed => {
                self.send(Outgoing::Message(OwnedMessage::StdinEof)).await?;
                None
            }
        };
        let mut running = Running::pipes(stdin, interruptible);
        let outcome = self.collect(sink, &mut running).await;
        running.release().await;
        outcome
    }

    /// Runs one line on a remote pseudo-terminal of our `TERM` and size: its output (one
    /// stream) goes to our stdout as it is, our stdin is forwarded, and a resize of our
    /// terminal is passed on. With [`Keyboard::Terminal`], our terminal is in raw mode until
    /// the command ends (every key goes to the command; Ctrl-C is a byte for the remote
    /// terminal), and `~.` drops the connection ([`Outcome::Disconnected`]). If the server
    /// runs it on pipes instead, the user is told once per session, raw mode ends, and the
    /// command goes on as [`Self::run`] would run it, stdin still forwarded. Once told, the
    /// session's later lines go as plain Exec: the server gives this key no terminal, and a
    /// line is better not typed in raw mode only to be read on pipes.
    pub async fn run_pty(&mut self, command: &PtyCommand<'_>) -> Result<Outcome, ClientError> {
        if command.line.len() > MAX_TEXT {
            return Err(ClientError::LineTooLong(command.line.len()));
        }
        if self.told_pty_refused {
            let stdin = match command.keyboard {
                Keyboard::Terminal => StdinSource::Keys,
                Keyboard::Stream => StdinSource::Forward,
            };
            let interrupts = command.interrupt_on_pipes;
            return self
                .run(command.line, stdin, &mut Sink::Terminal, interrupts)
                .await;
        }
        self.skip_abandoned().await?;
        self.set_route(Route::Terminal);
        self.mid_line.store(false, Ordering::Release);
        let (raw, kind) = match command.keyboard {
            Keyboard::Terminal => (
                Some(RawMode::enter().map_err(ClientError::Local)?),
                StdinKind::Keys,
            ),
            Keyboard::Stream => (None, StdinKind::Data),
        };
        let mut running = Running {
            stdin: None,
            raw,
            // Before the size is read: a resize from now on is sent after the ExecPty.
            winch: signal(SignalKind::window_change()).ok(),
            interruptible: false,
            may_be_refused: true,
            interrupt_on_pipes: command.interrupt_on_pipes,
        };
        let outcome = match self.start_pty(command, kind, &mut running).await {
            Ok(()) => self.collect(&mut Sink::Terminal, &mut running).await,
            Err(err) => Err(err),
        };
        running.release().await;
        outcome
    }

    /// Sends the ExecPty and starts forwarding our stdin.
    async fn start_pty(
        &mut self,
        command: &PtyCommand<'_>,
        kind: StdinKind,
        running: &mut Running,
    ) -> Result<(), ClientError> {
        self.send_command(exec_pty_message(command)).await?;
        running.stdin =
            Some(StdinForwarder::start(self.out.clone(), kind).map_err(ClientError::Local)?);
        Ok(())
    }

    /// The server runs the pty command on pipes: say so once, leave raw mode (as ssh does),
    /// and go on as for a command on pipes, stdin still forwarded (now line by line, as the
    /// terminal's cooked mode hands it over).
    fn pty_refused(&mut self, running: &mut Running) {
        running.may_be_refused = false;
        running.winch = None;
        drop(running.raw.take());
        running.interruptible = running.interrupt_on_pipes;
        if !self.told_pty_refused {
            self.told_pty_refused = true;
            eprintln!("{PTY_REFUSED}");
        }
    }

    /// Whether the last output written to our terminal since this was last asked left the
    /// cursor after text (not after a newline): then the REPL starts its prompt on a fresh
    /// line.
    pub fn output_ends_mid_line(&self) -> bool {
        self.mid_line.swap(false, Ordering::AcqRel)
    }

    fn set_route(&self, route: Route) {
        self.route.store(route as u8, Ordering::Release);
    }

    async fn collect(
        &mut self,
        sink: &mut Sink<'_>,
        running: &mut Running,
    ) -> Result<Outcome, ClientError> {
        let mut interrupted_at: Option<Instant> = None;
        loop {
            let event = tokio::select! {
                event = self.next() => event?,
                _ = tokio::signal::ctrl_c(), if running.interruptible => {
                    if interrupted_at.is_some_and(|t| t.elapsed() < Duration::from_secs(2)) {
                        self.abandoned += 1;
                        self.set_route(Route::Discard);
                        return Ok(Outcome::GaveUp);
                    }
                    interrupted_at = Some(Instant::now());
                    self.send(Outgoing::Message(OwnedMessage::Interrupt)).await?;
                    continue;
                }
                Some(()) = resized(&mut running.winch) => {
                    self.send(Outgoing::Message(OwnedMessage::WindowChange(window_size())))
                        .await?;
                    continue;
                }
                () = disconnect_typed(&mut running.stdin) => return Ok(Outcome::Disconnected),
            };
            match event {
                Event::Stdout(data) => sink.take(Stream::Stdout, &data)?,
                Event::Stderr(data) => sink.take(Stream::Stderr, &data)?,
                Event::PtyRefused(handled) if running.may_be_refused => {
                    self.pty_refused(running);
                    // The reader task may now write the command's output.
                    let _ = handled.send(());
                }
                Event::Exit(status) => {
                    match self.events.recv().await {
                        Some(Event::State(cwd)) => {
                            self.cwd = cwd;
                            self.settled = true;
                        }
                        // The line's shell did not come back: the session ends with it.
                        Some(Event::Closed(reason)) if reason.is_empty() => {
                            self.over = true;
                            self.settled = true;
                        }
                        Some(Event::Closed(reason)) => return Err(closed(reason)),
                        Some(Event::Failed(err)) => return Err(ClientError::Transport(err)),
                        Some(Event::Local(err)) => return Err(ClientError::Local(err)),
                        Some(_) => {}
                        None => self.over = true,
                    }
                    return Ok(Outcome::Exited(status));
                }
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// Drops the output of commands we gave up on, up to and including their console state.
    async fn skip_abandoned(&mut self) -> Result<(), ClientError> {
        while self.abandoned > 0 {
            match self.next().await? {
                Event::State(cwd) => {
                    self.cwd = cwd;
                    self.abandoned -= 1;
                }
                Event::Stdout(_) | Event::Stderr(_) | Event::Exit(_) => {}
                other => return Err(unexpected(&other)),
            }
        }
        Ok(())
    }

    /// Ends the session with an authenticated Close.
    pub async fn close(self) {
        if self.out.send(Outgoing::Close).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.writer).await;
        }
    }

    /// Ends the session with an authenticated Close, then waits (up to 2 s) for the
    /// server's side to end, for the last word on the session: a server that ended it
    /// itself, with a reason (a protocol error after a tampered frame, a shutdown), sends
    /// the hung-up command's status first and its Close after, and that Close, not the
    /// status, is how the session ended. Such a server sends no console state after that
    /// status, so when one came (or a plain Close did), there is no last word to wait
    /// for, and no round trip is spent on one: `exec` takes two after TCP's.
    pub async fn finish(mut self) -> Result<(), ClientError> {
        let _ = self.out.send(Outgoing::Close).await;
        if self.settled {
            let _ = tokio::time::timeout(FINISH_TIMEOUT, self.writer).await;
            return Ok(());
        }
        let last_word = tokio::time::timeout(FINISH_TIMEOUT, async {
            loop {
                match self.events.recv().await {
                    Some(Event::Closed(reason)) => return Some(reason),
                    Some(Event::Failed(_) | Event::Local(_)) | None => return None,
                    Some(_) => {}
                }
            }
        })
        .await;
        let _ = tokio::time::timeout(FINISH_TIMEOUT, self.writer).await;
        match last_word {
            Ok(Some(reason)) if !reason.is_empty() => Err(closed(reason)),
            _ => Ok(()),
        }
    }

    /// Sends one file-transfer message (after the output of abandoned commands).
    pub(super) async fn send_transfer(&mut self, request: Request) -> Result<(), ClientError> {
        self.skip_abandoned().await?;
        self.send(Outgoing::Transfer(request)).await
    }

    /// The next file-transfer message from the server.
    pub(super) async fn transfer_reply(&mut self) -> Result<Reply, ClientError> {
        match self.next().await? {
            Event::Transfer(reply) => Ok(reply),
            other => Err(unexpected(&other)),
        }
    }

    /// Between commands: fails if the server has already ended the session (a Close with a
    /// reason that came after the last command's status), so the REPL ends now rather than
    /// at the next line. Nothing else may come between commands, except the rest of a
    /// command we gave up on, which is left alone.
    pub fn ended_by_server(&mut self) -> Result<(), ClientError> {
        if self.abandoned > 0 {
            return Ok(());
        }
        match self.events.try_recv() {
            Ok(Event::Closed(reason)) => Err(closed(reason)),
            Ok(Event::Failed(err)) => Err(ClientError::Transport(err)),
            Ok(Event::Local(err)) => Err(ClientError::Local(err)),
            Ok(other) => Err(unexpected(&other)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(()),
            Err(mpsc::error::TryRecvError::Disconnected) => {
                Err(ClientError::Closed("connection lost".into()))
            }
        }
    }

    /// A file-transfer message from the server if one has already arrived.
    pub(super) fn try_transfer_reply(&mut self) -> Result<Option<Reply>, ClientError> {
        match self.events.try_recv() {
            Ok(Event::Transfer(reply)) => Ok(Some(reply)),
            Ok(Event::Closed(reason)) => Err(closed(reason)),
            Ok(Event::Failed(err)) => Err(ClientError::Transport(err)),
            Ok(Event::Local(err)) => Err(ClientError::Local(err)),
            Ok(other) => Err(unexpected(&other)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => {
                Err(ClientError::Closed("connection lost".into()))
            }
        }
    }

    async fn next(&mut self) -> Result<Event, ClientError> {
        match self.events.recv().await {
            Some(Event::Closed(reason)) => Err(closed(reason)),
            Some(Event::Failed(err)) => Err(ClientError::Transport(err)),
            Some(Event::Local(err)) => Err(ClientError::Local(err)),
            Some(event) => Ok(event),
            None => Err(ClientError::Closed("connection lost".into())),
        }
    }

    /// Sends a command's first message, unless it went ahead with ClientAuth. A terminal
    /// resized since then gets a WindowChange instead.
    async fn send_command(&mut self, msg: OwnedMessage) -> Result<(), ClientError> {
        let Some(ahead) = self.sent_ahead.take() else {
            return self.send(Outgoing::Message(msg)).await;
        };
        match (ahead, msg) {
            (
                OwnedMessage::ExecPty { line, term, size },
                OwnedMessage::ExecPty {
                    line: now_line,
                    term: now_term,
                    size: now_size,
                },
            ) if line == now_line && term == now_term => {
                if size == now_size {
                    Ok(())
                } else {
                    let resized = OwnedMessage::WindowChange(now_size);
                    self.send(Outgoing::Message(resized)).await
                }
            }
            (ahead, msg) if ahead == msg => Ok(()),
            _ => Err(ClientError::Transport(TransportError::Proto(
                ProtoError::Misuse("a command other than the one sent ahead"),
            ))),
        }
    }

    async fn send(&self, msg: Outgoing) -> Result<(), ClientError> {
        self.out
            .send(msg)
            .await
            .map_err(|_| ClientError::Closed("connection lost".into()))
    }
}

/// A session's first message, sent with ClientAuth ([`super::connect::connect`]'s `ahead`),
/// and whether its output goes to our terminal (else it is queued for the caller).
#[derive(Debug, Clone)]
pub struct Ahead {
    /// The message, built by [`exec_message`], [`exec_pty_message`] or [`open_message`].
    pub message: OwnedMessage,
    /// Its command's output goes straight to our stdout and stderr ([`Sink::Terminal`]).
    pub to_terminal: bool,
}

/// The Exec that [`RemoteConsole::run`] sends for `line`.
pub fn exec_message(line: &str) -> OwnedMessage {
    OwnedMessage::Exec {
        line: line.to_owned(),
    }
}

/// The ExecPty that [`RemoteConsole::run_pty`] sends for `command`, with our terminal's
/// size now.
pub fn exec_pty_message(command: &PtyCommand<'_>) -> OwnedMessage {
    OwnedMessage::ExecPty {
        line: command.line.to_owned(),
        term: command.term.clone(),
        size: window_size(),
    }
}

/// The OpenConsole that [`RemoteConsole::open`] sends for `terminal` (type and size; none:
/// pipes).
pub fn open_message(terminal: Option<(String, crate::proto::WindowSize)>) -> OwnedMessage {
    let (term, size) = terminal.unwrap_or_default();
    OwnedMessage::OpenConsole { term, size }
}

/// The error for a Close from the server (`reason` already [`shown`]).
fn closed(reason: String) -> ClientError {
    if reason.is_empty() {
        ClientError::Closed("session ended".to_owned())
    } else {
        ClientError::Closed(reason)
    }
}

/// A server message at the wrong time: a protocol error, named by the message alone.
fn unexpected(event: &Event) -> ClientError {
    ClientError::Transport(TransportError::Proto(ProtoError::Unexpected(event.name())))
}

/// Resolves when our terminal changed size; never, without a SIGWINCH listener.
async fn resized(winch: &mut Option<Signal>) -> Option<()> {
    match winch {
        Some(winch) => winch.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves when `~.` was typed; never, without a keyboard.
async fn disconnect_typed(stdin: &mut Option<StdinForwarder>) {
    match stdin {
        Some(stdin) => stdin.disconnect_typed().await,
        None => std::future::pending().await,
    }
}

impl Sink<'_> {
    /// Output queued for this sink (the reader task writes [`Sink::Terminal`]'s itself).
    fn take(&mut self, stream: Stream, data: &[u8]) -> Result<(), ClientError> {
        match self {
            Self::Terminal => Ok(()),
            Self::Each(receiver) => receiver(stream, data).map_err(ClientError::Local),
        }
    }
}

/// Our stdout and stderr, written without buffering (each write is one `write(2)`).
struct Terminal {
    stdout: File,
    stderr: File,
}

impl Terminal {
    fn open() -> std::io::Result<Self> {
        Ok(Self {
            stdout: File::from(std::io::stdout().as_fd().try_clone_to_owned()?),
            stderr: File::from(std::io::stderr().as_fd().try_clone_to_owned()?),
        })
    }
}

/// What the reader task shares with the console about a command's output.
struct Output {
    /// Where it goes.
    route: Arc<AtomicU8>,
    /// Set after each write to our terminal: whether it ended after text, not a newline.
    mid_line: Arc<AtomicBool>,
}

impl Output {
    /// Delivers a command's output as the console's [`Route`] says: written to `fd` here
    /// (an event only if that fails), queued as `queued(data)`, or dropped.
    fn deliver(&self, fd: &mut File, data: &[u8], queued: fn(Vec<u8>) -> Event) -> Option<Event> {
        match Route::load(&self.route) {
            Route::Terminal => {
                if let Some(last) = data.last() {
                    self.mid_line.store(*last != b'\n', Ordering::Release);
                }
                fd.write_all(data).err().map(Event::Local)
            }
            Route::Queue => Some(queued(data.to_vec())),
            Route::Discard => None,
        }
    }
}

async fn reader_task<R: AsyncRead>(
    mut reader: SecureReader<ReadHalf<R>>,
    events: mpsc::Sender<Event>,
    out: mpsc::Sender<Outgoing>,
    output: Output,
    completions: mpsc::Sender<Vec<String>>,
) {
    let mut terminal = match Terminal::open() {
        Ok(terminal) => terminal,
        Err(err) => {
            let _ = events.send(Event::Local(err)).await;
            return;
        }
    };
    let mut intake = Intake::default();
    loop {
        let event = match reader.recv().await {
            Ok(Message::Stdout(data)) => {
                match output.deliver(&mut terminal.stdout, data, Event::Stdout) {
                    Some(event) => event,
                    None => continue,
                }
            }
            Ok(Message::Stderr(data)) => {
                match output.deliver(&mut terminal.stderr, data, Event::Stderr) {
                    Some(event) => event,
                    None => continue,
                }
            }
            Ok(Message::Exit(status)) => Event::Exit(status),
            Ok(Message::ConsoleState { cwd }) => Event::State(cwd.to_owned()),
            Ok(Message::ConsoleOpened {
                user,
                host,
                home,
                superuser,
                restricted,
                key_name,
                banner,
                warning,
            }) => Event::Opened(ConsoleInfo {
                user: user.to_owned(),
                host: host.to_owned(),
                home: home.to_owned(),
                superuser,
                restricted,
                key_name: key_name.to_owned(),
                banner: banner.to_vec(),
                warning: warning.to_owned(),
            }),
            Ok(Message::Completions { names }) => {
                let names = names.split_terminator('\0').map(str::to_owned).collect();
                // No one waiting (a late answer) or a full queue: dropped.
                let _ = completions.try_send(names);
                continue;
            }
            Ok(Message::PtyRefused) => {
                let (handled, done) = oneshot::channel();
                if events.send(Event::PtyRefused(handled)).await.is_err() {
                    return;
                }
                // Dropped unhandled (at the wrong time) is a protocol error, reported there.
                let _ = done.await;
                continue;
            }
            Ok(Message::Ping(n)) => {
                let _ = out.send(Outgoing::Message(OwnedMessage::Pong(n))).await;
                continue;
            }
            Ok(Message::Pong(_)) => continue,
            Ok(Message::Close { reason }) => {
                let reason = shown(reason);
                tracing::debug!("the server closed the session ({reason:?})");
                let _ = events.send(Event::Closed(reason)).await;
                return;
            }
            Ok(other) => match intake.take(&other).await {
                Ok(Some(reply)) => Event::Transfer(reply),
                Ok(None) => continue,
                Err(name) => Event::Failed(TransportError::Proto(
                    crate::proto::ProtoError::Unexpected(name),
                )),
            },
            Err(err) => Event::Failed(err),
        };
        let failed = matches!(event, Event::Failed(_) | Event::Local(_));
        if events.send(event).await.is_err() || failed {
            return;
        }
    }
}

async fn writer_task<W: AsyncWrite>(
    mut writer: SecureWriter<WriteHalf<W>>,
    mut out: mpsc::Receiver<Outgoing>,
) {
    while let Some(msg) = out.recv().await {
        let result = match msg {
            Outgoing::Message(msg) => writer.send(&msg.as_message()).await,
            Outgoing::Stdin(mut chunk) => writer.send_chunk(DataKind::Stdin, &mut chunk).await,
            Outgoing::Transfer(mut request) => request.send(&mut writer).await,
            Outgoing::Close => {
                let _ = writer.close("").await;
                return;
            }
        };
        if result.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_without_a_reason_is_a_plain_end() {
        assert_eq!(
            closed(String::new()).to_string(),
            "server closed the session: session ended"
        );
    }
}
