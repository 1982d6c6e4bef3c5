//! One authenticated session, as a thin async shell around the pure [`core::Core`], which
//! decides everything (what a message means, which command runs and how, every timer, how
//! the session ends). This shell only feeds it events — the client's messages, the audit
//! log's answers, a command's end, a shutdown, tokio's clock — and carries out its actions:
//! it runs the server user's login shell once when the client opens the console, then each
//! line in that shell with the session's shell state ([`super::shell`]: restored before
//! the line, read back after it from a pipe the line's own commands never inherit), or, in
//! a plain session (`exec`, `cp`), as `SHELL -c LINE`; a restricted key's lines run as
//! their argv, in its home. It starts them on pipes or a pseudo-terminal
//! ([`super::process`]), writes their stdin straight from the receive buffer (while it
//! waits for a command that does not read, a vanished client or a shutdown still ends it),
//! signals their group, answers completion requests ([`super::complete`], off the async
//! workers), and hands everything the client is to receive to the [`output`] task, which
//! owns the write side. What is typed into a command is never logged. File transfer
//! messages go to [`super::transfer`].

pub mod core;
pub mod output;

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use self::core::{Action, Core, Input, Plain, PtyRequest};
use self::output::{CommandOutput, Ended, Opened, Output, StateIn, Streamed};
use super::complete::{self, Words};
use super::peer::Peer;
use super::policy::Run;
use super::process::{self, Io, Running, Spawn, signal_group};
use super::shell::{Flavor, LoginShell, STATE_FD, State};
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
    shell: Arc<LoginShell>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let account = Account::of_server();
    let core = Core::new(
        limits,
        peer.policy.clone(),
        commands,
        Instant::now().into_std(),
    );
    let console = Console {
        env: session_env(&account.home, &peer, &shell),
        cwd: account.home.clone(),
        account,
        peer,
        shell,
        state: None,
        banner: Vec::new(),
    };
    let (out, out_rx) = mpsc::channel(4);
    let (ended_tx, ended) = mpsc::unbounded_channel();
    let closing = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(output::run(
        channel.writer,
        out_rx,
        ended_tx,
        limits.keepalive,
        console.cwd_text(),
        audit.clone(),
        Arc::clone(&closing),
    ));
    let transfers = Transfers::new(&console.peer, &audit, &console.account.home);
    let running = Arc::new(AtomicI32::new(0));
    let closer = out.clone();
    let mut shell = Shell {
        core,
        console,
        out,
        ended,
        stop,
        audit,
        transfers,
        current: None,
        started: 0,
        writer_gone: false,
        stopping: false,
        running: Arc::clone(&running),
        closing: Arc::clone(&closing),
    };
    let shell = tokio::spawn(async move {
        shell.run(channel.reader).await;
        shell.transfers.end_session().await;
    });
    if let Err(err) = shell.await {
        // Supervision: a session that failed still says so and hangs its command up.
        tracing::error!("a session failed: {err}");
        closing.store(true, Ordering::Release);
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

/// The Unix account the server runs as, which every session uses.
pub(super) struct Account {
    /// Its name.
    pub(super) user: String,
    /// The host's short name.
    host: String,
    /// Where sessions start: the server's `HOME`, else the passwd entry's, else `/`.
    home: PathBuf,
    /// uid 0.
    superuser: bool,
}

impl Account {
    /// The account of the server process (its effective uid), looked up now.
    pub(super) fn of_server() -> Self {
        let uid = nix::unistd::geteuid();
        let entry = nix::unistd::User::from_uid(uid).ok().flatten();
        let user = entry
            .as_ref()
            .map(|u| u.name.clone())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| uid.to_string());
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .or_else(|| entry.as_ref().map(|u| u.dir.clone()))
            .filter(|p| p.is_dir())
            .unwrap_or_else(|| PathBuf::from("/"));
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .map(|h| h.split('.').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        Self {
            user,
            host,
            home,
            superuser: uid.is_root(),
        }
    }
}

/// What [`Console::line`] decided.
struct LinePlan {
    program: OsString,
    args: Vec<OsString>,
    extra_env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
    stateful: bool,
}

struct Console {
    /// The shell's cwd after the last line (the home, in a plain session).
    cwd: PathBuf,
    account: Account,
    env: Vec<(String, String)>,
    peer: Peer,
    shell: Arc<LoginShell>,
    /// The console's shell state (None: a plain session, or a restricted key's console).
    state: Option<State>,
    /// What the login shell printed, until the console is opened.
    banner: Vec<u8>,
}

impl Console {
    fn cwd_text(&self) -> String {
        self.cwd.display().to_string()
    }

    /// How a line runs as the policy lets it: a restricted key's argv in its home; else
    /// the shell, with the console's state (and its state pipe) or, in a plain session,
    /// `SHELL -c LINE` in the home.
    fn line(&self, line: &str, run: &Run) -> std::io::Result<LinePlan> {
        let home = self.account.home.clone();
        match run {
            Run::Direct(argv) => {
                let (program, args) = argv
                    .split_first()
                    .ok_or_else(|| std::io::Error::other("empty command"))?;
                Ok(LinePlan {
                    program: program.into(),
                    args: args.iter().map(OsString::from).collect(),
                    extra_env: Vec::new(),
                    cwd: home,
                    stateful: false,
                })
            }
            Run::Shell => {
                let program = self.shell.program.clone().into_os_string();
                match &self.state {
                    Some(state) => {
                        let cwd = Some(state.cwd().to_path_buf())
                            .filter(|dir| dir.is_dir())
                            .unwrap_or(home);
                        let mut planned = self.shell.line_args(state, line);
                        // The logical cwd (through symlinks), as the shell left it.
                        planned
                            .env
                            .push(("PWD".into(), cwd.clone().into_os_string()));
                        Ok(LinePlan {
                            program,
                            args: planned.args,
                            extra_env: planned.env,
                            cwd,
                            stateful: true,
                        })
                    }
                    None => Ok(LinePlan {
                        program,
                        args: self.shell.exec_args(line),
                        extra_env: Vec::new(),
                        cwd: home,
                        stateful: false,
                    }),
                }
            }
        }
    }

    /// The names that complete `word`, off the async workers.
    async fn complete(&self, word: &str, command: bool) -> String {
        let word = word.to_owned();
        let policy = &self.peer.policy;
        let restricted = policy.is_restricted().then(|| policy.command_words());
        let cwd = self.cwd.clone();
        let home = self.account.home.clone();
        let path = self
            .state
            .as_ref()
            .and_then(|s| s.path().map(str::to_owned))
            .or_else(|| {
                self.env
                    .iter()
                    .find(|(k, _)| k == "PATH")
                    .map(|(_, v)| v.clone())
            });
        let builtins = match self.shell.flavor {
            Flavor::Bash => complete::BASH_BUILTINS,
            Flavor::Posix => complete::POSIX_BUILTINS,
        };
        let names = tokio::task::spawn_blocking(move || {
            let words = match &restricted {
                Some(allowed) => Words::Restricted(allowed),
                None => Words::Shell(complete::Context {
                    cwd: &cwd,
                    home: &home,
                    path: path.as_deref(),
                    builtins,
                }),
            };
            complete::complete(&word, command, &words)
        })
        .await
        .unwrap_or_default();
        completion_list(&names)
    }

    /// The ConsoleOpened the client gets, with why the state is plain, if it is.
    fn opened(&mut self, plain: Option<&Plain>) -> Opened {
        let program = self.shell.program.display().to_string();
        let warning = match plain {
            None => String::new(),
            Some(Plain::Late) => format!(
                "the login shell ({program}) did not finish within {} s (does the profile wait for input?)",
                core::LOGIN_TIMEOUT.as_secs()
            ),
            Some(Plain::NotBack) => format!(
                "the login shell ({program}) ended without coming back (an `exit` or an `exec` in the profile?)"
            ),
            Some(Plain::StartFailed) => format!("the login shell ({program}) could not start"),
            Some(Plain::Refused(err)) => format!("the audit log refused the login shell: {err}"),
        };
        if plain.is_some() && !self.peer.policy.is_restricted() {
            self.state = Some(State::plain(&self.account.home));
            self.cwd = self.account.home.clone();
        }
        if !warning.is_empty() {
            tracing::warn!(key = %self.peer.fingerprint, "console starts from a plain state: {warning}");
        }
        Opened {
            user: self.account.user.clone(),
            host: self.account.host.clone(),
            home: self.account.home.display().to_string(),
            superuser: self.account.superuser,
            restricted: self.peer.policy.is_restricted(),
            key_name: match &self.peer.cert {
                None => self.peer.name.clone(),
                Some(cert) => format!(
                    "{} (certificate serial {} from CA {})",
                    cert.cert_name, cert.cert_serial, cert.ca
                ),
            },
            banner: std::mem::take(&mut self.banner),
            warning: if warning.is_empty() {
                warning
            } else {
                format!("seashell: {warning}; starting from a plain state (HOME, a default PATH)")
            },
            cwd: self.cwd_text(),
        }
    }
}

/// Names as a Completions message carries them: each ended by a NUL, as many as fit.
fn completion_list(names: &[String]) -> String {
    let mut list = String::new();
    for name in names.iter().take(crate::proto::message::MAX_COMPLETIONS) {
        if name.is_empty() || name.contains('\0') {
            continue;
        }
        if list.len() + name.len() + 1 > crate::proto::message::MAX_COMPLETION_BYTES {
            break;
        }
        list.push_str(name);
        list.push('\0');
    }
    list
}

/// A clean environment for commands: the essentials from the server, plus who is connected.
/// `TERM` is `dumb` on pipes; on a terminal it is the client's.
fn session_env(home: &Path, peer: &Peer, shell: &LoginShell) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ["PATH", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env.push(("SHELL".into(), shell.program.display().to_string()));
    env.push(("HOME".into(), home.display().to_string()));
    env.push(("TERM".into(), "dumb".into()));
    env.push(("SEASHELL_SESSION".into(), peer.session_id.clone()));
    env.push(("SEASHELL_KEY".into(), peer.fingerprint.clone()));
    env.push(("SEASHELL_CLIENT".into(), peer.address.clone()));
    env
}

/// A process to start, with or without the console's state pipe.
struct Launch<'a> {
    program: &'a OsString,
    args: &'a [OsString],
    extra_env: &'a [(OsString, OsString)],
    cwd: &'a Path,
    env: &'a [(String, String)],
}

impl Launch<'_> {
    /// Starts it on a pty (`pty`) or pipes; with `stateful`, its shell gets the write end of
    /// a new state pipe as [`STATE_FD`], and the read end is returned.
    fn start(
        &self,
        pty: Option<&PtyRequest>,
        stateful: bool,
    ) -> std::io::Result<(Running, Option<StateIn>)> {
        let pipe: Option<(OwnedFd, OwnedFd)> = if stateful {
            Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?)
        } else {
            None
        };
        let spawn = Spawn {
            program: self.program,
            args: self.args,
            cwd: self.cwd,
            env: self.env,
            extra_env: self.extra_env,
            descriptor: pipe.as_ref().map(|(_, write)| (write, STATE_FD)),
        };
        let running = match pty {
            Some(pty) => spawn.on_pty(&pty.term, pty.size)?,
            None => spawn.on_pipes()?,
        };
        // Our copy of the write end closes here: the shell holds the only one.
        let state = pipe.map(|(read, _)| StateIn::new(read)).transpose()?;
        Ok((running, state))
    }
}

impl Console {
    /// Takes a command's end: the shell state it came back with, or what the login shell
    /// printed.
    fn ended<'a>(&mut self, end: Ended) -> Input<'a> {
        let Ended {
            status,
            state,
            banner,
            ..
        } = end;
        let came_back = match state {
            None => true,
            Some(Ok(state)) => {
                self.cwd = state.cwd().to_path_buf();
                self.state = Some(state);
                true
            }
            // Too large to keep: the session goes on in the state it had.
            Some(Err(err)) => output::came_back(&err),
        };
        if let Some(banner) = banner {
            self.banner = banner;
        }
        Input::Ended { status, came_back }
    }
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
    /// Each command's end, from the output task, before its Exit reaches the client.
    ended: mpsc::UnboundedReceiver<Ended>,
    stop: watch::Receiver<bool>,
    audit: SessionAudit,
    transfers: Transfers,
    current: Option<Current>,
    started: u64,
    writer_gone: bool,
    stopping: bool,
    /// The running command's group (0: none), for supervision if this shell fails.
    running: Arc<AtomicI32>,
    /// Set before a Close of the server's own is queued: the output task then sends a
    /// hung-up command's status without a console state.
    closing: Arc<AtomicBool>,
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
                Some(end) = self.ended.recv(), if ended.is_some() => {
                    if ended == Some(end.generation) {
                        // Its input goes, and with it a terminal's last holder here.
                        self.current = None;
                        self.running.store(0, Ordering::Release);
                        Wake::Input(self.console.ended(end))
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
                let refusal = Output::Refusal {
                    stderr: line_ends(stderr.into_bytes(), terminal),
                    status,
                    cwd,
                };
                self.send(refusal).await
            }
            Action::Exit(status) => self.send(Output::Exit(status)).await,
            Action::AuditLogin { pty } => {
                let program = self.console.shell.program.display();
                tracing::info!(key = %peer.fingerprint, name = %peer.name, session = %peer.session_id, pty, "login shell");
                let result = self
                    .audit
                    .command(&format!("(login shell) {program} -l"), pty)
                    .await;
                Some(Input::Audited(result.map_err(|err| err.to_string())))
            }
            Action::StartLogin { pty } => self.start_login(pty.as_ref()).await,
            Action::ConsoleOpened { plain } => {
                let opened = self.console.opened(plain.as_ref());
                self.send(Output::Opened(Box::new(opened))).await
            }
            Action::Complete { word, command } => {
                let names = self.console.complete(word, command).await;
                self.send(Output::Completions(names)).await
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
            Action::SendClose(reason) => {
                self.closing.store(true, Ordering::Release);
                self.send(Output::Close(reason)).await
            }
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
        let spawned = self.console.line(line, run).and_then(|plan| {
            let launch = Launch {
                program: &plan.program,
                args: &plan.args,
                extra_env: &plan.extra_env,
                cwd: &plan.cwd,
                env: &self.console.env,
            };
            launch.start(pty, plan.stateful)
        });
        match spawned {
            Ok((running, state)) => self.started(running, state, false).await,
            Err(err) => {
                let refusal = Output::Refusal {
                    stderr: line_ends(
                        format!("seashell: cannot start the command: {err}\n").into_bytes(),
                        pty.is_some(),
                    ),
                    status: 127,
                    cwd: self.console.cwd_text(),
                };
                self.send(refusal).await.or(Some(Input::StartFailed))
            }
        }
    }

    /// Starts the login shell that sets the console's first state up, in the home.
    async fn start_login<'a>(&mut self, pty: Option<&PtyRequest>) -> Option<Input<'a>> {
        let program = self.console.shell.program.clone().into_os_string();
        let args = self.console.shell.start_args(pty.is_some());
        let launch = Launch {
            program: &program,
            args: &args,
            extra_env: &[],
            cwd: &self.console.account.home,
            env: &self.console.env,
        };
        match launch.start(pty, true) {
            Ok((running, state)) => self.started(running, state, true).await,
            Err(err) => {
                tracing::warn!("the login shell could not start: {err}");
                Some(Input::StartFailed)
            }
        }
    }

    /// Hands a started process to the output task and keeps its input.
    async fn started<'a>(
        &mut self,
        running: Running,
        state: Option<StateIn>,
        login: bool,
    ) -> Option<Input<'a>> {
        let Running { child, pgid, io } = running;
        self.started += 1;
        let stdin_bytes = Arc::new(AtomicU64::new(0));
        let (input, output) = match io {
            Io::Pipes {
                stdin,
                stdout,
                stderr,
            } => (
                // The login shell reads nothing: its stdin ends at once.
                (!login).then_some(CommandInput::Pipe(stdin)),
                CommandOutput::Pipes(stdout, stderr),
            ),
            Io::Pty { input, output } => {
                (Some(CommandInput::Pty(input)), CommandOutput::Pty(output))
            }
        };
        self.current = Some(Current {
            generation: self.started,
            pgid,
            input,
            written: Arc::clone(&stdin_bytes),
        });
        self.running.store(pgid.as_raw(), Ordering::Release);
        let command = Box::new(Streamed {
            child,
            output,
            generation: self.started,
            stdin_bytes,
            state,
            login,
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
                if let Some(gone) = self.send(Output::Transfer(Box::new(job))).await {
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
