//! One authenticated session: a console with its own cwd and environment, as a thin async
//! shell around the pure [`core::Core`], which decides everything (what a message means,
//! which command runs and how, every timer, how the session ends). This shell only feeds
//! it events — the client's messages, the audit log's answers, a command's end, a shutdown,
//! tokio's clock — and carries out its actions: it runs the console's built-ins (`cd`,
//! `pwd`, `whoami`, `help`), starts commands on pipes or a pseudo-terminal
//! ([`super::process`]), writes their stdin straight from the receive buffer (while it
//! waits for a command that does not read, a vanished client or a shutdown still ends it),
//! signals their group, and hands everything the client is to receive to the
//! [`output`] task, which owns the write side. What is typed into a command is never
//! logged. File transfer messages go to [`super::transfer`].

pub mod core;
pub mod output;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use self::core::{Action, Core, Input, PtyRequest};
use self::output::{CommandOutput, Output, Streamed};
use super::peer::Peer;
use super::policy::Run;
use super::process::{self, Io, Running, Spawn, signal_group};
use super::transfer::Transfers;
use crate::audit::SessionAudit;
use crate::proto::{Message, ProtoError};
use crate::transport::{SecureChannel, SecureReader, TransportError};

/// Session timing knobs.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Close after this long without a command or input (None: never).
    pub idle_timeout: Option<Duration>,
    /// Send a Ping this often; a client silent for three intervals is gone.
    pub keepalive: Duration,
}

/// Runs a session to its end.
pub async fn run<S>(
    channel: SecureChannel<S>,
    peer: Peer,
    limits: SessionLimits,
    stop: watch::Receiver<bool>,
    audit: SessionAudit,
    commands: Arc<BTreeMap<String, Vec<String>>>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let home = home_dir();
    let core = Core::new(
        limits,
        peer.policy.clone(),
        commands,
        Instant::now().into_std(),
    );
    let console = Console {
        env: session_env(&home, &peer),
        cwd: home.clone(),
        home,
        peer,
    };
    let (out, out_rx) = mpsc::channel(4);
    let (done_tx, done) = watch::channel(0u64);
    let writer = tokio::spawn(output::run(
        channel.writer,
        out_rx,
        done_tx,
        limits.keepalive,
        console.cwd_text(),
        audit.clone(),
    ));
    let transfers = Transfers::new(&console.peer, &audit, &console.home);
    let running = Arc::new(AtomicI32::new(0));
    let closer = out.clone();
    let mut shell = Shell {
        core,
        console,
        out,
        done,
        stop,
        audit,
        transfers,
        current: None,
        started: 0,
        writer_gone: false,
        stopping: false,
        running: Arc::clone(&running),
    };
    let shell = tokio::spawn(async move {
        shell.run(channel.reader).await;
        shell.transfers.end_session();
    });
    if let Err(err) = shell.await {
        // Supervision: a session that failed still says so and hangs its command up.
        tracing::error!("a session failed: {err}");
        let _ = closer.send(Output::Close("internal error")).await;
        hang_up_after_failure(running.load(Ordering::Acquire)).await;
    }
    // Dropping the last sender lets the output task finish what it has (a command being
    // reaped and recorded, say) and end.
    drop(closer);
    if let Err(err) = writer.await {
        tracing::error!("a session's output task failed: {err}");
    }
}

/// SIGHUP to the group a failed session left running, SIGKILL [`core::KILL_AFTER`] later.
async fn hang_up_after_failure(pgid: i32) {
    if pgid <= 0 {
        return;
    }
    let pgid = Pid::from_raw(pgid);
    signal_group(pgid, nix::sys::signal::Signal::SIGHUP);
    tokio::time::sleep(core::KILL_AFTER).await;
    signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
}

struct Console {
    cwd: PathBuf,
    home: PathBuf,
    env: Vec<(String, String)>,
    peer: Peer,
}

impl Console {
    fn cwd_text(&self) -> String {
        self.cwd.display().to_string()
    }

    /// Runs a built-in (any line whose first word is one, whatever its arguments).
    fn builtin(&mut self, line: &str) -> (Vec<u8>, Vec<u8>, i32) {
        let mut words = line.split_whitespace();
        let word = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        let ok = |text: String| (text.into_bytes(), Vec::new(), 0);
        match (word, rest.as_slice()) {
            ("cd", []) => self.cd(&self.home.clone()),
            ("cd", [dir]) => self.cd(&self.cwd.join(dir)),
            ("cd", _) => (Vec::new(), b"cd: too many arguments\n".to_vec(), 1),
            ("pwd", []) => ok(format!("{}\n", self.cwd.display())),
            ("whoami", []) => ok(format!(
                "name: {}\nkey: {}\nsession: {}\n",
                self.peer.name, self.peer.fingerprint, self.peer.session_id
            )),
            ("help", []) => ok(if self.peer.policy.is_restricted() {
                format!("{HELP}{HELP_RESTRICTED}")
            } else {
                format!("{HELP}{HELP_SHELL}")
            }),
            _ => (
                Vec::new(),
                format!("{word}: takes no arguments\n").into_bytes(),
                2,
            ),
        }
    }

    fn cd(&mut self, target: &Path) -> (Vec<u8>, Vec<u8>, i32) {
        match target.canonicalize() {
            Ok(dir) if dir.is_dir() => {
                self.cwd = dir;
                (Vec::new(), Vec::new(), 0)
            }
            Ok(_) => (
                Vec::new(),
                format!("cd: {}: not a directory\n", target.display()).into_bytes(),
                1,
            ),
            Err(err) => (
                Vec::new(),
                format!("cd: {}: {err}\n", target.display()).into_bytes(),
                1,
            ),
        }
    }
}

const HELP: &str = "\
Built-ins:
  cd [DIR]   change directory (no DIR: home)
  pwd        print the current directory
  whoami     your key's name and fingerprint, and the session id
  help       this text
  exit       end the session
";

/// The end of `help` for an unrestricted key.
const HELP_SHELL: &str = "Any other line runs as `sh -c LINE` in the current directory.\n";

/// The end of `help` for a restricted key (`allow=` / `command=`): no shell.
const HELP_RESTRICTED: &str = "\
This key is restricted: a line runs only if it matches one of its allow= patterns or is
one of its command= names, split into words and run directly, never by a shell.
";

/// The server user's home directory, where each session starts.
fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// A clean environment for commands: the essentials from the server, plus who is connected.
/// `TERM` is `dumb` on pipes; on a terminal it is the client's.
fn session_env(home: &Path, peer: &Peer) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        ["PATH", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
            .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env.push(("HOME".into(), home.display().to_string()));
    env.push(("TERM".into(), "dumb".into()));
    env.push(("SEASHELL_SESSION".into(), peer.session_id.clone()));
    env.push(("SEASHELL_KEY".into(), peer.fingerprint.clone()));
    env.push(("SEASHELL_CLIENT".into(), peer.address.clone()));
    env
}

/// Where a running command's input goes.
enum CommandInput {
    /// Its stdin pipe.
    Pipe(tokio::process::ChildStdin),
    /// Its terminal's master side (keys, and resizes).
    Pty(pty_process::OwnedWritePty),
}

/// The running command, as the shell sees it.
struct Current {
    generation: u64,
    pgid: Pid,
    /// None once its stdin is closed (StdinEof on pipes, or the command closed it).
    input: Option<CommandInput>,
    /// Bytes written to it, for its `exit` event.
    written: Arc<AtomicU64>,
}

/// The terminal's EOF character (Ctrl-D), written for StdinEof.
const VEOF: u8 = 0x04;

/// Everything the shell carries out actions on (the connection's read side stays apart:
/// a message borrows it while its actions run).
struct Shell {
    core: Core,
    console: Console,
    out: mpsc::Sender<Output>,
    done: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    audit: SessionAudit,
    transfers: Transfers,
    current: Option<Current>,
    started: u64,
    writer_gone: bool,
    stopping: bool,
    /// The running command's group (0: none), for supervision if this shell fails.
    running: Arc<AtomicI32>,
}

/// What woke the shell.
enum Wake<'a> {
    Input(Input<'a>),
    Timer,
}

impl Shell {
    async fn run<R: AsyncRead>(&mut self, mut reader: SecureReader<ReadHalf<R>>) {
        while !self.core.finished() {
            // A download ends on the output side: its end is seen here, at the next wake.
            let busy = self.transfers.busy();
            let now = Instant::now().into_std();
            self.core.handle(Input::TransferBusy(busy), now);
            let deadline = self.core.next_deadline().map(Instant::from_std);
            let ended = self.current.as_ref().map(|c| c.generation);
            let reading = self.core.reading();
            let wake = tokio::select! {
                biased;
                // A command's end before the client's next message: it is sent first.
                Ok(()) = self.done.changed(), if ended.is_some() => {
                    if ended.is_some_and(|g| *self.done.borrow_and_update() >= g) {
                        // Its input goes, and with it a terminal's last holder here.
                        self.current = None;
                        self.running.store(0, Ordering::Release);
                        Wake::Input(Input::Ended)
                    } else {
                        continue;
                    }
                }
                Ok(()) = self.stop.changed(), if !self.stopping => {
                    self.stopping = true;
                    Wake::Input(Input::Shutdown)
                }
                () = self.out.closed(), if !self.writer_gone => {
                    self.writer_gone = true;
                    Wake::Input(Input::WriterGone)
                }
                () = sleep_until(deadline), if deadline.is_some() => Wake::Timer,
                msg = reader.recv(), if reading => match msg {
                    Ok(msg) => Wake::Input(Input::Message(msg)),
                    Err(err) => {
                        log_end(&self.console.peer, &err);
                        Wake::Input(reader_end(&err))
                    }
                },
            };
            let now = Instant::now().into_std();
            let actions = match wake {
                Wake::Input(input) => self.core.handle(input, now),
                Wake::Timer => self.core.on_timer(now),
            };
            self.carry_out(actions).await;
        }
    }

    /// Carries out the core's actions in order, feeding it the answers they produce.
    async fn carry_out<'a>(&mut self, actions: Vec<Action<'a>>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            if let Some(input) = self.perform(action).await {
                let now = Instant::now().into_std();
                queue.extend(self.core.handle(input, now));
            }
        }
    }

    /// Does one action; returns what the core must hear of it, if anything.
    async fn perform<'a>(&mut self, action: Action<'a>) -> Option<Input<'a>> {
        let peer = &self.console.peer;
        match action {
            Action::Pong(n) => self.send(Output::Pong(n)).await,
            Action::PtyRefused => {
                tracing::info!(key = %peer.fingerprint, "no-pty: the command runs on pipes");
                self.send(Output::PtyRefused).await
            }
            Action::AuditDenied { line, rule } => {
                tracing::warn!(key = %peer.fingerprint, name = %peer.name, command = %line, "denied: {rule}");
                self.audit.denied(line, &rule).await;
                None
            }
            Action::AuditCommand { line, pty } => {
                tracing::info!(key = %peer.fingerprint, name = %peer.name, session = %peer.session_id, command = %line, pty, "command");
                let result = self.audit.command(line, pty).await;
                if let Err(err) = &result {
                    tracing::error!("command refused: {err}");
                }
                Some(Input::Audited(result.map_err(|err| err.to_string())))
            }
            Action::Refuse {
                stderr,
                status,
                terminal,
            } => {
                let cwd = self.console.cwd_text();
                let refusal = Output::Builtin {
                    stdout: Vec::new(),
                    stderr: line_ends(stderr.into_bytes(), terminal),
                    status,
                    cwd,
                };
                self.send(refusal).await
            }
            Action::Builtin { line, terminal } => {
                let (stdout, stderr, status) = self.console.builtin(&line);
                let cwd = self.console.cwd_text();
                self.send(Output::Builtin {
                    stdout: line_ends(stdout, terminal),
                    stderr: line_ends(stderr, terminal),
                    status,
                    cwd,
                })
                .await
            }
            Action::Start { line, run, pty } => self.start(&line, &run, pty.as_ref()).await,
            Action::Stdin(data) => self.write_input(data).await,
            Action::StdinEof => self.end_input().await,
            Action::Resize(size) => {
                if let Some(CommandInput::Pty(pty)) =
                    self.current.as_ref().and_then(|c| c.input.as_ref())
                {
                    process::resize(pty, size);
                }
                None
            }
            Action::Signal(signal) => {
                if let Some(current) = &self.current {
                    signal_group(current.pgid, signal);
                }
                None
            }
            Action::Transfer(msg) => self.transfer(msg).await,
            Action::SendClose(reason) => self.send(Output::Close(reason)).await,
            Action::Finish => None,
        }
    }

    /// Hands `output` to the output task; if it is gone, the core hears so.
    async fn send<'a>(&mut self, output: Output) -> Option<Input<'a>> {
        match self.out.send(output).await {
            Ok(()) => None,
            Err(_) if self.writer_gone => None,
            Err(_) => {
                self.writer_gone = true;
                Some(Input::WriterGone)
            }
        }
    }

    async fn start<'a>(
        &mut self,
        line: &str,
        run: &Run,
        pty: Option<&PtyRequest>,
    ) -> Option<Input<'a>> {
        let spawn = Spawn {
            line,
            run,
            cwd: &self.console.cwd,
            env: &self.console.env,
        };
        let spawned = match pty {
            Some(pty) => spawn.on_pty(&pty.term, pty.size),
            None => spawn.on_pipes(),
        };
        let Running { child, pgid, io } = match spawned {
            Ok(running) => running,
            Err(err) => {
                let refusal = Output::Builtin {
                    stdout: Vec::new(),
                    stderr: format!("seashell: cannot start the command: {err}\n").into_bytes(),
                    status: 127,
                    cwd: self.console.cwd_text(),
                };
                return self.send(refusal).await.or(Some(Input::StartFailed));
            }
        };
        self.started += 1;
        let stdin_bytes = Arc::new(AtomicU64::new(0));
        let (input, output) = match io {
            Io::Pipes {
                stdin,
                stdout,
                stderr,
            } => (
                CommandInput::Pipe(stdin),
                CommandOutput::Pipes(stdout, stderr),
            ),
            Io::Pty { input, output } => (CommandInput::Pty(input), CommandOutput::Pty(output)),
        };
        self.current = Some(Current {
            generation: self.started,
            pgid,
            input: Some(input),
            written: Arc::clone(&stdin_bytes),
        });
        self.running.store(pgid.as_raw(), Ordering::Release);
        let command = Box::new(Streamed {
            child,
            output,
            generation: self.started,
            stdin_bytes,
        });
        let cwd = self.console.cwd_text();
        self.send(Output::Command { command, cwd }).await
    }

    /// Writes `data` to the running command's input, from where it was decrypted. While the
    /// command does not read, this waits (backpressure), but a vanished client or a shutdown
    /// still ends it.
    async fn write_input<'a>(&mut self, data: &[u8]) -> Option<Input<'a>> {
        let current = self.current.as_mut()?;
        let input = current.input.as_mut()?;
        let written = tokio::select! {
            written = input.write_all(data) => written,
            () = self.out.closed(), if !self.writer_gone => {
                self.writer_gone = true;
                return Some(Input::WriterGone);
            }
            Ok(()) = self.stop.changed(), if !self.stopping => {
                self.stopping = true;
                return Some(Input::Shutdown);
            }
        };
        match written {
            Ok(()) => {
                current
                    .written
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                // It may have waited for the command: the client was sending all along.
                Some(Input::StdinTaken)
            }
            Err(_) => {
                // The command closed its stdin: later input is dropped.
                current.input = None;
                None
            }
        }
    }

    /// StdinEof: closes a pipe; on a terminal, types its EOF character.
    async fn end_input<'a>(&mut self) -> Option<Input<'a>> {
        let current = self.current.as_mut()?;
        if matches!(current.input, Some(CommandInput::Pty(_))) {
            return self.write_input(&[VEOF]).await;
        }
        current.input = None;
        None
    }

    async fn transfer<'a>(&mut self, msg: Message<'a>) -> Option<Input<'a>> {
        match self.transfers.handle(msg, &self.console.cwd).await {
            Ok(Some(job)) => {
                if let Some(gone) = self.send(Output::Transfer(job)).await {
                    return Some(gone);
                }
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(key = %self.console.peer.fingerprint, "{err}: closing");
                return Some(Input::ProtocolError);
            }
        }
        Some(Input::TransferBusy(self.transfers.busy()))
    }
}

/// Text the console writes itself, with line ends as a terminal's output processing
/// (`onlcr`) would make them when the client's terminal is raw for the line.
fn line_ends(text: Vec<u8>, terminal: bool) -> Vec<u8> {
    if !terminal {
        return text;
    }
    let mut out = Vec::with_capacity(text.len() + text.len() / 16);
    for byte in text {
        if byte == b'\n' {
            out.push(b'\r');
        }
        out.push(byte);
    }
    out
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl CommandInput {
    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Pipe(pipe) => pipe.write_all(data).await,
            Self::Pty(pty) => pty.write_all(data).await,
        }
    }
}

/// How the read side ended: cut (EOF, a socket error) or broken (a frame that does not open,
/// a message that does not parse), which the client is told is a protocol error.
fn reader_end<'a>(err: &TransportError) -> Input<'a> {
    match err {
        TransportError::Proto(ProtoError::Truncated) | TransportError::Io(_) => Input::ReaderEnded,
        _ => Input::ProtocolError,
    }
}

fn log_end(peer: &Peer, err: &TransportError) {
    tracing::info!(key = %peer.fingerprint, address = %peer.address, "session ended: {err}");
}
