//! The console's shell: which program runs a console line, the arguments that make each
//! line run in the session's shell state and report that state back, and the parser of
//! that report. Every console line is its own process (its own group, its status from
//! `waitpid`), yet the console behaves like one long-lived shell: before the line, the
//! shell restores the state the previous line left (variables, exported or not, `$?`,
//! `OLDPWD`, and for bash also functions, aliases and `set -o`/`shopt` options); after it,
//! the shell writes a [`State`] record on descriptor [`STATE_FD`] and exits with the
//! line's status. The first state comes from one run of the user's login shell
//! ([`LoginShell::start_args`]), which reads the profile.
//!
//! This module only builds argument lists and environment entries and parses bytes: it
//! never spawns a process in production code (the session does, with the base
//! environment, the state's cwd and a pipe on [`STATE_FD`]) and decides no policy (which
//! shell is configured, whether a key may run a shell, what happens when a state is
//! unusable: all the caller's). What a shell wrote on [`STATE_FD`] is untrusted input:
//! [`State::parse`] is bounded ([`MAX_STATE`]), total and never panics, and the restore
//! code it makes is only ever given back to the same user's next shell.
//!
//! What does not carry, or differs from an interactive shell: traps (a trap set on a line
//! lasts for that line; an EXIT trap never runs), positional parameters, the directory
//! stack (`pushd`), jobs (`&` starts an unmanaged process; `$!` and `$$` are per line),
//! `TERM`, `COLUMNS`, `LINES` (the session's, each line), history. A shell that is not
//! interactive exits on what an interactive one survives: with `set -u`, a line that
//! expands an unset variable ends the shell, so the session (as `set -e` and a failing
//! command would at an interactive prompt too), and `set -n` stops it from coming back. bash traces a line under `set -x` with `++` (it runs through `eval`).
//!
//! Names beginning with `__seashell_` are reserved in the console's shell: the module's own
//! variables and functions use them and they are never carried. The module's shell code
//! names every builtin through `builtin` (bash) or a backslash (POSIX shells), so user
//! aliases cannot take it over; a user *function* named `builtin` or `command` can, and
//! that is the user's own session to break.

mod bash;
mod posix;
mod state;
#[cfg(test)]
mod tests;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use state::{RECORD_END, State, StateError};

/// The descriptor, in a console line's shell, on which it writes its state record: the
/// caller dup2s a pipe's write end onto it in the child and reads the other end.
pub const STATE_FD: i32 = 3;

/// The largest state record accepted, in bytes; a larger one is
/// [`StateError::TooLong`]. Read at most `MAX_STATE + 1` bytes.
pub const MAX_STATE: usize = 1 << 20;

/// The most restore code passed in one environment variable (Linux refuses a single
/// argument or environment string above 128 KiB with E2BIG).
const CHUNK: usize = 100_000;

/// The program used when the user has no usable shell.
const FALLBACK: &str = "/bin/sh";

/// How much of the shell state a shell can carry, and the code that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// bash (also rbash, or `sh` when it is bash): cwd, `$?`, variables with their
    /// attributes (exported, readonly, integer, arrays), `OLDPWD`, functions (and their
    /// export), aliases, `set -o` and `shopt` options.
    Bash,
    /// A POSIX shell (dash, ash, ksh, mksh...): cwd, `$?`, variables (exported or not,
    /// readonly), `OLDPWD`, aliases, `set -o` options. Functions are not carried (a POSIX
    /// shell cannot list them). zsh runs in this flavor too, untested: its state is
    /// limited to cwd, variables and `$?`, as far as its `set` output reads as POSIX.
    Posix,
}

impl Flavor {
    /// The flavor for a shell's file name, or `None` for a shell that cannot run POSIX
    /// shell code (csh, fish...).
    fn of(basename: &[u8]) -> Option<Self> {
        match basename {
            b"bash" | b"rbash" => Some(Self::Bash),
            b"csh" | b"tcsh" | b"fish" | b"nu" | b"xonsh" | b"elvish" | b"pwsh" | b"rc" | b"es"
            | b"ion" => None,
            // sh, dash, ash, ksh, ksh93, mksh, pdksh, posh, yash, zsh, busybox, and any
            // shell we do not know: POSIX shell code is the best guess.
            _ => Some(Self::Posix),
        }
    }
}

/// The program that runs console lines, and how much state it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginShell {
    /// The shell's path.
    pub program: PathBuf,
    /// What it carries from line to line.
    pub flavor: Flavor,
}

/// How to run one console line: the arguments after the program, and the variables to
/// add to the base environment.
///
/// The restore code travels in the environment, not in the arguments: it holds the
/// values of every variable (tokens a user exported, say), and any local user can read a
/// process's arguments (`ps`), while its environment is readable only by its own user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineArgs {
    /// The arguments after the program (`-c SCRIPT NAME LINE ...`).
    pub args: Vec<OsString>,
    /// Entries to add to the session's base environment (`__seashell_r0`, ...).
    pub env: Vec<(OsString, OsString)>,
}

impl LoginShell {
    /// The configured shell when set; else the passwd entry's shell unless it is a
    /// nologin/false one (basename `nologin` or `false`, or not an executable file); else
    /// /bin/sh. A shell that cannot run POSIX shell code (csh, tcsh, fish...) is replaced
    /// by /bin/sh too, configured or not. The flavor comes from the basenames of the path
    /// and of the file it resolves to, so a `/bin/sh` that is a link to bash is bash
    /// (bash, rbash: [`Flavor::Bash`]; sh, dash, ash, ksh, zsh, anything else:
    /// [`Flavor::Posix`]).
    ///
    /// rbash is run as bash and stays restricted (no `cd`, no output to files); the state
    /// still carries, as the module's code only duplicates and closes descriptors.
    pub fn choose(configured: Option<&Path>, passwd_shell: Option<&Path>) -> Self {
        let program = configured
            .map(Path::to_path_buf)
            .or_else(|| {
                passwd_shell
                    .filter(|shell| usable(shell))
                    .map(Path::to_path_buf)
            })
            .unwrap_or_else(|| PathBuf::from(FALLBACK));
        match flavor_of(&program) {
            Some(flavor) => Self { program, flavor },
            None => Self {
                flavor: flavor_of(Path::new(FALLBACK)).unwrap_or(Flavor::Posix),
                program: PathBuf::from(FALLBACK),
            },
        }
    }

    /// [`LoginShell::choose`] with the shell of the passwd entry of the server's
    /// effective user, read from /etc/passwd (a user known only to NSS, LDAP say, gets
    /// /bin/sh: nix's `user` feature, whose `User::from_uid` would ask NSS, is not
    /// enabled; the uid comes from rustix, whose `process` feature pty-process enables).
    pub fn from_passwd(configured: Option<&Path>) -> Self {
        let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
        let uid = rustix::process::geteuid().as_raw();
        let shell = passwd_shell(&passwd, uid);
        Self::choose(configured, shell.as_deref())
    }

    /// The arguments after the program for the session's first state: the user's login
    /// shell, once, reads /etc/profile and the user's profile (bash: `-l`, and `-i` when
    /// `terminal` is true because it runs on a pseudo-terminal; then also ~/.bashrc when
    /// none of ~/.bash_profile, ~/.bash_login, ~/.profile exists, since bash would then
    /// read no user file at all; POSIX shells: `-l`, and `-i`, which reads `$ENV`), then
    /// writes its state on [`STATE_FD`] and ends (without `exit`, which would run
    /// ~/.bash_logout). It never writes ~/.bash_history (`set +o history`), and the state
    /// carries no interactive-only option (monitor, history, emacs, vi, histexpand).
    ///
    /// Programs the profile starts inherit [`STATE_FD`] (the profile runs before any code
    /// of ours): read the state until the shell has been reaped, then drain what is
    /// there, rather than waiting for end of file.
    pub fn start_args(&self, terminal: bool) -> Vec<OsString> {
        let mut args = vec![OsString::from("-l")];
        if terminal {
            args.push("-i".into());
        }
        let script = match self.flavor {
            Flavor::Bash => bash::START,
            Flavor::Posix => posix::START,
        };
        args.extend(["-c".into(), script.into(), self.name()]);
        args
    }

    /// The arguments and extra environment for one console line, in `state`: `-c SCRIPT
    /// NAME LINE STATUS FLAGS CHUNKS`, where NAME (the shell's basename) becomes `$0` and
    /// the line sees no positional parameters. The line runs through `eval` with
    /// [`STATE_FD`] closed, so no program it runs inherits it. Ctrl-C (SIGINT to the
    /// group) aborts the line as at an interactive prompt: the state is written and the
    /// shell exits 130 (SIGQUIT: 131). A state of another flavor carries only its cwd
    /// and status.
    ///
    /// A line containing a NUL byte cannot be passed (the spawn fails); a line over 128
    /// KiB is refused by Linux (E2BIG), as with `sh -c LINE`.
    pub fn line_args(&self, state: &State, line: &str) -> LineArgs {
        let (restore, deferred) = match state.flavor() {
            Some(flavor) if flavor == self.flavor => (state.restore(), state.deferred()),
            _ => (&[][..], ""),
        };
        let chunks: Vec<&[u8]> = restore.chunks(CHUNK).collect();
        let script = match self.flavor {
            Flavor::Bash => bash::LINE,
            Flavor::Posix => posix::LINE,
        };
        let args = vec![
            "-c".into(),
            script.into(),
            self.name(),
            line.into(),
            state.status().to_string().into(),
            deferred.into(),
            chunks.len().to_string().into(),
        ];
        let env = chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                (
                    OsString::from(format!("__seashell_r{i}")),
                    OsStr::from_bytes(chunk).to_os_string(),
                )
            })
            .collect();
        LineArgs { args, env }
    }

    /// The arguments for `seashell exec HOST -- LINE`: `-c LINE`, a non-login shell, as
    /// sshd runs a command. No state is restored or written.
    pub fn exec_args(&self, line: &str) -> Vec<OsString> {
        vec!["-c".into(), line.into()]
    }

    /// `$0` for the shell's scripts: its basename.
    fn name(&self) -> OsString {
        self.program
            .file_name()
            .map_or_else(|| OsString::from("sh"), OsStr::to_os_string)
    }
}

/// Whether a passwd shell can run lines: not a nologin/false one, and an executable file.
fn usable(shell: &Path) -> bool {
    let name = shell.file_name().map(OsStr::as_bytes);
    if matches!(name, Some(b"nologin" | b"false") | None) {
        return false;
    }
    std::fs::metadata(shell)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The flavor of the shell at `program`: bash when either its own name or the name of
/// the file it resolves to is bash's (`/bin/sh` linked to bash runs bash code), none when
/// either is a non-POSIX shell's, else POSIX.
fn flavor_of(program: &Path) -> Option<Flavor> {
    let flavor = |path: &Path| Flavor::of(path.file_name().map_or(&[][..], OsStr::as_bytes));
    let own = flavor(program);
    let resolved = std::fs::canonicalize(program).map_or(own, |target| flavor(&target));
    match (own, resolved) {
        (Some(Flavor::Bash), _) | (_, Some(Flavor::Bash)) => Some(Flavor::Bash),
        (None, _) | (_, None) => None,
        _ => Some(Flavor::Posix),
    }
}

/// The shell field of `uid`'s line in an /etc/passwd text.
fn passwd_shell(passwd: &[u8], uid: u32) -> Option<PathBuf> {
    let uid = uid.to_string();
    passwd.split(|&b| b == b'\n').find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        match fields.as_slice() {
            [_, _, entry_uid, _, _, _, shell] if *entry_uid == uid.as_bytes() => {
                (!shell.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(shell)))
            }
            _ => None,
        }
    })
}
