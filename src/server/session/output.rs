//! The write side of a session: one task that owns the sealed writer and sends, in order,
//! what the console hands it — a command's output as produced (each chunk sent before the
//! next is read, so a slow client slows the command instead of growing a buffer), then its
//! exit status and the console state; built-ins' answers; Pongs; file transfers; the Close —
//! and a Ping whenever one is due. A command on a pseudo-terminal is one stream, done when
//! the process the session started exits: what the terminal still holds is sent, then the
//! terminal is let go (hung up). Its exit is recorded in the audit log, then reported to the
//! console, then sent to the client, in that order. It never decides anything about a
//! command's life: signals and timers are the session core's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pty_process::OwnedReadPty;
use tokio::io::{AsyncReadExt, AsyncWrite, WriteHalf};
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::audit::SessionAudit;
use crate::proto::{DataFrame, DataKind, ExitStatus, Message};
use crate::server::keepalive::Keepalive;
use crate::server::transfer;
use crate::transport::{SecureWriter, TransportError};

/// After the process on a terminal exits, how long the terminal may stay quiet before it is
/// let go (what the process wrote reaches the master side a moment after its exit).
const PTY_DRAIN_QUIET: Duration = Duration::from_millis(100);

/// After the process on a terminal exits, the longest a job it left behind can keep the
/// line open by writing to the terminal.
const PTY_DRAIN_MAX: Duration = Duration::from_secs(1);

/// What the console asks the output task to send.
pub enum Output {
    /// A line answered without running anything (a built-in, a refusal).
    Builtin {
        /// Its stdout.
        stdout: Vec<u8>,
        /// Its stderr.
        stderr: Vec<u8>,
        /// Its status.
        status: i32,
        /// The console's cwd after it.
        cwd: String,
    },
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
    Transfer(transfer::Job),
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
}

/// The read side of a command's I/O.
pub enum CommandOutput {
    /// Its stdout and stderr pipes.
    Pipes(ChildStdout, ChildStderr),
    /// The master side of its terminal.
    Pty(OwnedReadPty),
}

/// Sends what the console hands over until it drops its sender or a Close; `done` gets the
/// generation of each command as it ends. When a write fails (the client is gone) the
/// channel is closed at once, so the console learns it, and a running command is still
/// waited for and recorded.
pub async fn run<W: AsyncWrite>(
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
            Some(Output::Builtin {
                stdout,
                stderr,
                status,
                cwd,
            }) => {
                let bytes_out = (stdout.len() + stderr.len()) as u64;
                tracing::info!(session = %audit.session_id(), status, "command ended");
                audit.exit(status, Duration::ZERO, 0, bytes_out).await;
                send_builtin(&mut writer, &stdout, &stderr, status, &cwd).await
            }
            Some(Output::Command { command, cwd }) => {
                let mut channel = Channel {
                    writer: &mut writer,
                    keepalive: &mut keepalive,
                    jobs: &mut jobs,
                };
                stream_command(&mut channel, *command, &cwd, &audit, &done).await
            }
            Some(Output::Pong(n)) => writer.send(&Message::Pong(n)).await,
            Some(Output::PtyRefused) => writer.send(&Message::PtyRefused).await,
            Some(Output::Transfer(job)) => {
                transfer::deliver(&mut writer, job, &mut keepalive).await
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

/// Streams the command's output until it is done, records its exit, tells the console,
/// then sends the exit status and the console state.
async fn stream_command<W: AsyncWrite + Unpin>(
    channel: &mut Channel<'_, W>,
    command: Streamed,
    cwd: &str,
    audit: &SessionAudit,
    done: &watch::Sender<u64>,
) -> Result<(), TransportError> {
    let Streamed {
        mut child,
        output,
        generation,
        stdin_bytes,
    } = command;
    let began = Instant::now();
    let mut bytes_out = 0u64;
    let (streamed, exited) = match output {
        CommandOutput::Pipes(stdout, stderr) => {
            stream_pipes(channel, stdout, stderr, &mut bytes_out).await
        }
        CommandOutput::Pty(pty) => stream_pty(channel, &mut child, pty, &mut bytes_out).await,
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
    // Before the client can hear of the end (and send its next line), the console knows.
    done.send_replace(generation);
    streamed?;
    channel.writer.send(&Message::Exit(status)).await?;
    channel.writer.send(&Message::ConsoleState { cwd }).await
}

type Exited = Option<std::io::Result<std::process::ExitStatus>>;

/// Both pipes until both end (as `ssh host 'LINE'` does: a job left in the background with
/// them open keeps the line going), then the process's exit.
async fn stream_pipes<W: AsyncWrite + Unpin>(
    channel: &mut Channel<'_, W>,
    mut stdout: ChildStdout,
    mut stderr: ChildStderr,
    bytes_out: &mut u64,
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
                Ok(n) => {
                    *bytes_out += n as u64;
                    channel.writer.send_data(DataKind::Stdout, &mut out_frame, n).await
                }
            },
            n = stderr.read(err_frame.payload_mut()), if err_open => match n {
                Ok(0) | Err(_) => {
                    err_open = false;
                    Ok(())
                }
                Ok(n) => {
                    *bytes_out += n as u64;
                    channel.writer.send_data(DataKind::Stderr, &mut err_frame, n).await
                }
            },
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
    bytes_out: &mut u64,
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
                    *bytes_out += n as u64;
                    last_data = Instant::now();
                    channel.writer.send_data(DataKind::Stdout, &mut frame, n).await
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
