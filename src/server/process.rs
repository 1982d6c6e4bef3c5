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
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| std::io::Error::other("child exited before it could be tracked"))?;
    Ok(Running {
        child,
        pgid: Pid::from_raw(pid),
    })
}

/// Sends `signal` to every process of the group; a group already gone is not an error.
pub fn signal_group(pgid: Pid, signal: Signal) {
    if let Err(err) = killpg(pgid, signal)
        && err != nix::errno::Errno::ESRCH
    {
        tracing::warn!(pgid = pgid.as_raw(), "cannot send {signal}: {err}");
    }
}
