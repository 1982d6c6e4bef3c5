//! The one place in seashell with `unsafe` code: a command's set-up between fork and exec.
//! Two things only: making a command on pipes the leader of a session of its own
//! (`setsid(2)`), so that it never has the server's controlling terminal (a command run by
//! `serve` in a terminal, or by `quickstart`, would otherwise read and write the operator's
//! terminal through /dev/tty); and handing a console line's shell the write end of its state
//! pipe as one known descriptor (`dup2(2)`), so that the pipe itself stays close-on-exec and
//! no other process the server starts ever inherits it. Commands on a pseudo-terminal get
//! their session from `pty-process`, which owns that set-up. Nothing else may be added here:
//! every other line of the crate is safe Rust.
#![allow(unsafe_code)]

use std::os::fd::RawFd;

use nix::libc;

/// Makes the command started by `command` call `setsid()` in the child before it execs.
pub fn new_session(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe functions may be called. It calls only setsid(2), a plain system
    // call (async-signal-safe by POSIX), allocates nothing, takes no lock and touches no
    // state shared with the parent. It cannot fail in a freshly forked child that is not a
    // group leader, and if it does, its error is returned and the spawn fails.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
}

/// Gives the child of `command` the descriptor `fd` as `target` (without close-on-exec).
/// `fd` must stay open in the parent until the spawn has returned.
pub fn pass_fd(command: &mut tokio::process::Command, fd: RawFd, target: RawFd) {
    // SAFETY: the closure runs in the forked child before exec. It calls only dup2(2) or
    // fcntl(2), plain system calls (async-signal-safe by POSIX), on two integers it owns by
    // copy; it allocates nothing and takes no lock. On failure its error is returned and
    // the spawn fails.
    unsafe {
        command.pre_exec(move || place_fd(fd, target));
    }
}

/// [`pass_fd`] for a command on a pseudo-terminal (after `pty-process`'s own set-up, which
/// makes it a session leader with the terminal as its controlling terminal).
pub fn pass_fd_on_pty(
    command: pty_process::Command,
    fd: RawFd,
    target: RawFd,
) -> pty_process::Command {
    // SAFETY: as in `pass_fd`: dup2(2) or fcntl(2) only, on integers owned by copy, in the
    // forked child before exec; errors fail the spawn.
    unsafe { command.pre_exec(move || place_fd(fd, target)) }
}

/// In the child: `fd` becomes `target`, inherited across exec.
fn place_fd(fd: RawFd, target: RawFd) -> std::io::Result<()> {
    // SAFETY: plain system calls on descriptor numbers; no memory is touched.
    let result = unsafe {
        if fd == target {
            // dup2 onto itself would keep close-on-exec: clear it instead.
            libc::fcntl(fd, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, target)
        }
    };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
