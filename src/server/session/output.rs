//! The write side of a session: one task that owns the sealed writer and sends, in order,
//! what the console hands it — a command's output as produced (each chunk sent before the
//! next is read, so a slow client slows the command instead of growing a buffer), then its
//! exit status and the console state; refusals; the console's opening; completions; Pongs;
//! file transfers; the Close — and a Ping whenever one is due. A command on a
//! pseudo-terminal is one stream, done when the process the session started exits: what the
//! terminal still holds is sent, then the terminal is let go (hung up). A console line's
//! shell state is read from its state pipe alongside its output (bounded, parsed as
//! untrusted input); the login shell's output is kept (bounded) as the console's banner
//! instead of sent. A command's exit is recorded in the audit log, then reported to the
//! console with its state, then sent to the client, in that order. It never decides
//! anything about a command's life: signals and timers are the session core's.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pty_process::OwnedReadPty;
use tokio::io::{AsyncReadExt, AsyncWrite, WriteHalf};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::audit::SessionAudit;
use crate::proto::message::MAX_BANNER;
use crate::proto::{DataFrame, DataKind, ExitStatus, Message};
use crate::server::keepalive::Keepalive;
use crate::server::shell::{MAX_STATE, RECORD_END, State, StateError};
use crate::server::transfer;
use crate::transport::{SecureWriter, TransportError};

/// After the process on a terminal exits, how long the terminal may stay quiet before it is
/// let go (what the process wrote reaches the master side a moment after its exit).
const PTY_DRAIN_QUIET: Duration = Duration::from_millis(100);

/// After the process on a terminal exits, the longest a job it left behind can keep the
/// line open by writing to the terminal.
const PTY_DRAIN_MAX: Duration = Duration::from_secs(1);

/// After a console line's process exits, the longest its state pipe may stay open (held by
/// something the shell started before the line, e.g. from `BASH_ENV`).
const STATE_GRACE: Duration = Duration::from_secs(1);

/// How a command ended, reported to the console before its Exit reaches the client.
#[derive(Debug)]
pub struct Ended {
    /// Which command of the session it was.
    pub generation: u64,
    /// Its status, as a shell reports it.
    pub status: i32,
    /// The shell state it came back with (None: it carries none).
    pub state: Option<Result<State, StateError>>,
    /// What the login shell printed (None: not the login shell).
    pub banner: Option<Vec<u8>>,
}

/// The console's opening, for ConsoleOpened and the ConsoleState after it.
#[derive(Debug)]
pub struct Opened {
    /// The server's Unix user.
    pub user: String,
    /// Its short hostname.
    pub host: String,
    /// The user's home.
    pub home: String,
    /// uid 0.
    pub superuser: bool,
    /// The key is restricted.
    pub restricted: bool,
    /// The key's name.
    pub key_name: String,
    /// What the login shell printed.
    pub banner: Vec<u8>,
    /// Why the state is plain (empty: it is not).
    pub warning: String,
    /// The console's cwd.
    pub cwd: String,
}

/// The read end of a console line's state pipe, and what came through it.
pub struct StateIn {
    pipe: pipe::Receiver,
    bytes: Vec<u8>,
    open: bool,
    /// More than [`MAX_STATE`] bytes came (the rest was read and dropped).
    overflow: bool,
}

impl StateIn {
    /// Takes the read end of a state pipe.
    pub fn new(read: OwnedFd) -> std::io::Result<Self> {
        Ok(Self {
            pipe: pipe::Receiver::from_owned_fd(read)?,
            bytes: Vec::new(),
            open: true,
            overflow: false,
        })
    }

    /// Reads what is there (cancel-safe); pending for ever once the pipe has ended.
    async fn read(&mut self) {
        if !self.open {
            return std::future::pending().await;
        }
        let mut buf = [0u8; 8192];
        match self.pipe.read(&mut buf).await {
            Ok(0) | Err(_) => self.open = false,
            Ok(n) => {
                let chunk = buf.get(..n).unwrap_or_default();
                if self.bytes.len() + chunk.len() > MAX_STATE {
                    self.overflow = true;
                } else {
                    self.bytes.extend_from_slice(chunk);
                }
            }
        }
    }

    /// Reads on until the pipe ends or the record is whole (a program the login profile
    /// started may hold the pipe open), for at most [`STATE_GRACE`]; then parses.
    async fn finish(mut self) -> Result<State, StateError> {
        let _ = tokio::time::timeout(STATE_GRACE, async {
            while self.open && !self.bytes.ends_with(RECORD_END) {
                self.read().await;
            }
        })
        .await;
        if self.overflow {
            return Err(StateError::TooLong);
        }
        State::parse(&self.bytes)
    }
}

/// Whether a shell whose state could not be taken came back all the same (its state was
/// too large to keep), rather than ending without one.
pub fn came_back(err: &StateError) -> bool {
    matches!(err, StateError::TooLong)
}

/// Reads `state`'s pipe, if there is one (for a `select!` branch).
async fn read_state(state: &mut Option<StateIn>) {
    match state {
        Some(state) => state.read().await,
        None => std::future::pending().await,
    }
}

/// What the console asks the output task to send.
pub enum Output {
    /// A line refused without running anything.
    Refusal {
        /// Why, for its stderr.
        stderr: Vec<u8>,
        /// Its status.
        status: i32,
        /// The console's cwd after it.
        cwd: String,
    },
    /// An exit status with no console state after it: the session ends.
    Exit(i32),
    /// The console is open.
    Opened(Box<Opened>),
    /// The names of a Completions answer (each ended by NUL).
    Completions(String),
    /// A started command whose output to stream.
    Command {
        /// The command.
        command: Box<Streamed>,
        /// The console's cwd, for the state after it.
        cwd: String,
    },
    /// A Pong.
    Pong(u64),
    /// The ExecPty's command runs on pipes.
    PtyRefused,
    /// A Close; the task ends after it.
    Close(&'static str),
    /// A file transfer's reply or download.
    Transfer(Box<transfer::Job>),
}

/// A running command as the output task streams it.
pub struct Streamed {
    /// The process the session started.
    pub child: Child,
    /// Where its output comes from.
    pub output: CommandOutput,
    /// Which command of the session it is (reported to the console when it ends).
    pub generation: u64,
    /// Bytes of stdin the console has written to it, for its `exit` event.
    pub stdin_bytes: Arc<AtomicU64>,
    /// Its state pipe, for a console line or the login shell.
    pub state: Option<StateIn>,
    /// It is the login shell: what it prints is kept as the banner, and the client hears
    /// nothing of its end.
    pub login: bool,
}

/// The read side of a command's I/O.
pub enum CommandOutput {
    /// Its stdout and stderr pipes.
    Pipes(ChildStdout, ChildStderr),
    /// The master side of its terminal.
    Pty(OwnedReadPty),
}

/// Sends what the console hands over until it drops its sender or a Close; `ended` hears of
/// each command as it ends. When a write fails (the client is gone) the
/// channel is closed at once, so the console learns it, and a running command is still
/// waited for and recorded.
pub async fn run<W: AsyncWrite>(
    mut writer: SecureWriter<WriteHalf<W>>,
    mut jobs: mpsc::Receiver<Output>,
    ended: mpsc::UnboundedSender<Ended>,
    keepalive: Duration,
    cwd: String,
    audit: SessionAudit,
    closing: Arc<AtomicBool>,
) {
    if writer
        .send(&Message::ConsoleState { cwd: &cwd })
        .await
        .is_err()
    {
        jobs.close();
        return;
    }
    let mut keepalive = Keepalive::new(keepalive);
    loop {
        let job = tokio::select! {
            job = jobs.recv() => job,
            ping = keepalive.due() => {
                if writer.send(&ping).await.is_err() {
                    jobs.close();
                    return;
                }
                continue;
            }
        };
        let result = match job {
            None => return,
            Some(Output::Refusal {
                stderr,
                status,
                cwd,
            }) => {
                tracing::info!(session = %audit.session_id(), status, "command ended");
                audit
                    .exit(status, Duration::ZERO, 0, stderr.len() as u64)
                    .await;
                send_refusal(&mut writer, &stderr, status, &cwd).await
            }
            Some(Output::Exit(status)) => {
                writer.send(&Message::Exit(ExitStatus::Code(status))).await
            }
            Some(Output::Opened(opened)) => send_opened(&mut writer, &opened).await,
            Some(Output::Completions(names)) => {
                writer.send(&Message::Completions { names: &names }).await
            }
            Some(Output::Command { command, cwd }) => {
                let mut channel = Channel {
                    writer: &mut writer,
                    keepalive: &mut keepalive,
                    jobs: &mut jobs,
                    closing: &closing,
                };
                stream_command(&mut channel, *command, &cwd, &audit, &ended).await
            }
            Some(Output::Pong(n)) => writer.send(&Message::Pong(n)).await,
            Some(Output::PtyRefused) => writer.send(&Message::PtyRefused).await,
            Some(Output::Transfer(job)) => {
                transfer::deliver(&mut writer, *job, &mut keepalive).await
            }
            Some(Output::Close(reason)) => {
                let _ = writer.close(reason).await;
                return;
            }
        };
        if result.is_err() {
            jobs.close();
            return;
        }
    }
}

/// The writer with what streaming needs beside it.
struct Channel<'a, W> {
    writer: &'a mut SecureWriter<W>,
    keepalive: &'a mut Keepalive,
    jobs: &'a mut mpsc::Receiver<Output>,
    /// The session decided to close it (its Close is queued behind this command).
    closing: &'a AtomicBool,
}

async fn send_opened<W: AsyncWrite + Unpin>(
    writer: &mut SecureWriter<W>,
    opened: &Opened,
) -> Result<(), TransportError> {
    let banner = opened.banner.get(..MAX_BANNER).unwrap_or(&opened.banner);
    writer
        .send(&Message::ConsoleOpened {
            user: &opened.user,
            host: &opened.host,
            home: &opened.home,
            superuser: opened.superuser,
            restricted: opened.restricted,
            key_name: &opened.key_name,
            banner,
            warning: &opened.warning,
        })
        .await?;
    writer
        .send(&Message::ConsoleState { cwd: &opened.cwd })
        .await
}

async fn send_refusal<W: AsyncWrite + Unpin>(
    writer: &mut SecureWriter<W>,
    stderr: &[u8],
    status: i32,
    cwd: &str,
) -> Result<(), TransportError> {
    if !stderr.is_empty() {
        writer.send(&Message::Stderr(stderr)).await?;
    }
    writer
        .send(&Message::Exit(ExitStatus::Code(status)))
        .await?;
    writer.send(&Message::ConsoleState { cwd }).await
}

/// Streams the command's output until it is done (its state pipe read alongside), records
/// its exit, tells the console with its state, then sends the exit status and the console
/// state — or, for the login shell, keeps what it printed and sends nothing.
async fn stream_command<W: AsyncWrite + Unpin>(
    channel: &mut Channel<'_, W>,
    command: Streamed,
    cwd: &str,
    audit: &SessionAudit,
    ended: &mpsc::UnboundedSender<Ended>,
) -> Result<(), TransportError> {
    let Streamed {
        mut child,
        output,
        generation,
        stdin_bytes,
        mut state,
        login,
    } = command;
    let began = Instant::now();
    let mut sink = Sink {
        bytes_out: 0,
        banner: login.then(Vec::new),
    };
    let on_pty = matches!(output, CommandOutput::Pty(_));
    let (streamed, exited) = match output {
        CommandOutput::Pipes(stdout, stderr) => {
            stream_pipes(channel, stdout, stderr, &mut state, &mut sink).await
        }
        CommandOutput::Pty(pty) => {
            stream_pty(channel, &mut child, pty, &mut state, &mut sink).await
        }
    };
    if streamed.is_err() {
        // The client is gone: let the console know now (it hangs the command up).
        channel.jobs.close();
    }
    let status = match exited {
        Some(status) => status,
        None => child.wait().await,
    };
    let status = match status {
        Ok(status) => exit_status(status),
        Err(_) => ExitStatus::Code(255),
    };
    let state = match state {
        // A shell killed by a signal (SIGKILL after an ignored interrupt) did not choose to
        // end the session: the console goes on in the state it had, as a shell outlives a
        // killed command.
        Some(_) if matches!(status, ExitStatus::Signal(_)) && !login => None,
        Some(state) => Some(state.finish().await),
        None => None,
    };
    tracing::info!(session = %audit.session_id(), ?status, "command ended");
    let bytes_in = stdin_bytes.load(Ordering::Relaxed);
    let code = i32::from(status.shell_code());
    audit
        .exit(code, began.elapsed(), bytes_in, sink.bytes_out)
        .await;
    let lost = match &state {
        Some(Err(err)) if came_back(err) => Some(err.to_string()),
        _ => None,
    };
    let next_cwd = match &state {
        None => Some(cwd.to_owned()),
        Some(Ok(state)) => Some(state.cwd().display().to_string()),
        Some(Err(err)) => came_back(err).then(|| cwd.to_owned()),
    };
    // Before the client can hear of the end (and send its next line), the console knows.
    let _ = ended.send(Ended {
        generation,
        status: code,
        state,
        banner: sink.banner,
    });
    streamed?;
    if login {
        return Ok(());
    }
    if let Some(lost) = lost {
        let end = if on_pty { "\r\n" } else { "\n" };
        let text =
            format!("seashell: {lost}; this line's changes to the shell's state are lost{end}");
        channel
            .writer
            .send(&Message::Stderr(text.as_bytes()))
            .await?;
    }
    channel.writer.send(&Message::Exit(status)).await?;
    match next_cwd {
        // When the server is closing the session (a protocol error, a shutdown), the
        // status is followed by its Close, never by a console state: a console state says
        // the session goes on, and a client that has it need not wait for anything more.
        Some(_) if channel.closing.load(Ordering::Acquire) => Ok(()),
        Some(cwd) => {
            channel
                .writer
                .send(&Message::ConsoleState { cwd: &cwd })
                .await
        }
        // The line's shell did not come back: the console ends the session.
        None => Ok(()),
    }
}

/// Where a command's output goes: to the client, or (the login shell) into its banner.
struct Sink {
    bytes_out: u64,
    banner: Option<Vec<u8>>,
}

impl Sink {
    /// Sends `n` bytes of `frame` as `kind`, or keeps them in the banner (up to its bound).
    async fn put<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut SecureWriter<W>,
        kind: DataKind,
        frame: &mut DataFrame,
        n: usize,
    ) -> Result<(), TransportError> {
        self.bytes_out += n as u64;
        match &mut self.banner {
            Some(banner) => {
                let room = MAX_BANNER.saturating_sub(banner.len());
                let bytes = frame.payload_mut().get(..n.min(room)).unwrap_or_default();
                banner.extend_from_slice(bytes);
                Ok(())
            }
            None => writer.send_data(kind, frame, n).await,
        }
    }
}

type Exited = Option<std::io::Result<std::process::ExitStatus>>;

/// Both pipes until both end (as `ssh host 'LINE'` does: a job left in the background with
/// them open keeps the line going), then the process's exit.
async fn stream_pipes<W: AsyncWrite + Unpin>(
    channel: &mut Channel<'_, W>,
    mut stdout: ChildStdout,
    mut stderr: ChildStderr,
    state: &mut Option<StateIn>,
    sink: &mut Sink,
) -> (Result<(), TransportError>, Exited) {
    // Each pipe is read straight into a frame buffer and sealed there.
    let (mut out_frame, mut err_frame) = (DataFrame::new(), DataFrame::new());
    let (mut out_open, mut err_open) = (true, true);
    let mut streamed = Ok(());
    while streamed.is_ok() && (out_open || err_open) {
        streamed = tokio::select! {
            n = stdout.read(out_frame.payload_mut()), if out_open => match n {
                Ok(0) | Err(_) => {
                    out_open = false;
                    Ok(())
                }
                Ok(n) => sink.put(channel.writer, DataKind::Stdout, &mut out_frame, n).await,
            },
            n = stderr.read(err_frame.payload_mut()), if err_open => match n {
                Ok(0) | Err(_) => {
                    err_open = false;
                    Ok(())
                }
                Ok(n) => sink.put(channel.writer, DataKind::Stderr, &mut err_frame, n).await,
            },
            () = read_state(state) => Ok(()),
            ping = channel.keepalive.due() => channel.writer.send(&ping).await,
        };
    }
    (streamed, None)
}

/// The terminal until the process exits and the terminal has been quiet for
/// [`PTY_DRAIN_QUIET`] (or every other holder let it go, or [`PTY_DRAIN_MAX`] passed).
async fn stream_pty<W: AsyncWrite + Unpin>(
    channel: &mut Channel<'_, W>,
    child: &mut Child,
    mut pty: OwnedReadPty,
    state: &mut Option<StateIn>,
    sink: &mut Sink,
) -> (Result<(), TransportError>, Exited) {
    let mut frame = DataFrame::new();
    let mut open = true;
    let mut exited: Exited = None;
    let mut exited_at: Option<Instant> = None;
    let mut last_data = Instant::now();
    let mut streamed = Ok(());
    while streamed.is_ok() && open {
        let stop_at =
            exited_at.map(|e| (last_data.max(e) + PTY_DRAIN_QUIET).min(e + PTY_DRAIN_MAX));
        streamed = tokio::select! {
            // EIO: every process let the terminal go.
            n = pty.read(frame.payload_mut()) => match n {
                Ok(0) | Err(_) => {
                    open = false;
                    Ok(())
                }
                Ok(n) => {
                    last_data = Instant::now();
                    sink.put(channel.writer, DataKind::Stdout, &mut frame, n).await
                }
            },
            status = child.wait(), if exited.is_none() => {
                exited = Some(status);
                exited_at = Some(Instant::now());
                Ok(())
            }
            () = tokio::time::sleep_until(stop_at.unwrap_or_else(Instant::now)), if stop_at.is_some() => {
                open = false;
                Ok(())
            }
            () = read_state(state) => Ok(()),
            ping = channel.keepalive.due() => channel.writer.send(&ping).await,
        };
    }
    (streamed, exited)
}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(signal)) => ExitStatus::Signal(u8::try_from(signal).unwrap_or(u8::MAX)),
        (None, None) => ExitStatus::Code(255),
    }
}
