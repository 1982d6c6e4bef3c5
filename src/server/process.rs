//! Running one process for a session: a program and its arguments (the session decides
//! which: the user's shell for a console line or the login, or a restricted key's argv) in
//! the session's cwd and exactly its environment, always as the leader of a session of its
//! own (so it never has the server's controlling terminal, and a signal to its process group
//! reaches every process it started). Either on pipes (stdin, stdout and stderr apart) or on
//! a new pseudo-terminal that is its controlling terminal, of the client's size and `TERM`;
//! optionally with the write end of a state pipe as one more descriptor. Also the signals
//! sent to a group. Never reads what the command is given or prints.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use pty_process::{OwnedReadPty, OwnedWritePty, Size};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::child_setup;
use crate::proto::WindowSize;

/// What to run and where.
pub struct Spawn<'a> {
    /// The program.
    pub program: &'a OsString,
    /// Its arguments.
    pub args: &'a [OsString],
    /// The working directory.
    pub cwd: &'a Path,
    /// Exactly the environment the command gets: these…
    pub env: &'a [(String, String)],
    /// …and these (a console line's state, which the line's shell reads and unsets).
    pub extra_env: &'a [(OsString, OsString)],
    /// A descriptor the command gets as `descriptor.1` (a state pipe's write end).
    pub descriptor: Option<(&'a OwnedFd, i32)>,
}

/// A running command, the process group it leads, and its side of the I/O.
pub struct Running {
    /// The process seashell started.
    pub child: Child,
    /// Its process group id (= its pid: it leads its own session).
    pub pgid: Pid,
    /// How to talk to it.
    pub io: Io,
}

/// A command's I/O: pipes, or the master side of its pseudo-terminal.
pub enum Io {
    /// stdin, stdout and stderr apart.
    Pipes {
        /// Its stdin.
        stdin: ChildStdin,
        /// Its stdout.
        stdout: ChildStdout,
        /// Its stderr.
        stderr: ChildStderr,
    },
    /// One terminal: what it reads and writes, merged as a terminal shows it.
    Pty {
        /// Keystrokes go here.
        input: OwnedWritePty,
        /// Everything it prints comes from here.
        output: OwnedReadPty,
    },
}

impl Spawn<'_> {
    /// Starts the command on pipes.
    pub fn on_pipes(&self) -> std::io::Result<Running> {
        let mut command = Command::new(self.program);
        command
            .args(self.args)
            .current_dir(self.cwd)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        child_setup::new_session(&mut command);
        if let Some((fd, target)) = self.descriptor {
            child_setup::pass_fd(&mut command, fd.as_raw_fd(), target);
        }
        let mut child = command.spawn()?;
        widen_pipes(&child);
        let pgid = pid_of(&child)?;
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(stdin), Some(stdout), Some(stderr)) => Ok(Running {
                child,
                pgid,
                io: Io::Pipes {
                    stdin,
                    stdout,
                    stderr,
                },
            }),
            _ => Err(std::io::Error::other("pipes missing")),
        }
    }

    /// Starts the command on a new pseudo-terminal of `size`, with `TERM=term`.
    pub fn on_pty(&self, term: &str, size: WindowSize) -> std::io::Result<Running> {
        let (pty, pts) = pty_process::open().map_err(std::io::Error::other)?;
        pty.resize(pty_size(size)).map_err(std::io::Error::other)?;
        let mut command = pty_process::Command::new(self.program)
            .args(self.args)
            .current_dir(self.cwd)
            .env_clear()
            .envs(
                self.env
                    .iter()
                    .filter(|(k, _)| k != "TERM")
                    .map(|(k, v)| (k, v)),
            )
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .env("TERM", term)
            .kill_on_drop(true);
        if let Some((fd, target)) = self.descriptor {
            command = child_setup::pass_fd_on_pty(command, fd.as_raw_fd(), target);
        }
        let child = command.spawn(pts).map_err(std::io::Error::other)?;
        let pgid = pid_of(&child)?;
        let (output, input) = pty.into_split();
        Ok(Running {
            child,
            pgid,
            io: Io::Pty { input, output },
        })
    }
}

/// Sets a pseudo-terminal's size (the kernel sends SIGWINCH to its foreground group).
pub fn resize(input: &OwnedWritePty, size: WindowSize) {
    if let Err(err) = input.resize(pty_size(size)) {
        tracing::debug!("cannot resize a command's terminal: {err}");
    }
}

fn pty_size(size: WindowSize) -> Size {
    Size::new_with_pixel(size.rows, size.cols, size.xpixel, size.ypixel)
}

fn pid_of(child: &Child) -> std::io::Result<Pid> {
    child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other("child exited before it could be tracked"))
}

/// How much a command may write ahead of us (and we ahead of it): the default 64 KiB pipe
/// makes a fast producer and the session wake each other for every 64 KiB.
const PIPE_SIZE: nix::libc::c_int = 1 << 20;

/// Makes the command's stdin and stdout pipes [`PIPE_SIZE`] bytes, where the system allows
/// it (Linux; at most `/proc/sys/fs/pipe-max-size`); otherwise they keep their size.
fn widen_pipes(child: &Child) {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{FcntlArg, fcntl};
        use std::os::fd::AsFd;
        let fds = [
            child.stdin.as_ref().map(|p| p.as_fd()),
            child.stdout.as_ref().map(|p| p.as_fd()),
        ];
        for fd in fds.into_iter().flatten() {
            if let Err(err) = fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE)) {
                tracing::debug!("cannot widen a command pipe: {err}");
            }
        }
    }
}

/// Sends `signal` to every process of the group; a group already gone is not an error.
pub fn signal_group(pgid: Pid, signal: Signal) {
    if let Err(err) = killpg(pgid, signal)
        && err != nix::errno::Errno::ESRCH
    {
        tracing::warn!(pgid = pgid.as_raw(), "cannot send {signal}: {err}");
    }
}
