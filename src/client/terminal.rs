//! Our own terminal, around a command that runs on a remote pseudo-terminal: which `TERM`
//! to ask for, the window size (TIOCGWINSZ, through rustix's safe call), whether `-t`/`-tt`/
//! `-T` and our stdin ask for a pty at all, and raw mode. Raw mode starts from the termios
//! saved from stdin and ends by setting exactly that termios again: when the [`RawMode`]
//! guard drops, and on the ways out a guard does not see: a panic (a hook restores before
//! the message is printed) and SIGTERM, SIGHUP or SIGQUIT (a watcher restores, then exits
//! 128+N). This module never sets any terminal mode but raw and the saved one, and never
//! writes to the terminal.

use std::ffi::OsStr;
use std::sync::{Mutex, Once};

use nix::sys::signal::Signal;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use tokio::signal::unix::{SignalKind, signal};

use crate::proto::WindowSize;
use crate::proto::message::MAX_TERM;

/// The terminal type sent when ours is unknown or cannot be sent.
pub const DUMB_TERM: &str = "dumb";

/// What `-t`, `-tt` and `-T` asked for (as in ssh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtyRequest {
    /// `-T`, or no flag for `exec`: pipes.
    Never,
    /// `-t`: a pty if our stdin is a terminal.
    IfTerminal,
    /// `-tt`: a pty even when our stdin is not a terminal.
    Always,
}

impl PtyRequest {
    /// The request of `exec`'s flags: the number of `-t`s, and `-T`.
    pub fn from_flags(t_count: u8, disable: bool) -> Self {
        match (disable, t_count) {
            (true, _) | (false, 0) => Self::Never,
            (false, 1) => Self::IfTerminal,
            (false, _) => Self::Always,
        }
    }
}

/// How a command runs, given the request and whether our stdin is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtyPlan {
    /// Plain Exec on pipes.
    Pipes,
    /// `-t` without a terminal on stdin: pipes, and say why (as ssh does).
    PipesNoTerminal,
    /// ExecPty, our terminal in raw mode, keys through the escapes.
    Interactive,
    /// ExecPty, our stdin forwarded as it comes (`-tt` without a terminal).
    Forced,
}

impl PtyPlan {
    /// The plan for `request` when our stdin is (or is not) a terminal.
    pub fn new(request: PtyRequest, stdin_is_terminal: bool) -> Self {
        match (request, stdin_is_terminal) {
            (PtyRequest::Never, _) => Self::Pipes,
            (PtyRequest::IfTerminal, false) => Self::PipesNoTerminal,
            (PtyRequest::IfTerminal | PtyRequest::Always, true) => Self::Interactive,
            (PtyRequest::Always, false) => Self::Forced,
        }
    }
}

/// What ssh says, word for word, when `-t` meets a stdin that is not a terminal.
pub const NO_TERMINAL_WARNING: &str =
    "Pseudo-terminal will not be allocated because stdin is not a terminal.";

/// The terminal type to send for `TERM=value`: the value if it is 1 to 64 printable ASCII
/// characters without a space (what the protocol carries), else [`DUMB_TERM`].
pub fn term_type(value: Option<&OsStr>) -> String {
    value
        .and_then(OsStr::to_str)
        .filter(|term| {
            (1..=MAX_TERM).contains(&term.len()) && term.bytes().all(|b| b.is_ascii_graphic())
        })
        .unwrap_or(DUMB_TERM)
        .to_owned()
}

/// Our `TERM`, checked as [`term_type`] does.
pub fn local_term_type() -> String {
    term_type(std::env::var_os("TERM").as_deref())
}

/// The size of our terminal: stdin's, else stdout's, else all zeros (unknown).
pub fn window_size() -> WindowSize {
    rustix::termios::tcgetwinsize(std::io::stdin())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdout()))
        .map(|size| WindowSize {
            rows: size.ws_row,
            cols: size.ws_col,
            xpixel: size.ws_xpixel,
            ypixel: size.ws_ypixel,
        })
        .unwrap_or_default()
}

/// The termios to set again on a way out that no guard sees: the one saved when raw mode
/// was first entered (the user's own mode, which the REPL also keeps between commands).
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Our terminal in raw mode; dropping it sets the saved termios again.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Saves stdin's termios and puts the terminal in raw mode (cfmakeraw of the saved
    /// one). The first time, it also sets up the restoring on panics and signals.
    pub fn enter() -> std::io::Result<Self> {
        let saved = tcgetattr(std::io::stdin())?;
        remember(&saved);
        restore_on_panic_and_signals();
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &raw)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.saved);
    }
}

fn remember(saved: &Termios) {
    let mut slot = SAVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *slot = Some(saved.clone());
}

/// Sets the saved termios again, if raw mode was ever entered.
fn restore_saved() {
    let slot = SAVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(saved) = slot.as_ref() {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, saved);
    }
}

/// Once per process: a panic hook that restores the terminal before the panic is reported,
/// and (inside a tokio runtime) a task that, on SIGTERM, SIGHUP or SIGQUIT, restores it and
/// exits 128+N. Listening replaces the signals' default action for good, so the task stays
/// for the rest of the process, and serves the REPL's prompt too.
fn restore_on_panic_and_signals() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_saved();
            report(info);
        }));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(exit_on_signals());
        }
    });
}

/// Waits for SIGTERM, SIGHUP or SIGQUIT; then restores the terminal and exits 128+N.
async fn exit_on_signals() {
    let (Ok(mut term), Ok(mut hup), Ok(mut quit)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::quit()),
    ) else {
        return;
    };
    let caught = tokio::select! {
        _ = term.recv() => Signal::SIGTERM,
        _ = hup.recv() => Signal::SIGHUP,
        _ = quit.recv() => Signal::SIGQUIT,
    };
    restore_saved();
    std::process::exit(128 + caught as i32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usual_term_is_sent_as_it_is() {
        assert_eq!(
            term_type(Some(OsStr::new("xterm-256color"))),
            "xterm-256color"
        );
        assert_eq!(term_type(Some(OsStr::new(&"x".repeat(64)))), "x".repeat(64));
    }

    #[test]
    fn an_unset_empty_or_unsendable_term_is_dumb() {
        assert_eq!(term_type(None), DUMB_TERM);
        assert_eq!(term_type(Some(OsStr::new(""))), DUMB_TERM);
        assert_eq!(term_type(Some(OsStr::new("xterm color"))), DUMB_TERM);
        assert_eq!(term_type(Some(OsStr::new("xterm\u{1b}[31m"))), DUMB_TERM);
        assert_eq!(term_type(Some(OsStr::new("vt100é"))), DUMB_TERM);
        assert_eq!(term_type(Some(OsStr::new(&"x".repeat(65)))), DUMB_TERM);
    }

    #[test]
    fn flags_map_to_requests_as_in_ssh() {
        assert_eq!(PtyRequest::from_flags(0, false), PtyRequest::Never);
        assert_eq!(PtyRequest::from_flags(1, false), PtyRequest::IfTerminal);
        assert_eq!(PtyRequest::from_flags(2, false), PtyRequest::Always);
        assert_eq!(PtyRequest::from_flags(3, false), PtyRequest::Always);
        assert_eq!(PtyRequest::from_flags(0, true), PtyRequest::Never);
    }

    #[test]
    fn a_pty_needs_a_terminal_unless_forced() {
        use PtyPlan::*;
        assert_eq!(PtyPlan::new(PtyRequest::Never, true), Pipes);
        assert_eq!(PtyPlan::new(PtyRequest::Never, false), Pipes);
        assert_eq!(PtyPlan::new(PtyRequest::IfTerminal, true), Interactive);
        assert_eq!(PtyPlan::new(PtyRequest::IfTerminal, false), PipesNoTerminal);
        assert_eq!(PtyPlan::new(PtyRequest::Always, true), Interactive);
        assert_eq!(PtyPlan::new(PtyRequest::Always, false), Forced);
    }
}
