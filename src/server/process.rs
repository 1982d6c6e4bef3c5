//! Running one command line for a session: `sh -c LINE` (or, for a restricted key, an argv
//! directly) in the session's cwd and environment, in its own process group (so an interrupt or a disconnect reaches every
//! process it started), with stdin, stdout and stderr as pipes; and the signals sent to a
//! group.

use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// A running command and the process group it leads.
pub struct Running {
    /// The child (its pipes are taken by the caller).
    pub child: Child,
    /// Its process group id (= its pid).
    pub pgid: Pid,
}

/// Starts `sh -c line` in `cwd` with exactly `env`.
pub fn spawn_shell(line: &str, cwd: &Path, env: &[(String, String)]) -> std::io::Result<Running> {
    spawn(Command::new("/bin/sh").arg("-c").arg(line), cwd, env)
}

/// Starts `argv` directly, no shell (restricted keys): `argv[0]` is looked up in the
/// session's PATH.
pub fn spawn_direct(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
) -> std::io::Result<Running> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    spawn(Command::new(program).args(args), cwd, env)
}

fn spawn(command: &mut Command, cwd: &Path, env: &[(String, String)]) -> std::io::Result<Running> {
    command
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn()?;
    widen_pipes(&child);
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| std::io::Error::other("child exited before it could be tracked"))?;
    Ok(Running {
        child,
        pgid: Pid::from_raw(pid),
    })
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
