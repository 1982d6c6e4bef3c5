//! The one place in seashell with `unsafe` code: making a command on pipes the leader of a
//! session of its own (`setsid(2)` between fork and exec), so that it never has the
//! server's controlling terminal (a command run by `serve` in a terminal, or by
//! `quickstart`, would otherwise read and write the operator's terminal through /dev/tty).
//! Commands on a pseudo-terminal get their session from `pty-process`, which owns that
//! set-up. Nothing else may be added here: every other line of the crate is safe Rust.
#![allow(unsafe_code)]

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
