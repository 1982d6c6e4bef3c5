//! One authenticated session: a console with its own cwd and environment. Two tasks share
//! the work. The *console* owns the read side: it takes the client's messages in order, runs
//! built-ins (`cd`, `pwd`, `whoami`, `help`, `exit`), starts commands one at a time, feeds
//! their stdin and delivers interrupts. The *output* task owns the write side: it streams a
//! command's stdout and stderr as produced (each chunk sent before the next is read, so a
//! slow client slows the command instead of growing a buffer), then its exit status and the
//! console state. When the session ends for any reason, the command's process group is killed.
//! Every command line is in the audit log, fsynced, before it runs (a line the log cannot take
//! is refused), and its exit status is recorded before the client hears it.
//! File transfer messages are handed to [`super::transfer`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

use super::keepalive::Keepalive;
use super::policy::{Denied, Policy, Run};
use super::process::{self, signal_group};
use super::transfer::{self, Transfers};
use crate::audit::SessionAudit;
use crate::proto::{DataFrame, DataKind, ExitStatus, Message};
use crate::transport::{SecureChannel, SecureReader, SecureWriter, TransportError};

/// How long an interrupted command has to end before its group gets SIGKILL.
const KILL_AFTER_INTERRUPT: Duration = Duration::from_secs(3);

/// Who is on the other end, for `whoami` and the logs.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The key's comment in authorized_keys.
    pub name: String,
    /// The key's fingerprint.
    pub fingerprint: String,
    /// The session id, hex.
    pub session_id: String,
    /// The client's address.
    pub address: String,
    /// What the key may do (authorized_keys options).
    pub policy: Policy,
    /// The session's audit events (set once the session starts).
    pub audit: Option<SessionAudit>,
}

/// Session timing knobs.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Close after this long without a command or input (None: never).
    pub idle_timeout: Option<Duration>,
    /// Send a Ping this often; a client silent for three intervals is gone.
    pub keepalive: Duration,
}

/// What the console asks the output task to send.
enum Output {
    /// A built-in's result.
    Builtin {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        status: i32,
        cwd: String,
    },
    /// A started command whose output to stream.
    Command {
        command: Box<Command>,
        cwd: String,
    },
    Pong(u64),
    Close(&'static str),
    /// A file transfer's reply or download.
    Transfer(transfer::Job),
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
    let console = Console {
        env: session_env(&home, &peer),
        cwd: home.clone(),
        home,
        peer,
        commands,
    };
    let (out_tx, out_rx) = mpsc::channel(4);
    let (done_tx, done_rx) = watch::channel(0u64);
    let writer = tokio::spawn(output_task(
        channel.writer,
        out_rx,
        done_tx,
        limits.keepalive,
        console.cwd_text(),
        audit.clone(),
    ));
    console_task(
        channel.reader,
        console,
        out_tx,
        done_rx,
        limits,
        stop,
        &audit,
    )
    .await;
    // The console has dropped its sender: the output task finishes what it has and ends.
    let _ = writer.await;
}

struct Console {
    cwd: PathBuf,
    home: PathBuf,
    env: Vec<(String, String)>,
    peer: Peer,
    commands: Arc<BTreeMap<String, Vec<String>>>,
}

/// Exit status of a line the key's policy refused (like a shell's "cannot execute").
const DENIED_STATUS: i32 = 126;

/// Words the console runs itself, for every key (restricted ones included), besides `exit`
/// alone, which ends the session (`exit N` is the shell's).
const BUILTINS: [&str; 4] = ["cd", "pwd", "whoami", "help"];

impl Console {
    /// How the key's policy lets `line` run: `None` for a built-in (always allowed, run by the
    /// console itself), else as the policy says.
    fn decide(&self, line: &str) -> Result<Option<Run>, Denied> {
        let first = line.split_whitespace().next().unwrap_or_default();
        if line.trim() == "exit" || BUILTINS.contains(&first) {
            return Ok(None);
        }
        self.peer.policy.authorize(line, &self.commands).map(Some)
    }

    fn cwd_text(&self) -> String {
        self.cwd.display().to_string()
    }

    /// Runs a built-in (any line whose first word is one, whatever its arguments), or returns
    /// None for a line that is not a built-in.
    fn builtin(&mut self, line: &str) -> Option<(Vec<u8>, Vec<u8>, i32)> {
        let mut words = line.split_whitespace();
        let word = words.next()?;
        let rest: Vec<&str> = words.collect();
        let ok = |text: String| Some((text.into_bytes(), Vec::new(), 0));
        match (word, rest.as_slice()) {
            ("cd", []) => self.cd(&self.home.clone()),
            ("cd", [dir]) => self.cd(&self.cwd.join(dir)),
            ("cd", _) => Some((Vec::new(), b"cd: too many arguments\n".to_vec(), 1)),
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
            ("pwd" | "whoami" | "help", _) => Some((
                Vec::new(),
                format!("{word}: takes no arguments\n").into_bytes(),
                2,
            )),
            _ => None,
        }
    }

    fn cd(&mut self, target: &Path) -> Option<(Vec<u8>, Vec<u8>, i32)> {
        match target.canonicalize() {
            Ok(dir) if dir.is_dir() => {
                self.cwd = dir;
                Some((Vec::new(), Vec::new(), 0))
            }
            Ok(_) => Some((
                Vec::new(),
                format!("cd: {}: not a directory\n", target.display()).into_bytes(),
                1,
            )),
            Err(err) => Some((
                Vec::new(),
                format!("cd: {}: {err}\n", target.display()).into_bytes(),
                1,
            )),
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

/// The running command, as the console sees it.
struct Current {
    generation: u64,
    pgid: Pid,
    stdin: Option<ChildStdin>,
    /// Bytes of stdin written to the command, for its `exit` event.
    stdin_bytes: Arc<AtomicU64>,
}

async fn console_task<R: AsyncRead>(
    mut reader: SecureReader<ReadHalf<R>>,
    mut console: Console,
    out: mpsc::Sender<Output>,
    mut done: watch::Receiver<u64>,
    limits: SessionLimits,
    mut stop: watch::Receiver<bool>,
    audit: &SessionAudit,
) {
    let mut current: Option<Current> = None;
    let mut transfers = Transfers::new(&console.peer, &console.home);
    let mut started = 0u64;
    let mut last_activity = Instant::now();
    let silence = limits.keepalive.saturating_mul(3);
    loop {
        if current
            .as_ref()
            .is_some_and(|c| *done.borrow() >= c.generation)
        {
            current = None;
        }
        if current.is_none()
            && !transfers.busy()
            && limits
                .idle_timeout
                .is_some_and(|idle| last_activity.elapsed() >= idle)
        {
            tracing::info!(key = %console.peer.fingerprint, "idle timeout");
            let _ = out.send(Output::Close("idle timeout")).await;
            break;
        }
        let msg = tokio::select! {
            msg = tokio::time::timeout(silence, reader.recv()) => msg,
            _ = stop.changed() => {
                let _ = out.send(Output::Close("server shutting down")).await;
                break;
            }
        };
        let msg = match msg {
            Err(_) => {
                tracing::info!(key = %console.peer.fingerprint, "client silent for {silence:?}: closing");
                break;
            }
            Ok(Err(err)) => {
                log_end(&console.peer, &err);
                break;
            }
            Ok(Ok(msg)) => msg,
        };
        match msg {
            Message::Exec { line } => {
                last_activity = Instant::now();
                // One command at a time: a client that gave up on the last one waits here.
                if let Some(c) = current.take() {
                    let generation = c.generation;
                    drop(c);
                    let _ = done.wait_for(|d| *d >= generation).await;
                }
                let line = line.to_owned();
                let run = match console.decide(&line) {
                    Ok(run) => run,
                    Err(denied) => {
                        tracing::warn!(key = %console.peer.fingerprint, name = %console.peer.name, command = %line, "denied: {denied}");
                        audit.denied(&line, &denied.to_string()).await;
                        started += 1;
                        let refusal = Output::Builtin {
                            stdout: Vec::new(),
                            stderr: format!("seashell: denied: {denied}\n").into_bytes(),
                            status: DENIED_STATUS,
                            cwd: console.cwd_text(),
                        };
                        if out.send(refusal).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                tracing::info!(key = %console.peer.fingerprint, name = %console.peer.name, session = %console.peer.session_id, command = %line, "command");
                if let Err(err) = audit.command(&line).await {
                    tracing::error!("command refused: {err}");
                    started += 1;
                    let refusal = Output::Builtin {
                        stdout: Vec::new(),
                        stderr: format!("seashell: command refused: {err}\n").into_bytes(),
                        status: 255,
                        cwd: console.cwd_text(),
                    };
                    if out.send(refusal).await.is_err() {
                        break;
                    }
                    continue;
                }
                if line.trim() == "exit" {
                    let _ = out.send(Output::Close("")).await;
                    break;
                }
                let Some(run) = run else {
                    let (stdout, stderr, status) = console.builtin(&line).unwrap_or_default();
                    started += 1;
                    let cwd = console.cwd_text();
                    if out
                        .send(Output::Builtin {
                            stdout,
                            stderr,
                            status,
                            cwd,
                        })
                        .await
                        .is_err()
                    {
                        break;
                    }
                    continue;
                };
                started += 1;
                match start_command(&line, run, &console, started, &out).await {
                    Ok(c) => current = c,
                    Err(_) => break,
                }
            }
            Message::Stdin(data) => {
                last_activity = Instant::now();
                if let Some(c) = current.as_mut()
                    && let Some(stdin) = c.stdin.as_mut()
                {
                    if stdin.write_all(data).await.is_ok() {
                        c.stdin_bytes
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                    } else {
                        // The command closed its stdin; later input for it is dropped.
                        c.stdin = None;
                    }
                }
            }
            Message::StdinEof => {
                if let Some(c) = current.as_mut() {
                    c.stdin = None;
                }
            }
            Message::Interrupt => {
                if let Some(c) = &current {
                    interrupt(c.pgid, c.generation, done.clone());
                }
            }
            Message::Ping(n) => {
                if out.send(Output::Pong(n)).await.is_err() {
                    break;
                }
            }
            Message::Pong(_) => {}
            Message::Close { .. } => break,
            msg if transfer::is_transfer(&msg) => {
                last_activity = Instant::now();
                // Like Exec: the command before it has sent its status; wait until it is done.
                if let Some(c) = current.take() {
                    let _ = done.wait_for(|d| *d >= c.generation).await;
                }
                match transfers.handle(msg, &console.cwd).await {
                    Ok(Some(job)) => {
                        if out.send(Output::Transfer(job)).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(key = %console.peer.fingerprint, "{err}: closing");
                        let _ = out.send(Output::Close("protocol error")).await;
                        break;
                    }
                }
            }
            other => {
                tracing::warn!(key = %console.peer.fingerprint, "unexpected {} from client: closing", other.name());
                let _ = out.send(Output::Close("protocol error")).await;
                break;
            }
        }
    }
    if let Some(c) = current {
        signal_group(c.pgid, Signal::SIGKILL);
    }
    transfers.end_session();
}

fn log_end(peer: &Peer, err: &TransportError) {
    tracing::info!(key = %peer.fingerprint, address = %peer.address, "session ended: {err}");
}

/// Spawns the command and hands its output to the output task. `Err` means the output task
/// is gone (the session is over); `Ok(None)`, that the command could not start (reported to
/// the client with status 127).
async fn start_command(
    line: &str,
    run: Run,
    console: &Console,
    generation: u64,
    out: &mpsc::Sender<Output>,
) -> Result<Option<Current>, mpsc::error::SendError<Output>> {
    let cwd = console.cwd_text();
    let spawned = match run {
        Run::Shell => process::spawn_shell(line, &console.cwd, &console.env),
        Run::Direct(argv) => process::spawn_direct(&argv, &console.cwd, &console.env),
    };
    let started = spawned.and_then(|mut running| {
        match (running.child.stdout.take(), running.child.stderr.take()) {
            (Some(stdout), Some(stderr)) => Ok((running, stdout, stderr)),
            _ => Err(std::io::Error::other("pipes missing")),
        }
    });
    match started {
        Ok((mut running, stdout, stderr)) => {
            let stdin = running.child.stdin.take();
            let pgid = running.pgid;
            let stdin_bytes = Arc::new(AtomicU64::new(0));
            let command = Box::new(Command {
                child: running.child,
                stdout,
                stderr,
                stdin_bytes: Arc::clone(&stdin_bytes),
            });
            out.send(Output::Command { command, cwd }).await?;
            Ok(Some(Current {
                generation,
                pgid,
                stdin,
                stdin_bytes,
            }))
        }
        Err(err) => {
            let stderr = format!("seashell: cannot start sh: {err}\n").into_bytes();
            out.send(Output::Builtin {
                stdout: Vec::new(),
                stderr,
                status: 127,
                cwd,
            })
            .await?;
            Ok(None)
        }
    }
}

/// SIGINT to the group now; SIGKILL if it is still running after [`KILL_AFTER_INTERRUPT`].
fn interrupt(pgid: Pid, generation: u64, mut done: watch::Receiver<u64>) {
    signal_group(pgid, Signal::SIGINT);
    tokio::spawn(async move {
        let finished =
            tokio::time::timeout(KILL_AFTER_INTERRUPT, done.wait_for(|d| *d >= generation)).await;
        if finished.is_err() {
            signal_group(pgid, Signal::SIGKILL);
        }
    });
}

async fn output_task<W: AsyncWrite>(
    mut writer: SecureWriter<WriteHalf<W>>,
    mut jobs: mpsc::Receiver<Output>,
    done: watch::Sender<u64>,
    keepalive: Duration,
    cwd: String,
    audit: SessionAudit,
) {
    if writer
        .send(&Message::ConsoleState { cwd: &cwd })
        .await
        .is_err()
    {
        return;
    }
    let mut keepalive = Keepalive::new(keepalive);
    let mut finished = 0u64;
    loop {
        let job = tokio::select! {
            job = jobs.recv() => job,
            ping = keepalive.due() => {
                if writer.send(&ping).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let result = match job {
            None => return,
            Some(Output::Builtin {
                stdout,
                stderr,
                status,
                cwd,
            }) => {
                finished += 1;
                let bytes_out = (stdout.len() + stderr.len()) as u64;
                tracing::info!(session = %audit.session_id(), status, "command ended");
                audit.exit(status, Duration::ZERO, 0, bytes_out).await;
                send_builtin(&mut writer, &stdout, &stderr, status, &cwd).await
            }
            Some(Output::Command { command, cwd }) => {
                let result =
                    stream_command(&mut writer, &mut keepalive, *command, &cwd, &audit).await;
                finished += 1;
                result
            }
            Some(Output::Pong(n)) => writer.send(&Message::Pong(n)).await,
            Some(Output::Transfer(job)) => {
                transfer::deliver(&mut writer, job, &mut keepalive).await
            }
            Some(Output::Close(reason)) => {
                let _ = writer.close(reason).await;
                return;
            }
        };
        done.send_replace(finished);
        if result.is_err() {
            return;
        }
    }
}

async fn send_builtin<W: AsyncWrite + Unpin>(
    writer: &mut SecureWriter<W>,
    stdout: &[u8],
    stderr: &[u8],
    status: i32,
    cwd: &str,
) -> Result<(), TransportError> {
    if !stdout.is_empty() {
        writer.send(&Message::Stdout(stdout)).await?;
    }
    if !stderr.is_empty() {
        writer.send(&Message::Stderr(stderr)).await?;
    }
    writer
        .send(&Message::Exit(ExitStatus::Code(status)))
        .await?;
    writer.send(&Message::ConsoleState { cwd }).await
}

/// A running command as the output task streams it.
struct Command {
    child: Child,
    stdout: ChildStdout,
    stderr: ChildStderr,
    /// Bytes of stdin the console task has written to it.
    stdin_bytes: Arc<AtomicU64>,
}

/// Streams both pipes until both end, then the exit status and the console state.
async fn stream_command<W: AsyncWrite + Unpin>(
    writer: &mut SecureWriter<W>,
    keepalive: &mut Keepalive,
    command: Command,
    cwd: &str,
    audit: &SessionAudit,
) -> Result<(), TransportError> {
    let Command {
        mut child,
        mut stdout,
        mut stderr,
        stdin_bytes,
    } = command;
    let began = Instant::now();
    let mut bytes_out = 0u64;
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
                Ok(n) => {
                    bytes_out += n as u64;
                    writer.send_data(DataKind::Stdout, &mut out_frame, n).await
                }
            },
            n = stderr.read(err_frame.payload_mut()), if err_open => match n {
                Ok(0) | Err(_) => {
                    err_open = false;
                    Ok(())
                }
                Ok(n) => {
                    bytes_out += n as u64;
                    writer.send_data(DataKind::Stderr, &mut err_frame, n).await
                }
            },
            ping = keepalive.due() => writer.send(&ping).await,
        };
    }
    if streamed.is_err()
        && let Some(pgid) = child.id().and_then(|id| i32::try_from(id).ok())
    {
        // The client is gone: end the command now, and still record how it ended.
        signal_group(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let status = match child.wait().await {
        Ok(status) => exit_status(status),
        Err(_) => ExitStatus::Code(255),
    };
    tracing::info!(session = %audit.session_id(), ?status, "command ended");
    let bytes_in = stdin_bytes.load(Ordering::Relaxed);
    audit
        .exit(
            i32::from(status.shell_code()),
            began.elapsed(),
            bytes_in,
            bytes_out,
        )
        .await;
    streamed?;
    writer.send(&Message::Exit(status)).await?;
    writer.send(&Message::ConsoleState { cwd }).await
}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(signal)) => ExitStatus::Signal(u8::try_from(signal).unwrap_or(u8::MAX)),
        (None, None) => ExitStatus::Code(255),
    }
}
