//! The shell state record a console line's shell writes on [`super::STATE_FD`], its
//! parser, and the [`State`] it becomes. The record is untrusted input: parsing is
//! bounded by [`MAX_STATE`], total, and never panics.
//!
//! Format: NUL-separated fields (shell values hold no NUL), the first three written when
//! the shell starts, the rest when the line is over; a record without its final `end`
//! field is incomplete (the shell ended without coming back to us).
//!
//! ```text
//! seashell-state \0 FLAVOR \0 BASE \0 STATUS \0 FLAGS \0 CWD \0 PATH \0
//! OPTIONS \0 VARS \0 EXPORTS \0 READONLY \0 FUNCS \0 ALIASES \0 end \0
//! ```
//!
//! - FLAVOR: `bash` or `posix`, the code that wrote it.
//! - BASE: `export -p` as the shell started, before any state was restored: the base
//!   environment, so that a variable of it that a line unset stays unset, and one the
//!   state has unchanged is not restored again. Empty in the start's record (the
//!   profile has run by then).
//! - STATUS: `$?` after the line, decimal, 0..=255. FLAGS: `$-` after the line.
//! - CWD: `pwd` (`$PWD` if that fails), with its newline. PATH: `+` and `$PATH`, or `-`
//!   when PATH is unset.
//! - OPTIONS: bash `shopt -p` and `set +o`; POSIX `set +o`.
//! - VARS: bash `declare -p`; POSIX `set`. EXPORTS, READONLY: POSIX `export -p`,
//!   `readonly -p` (bash: empty, its VARS say it).
//! - FUNCS: bash `declare -f` and `declare -Fx` (POSIX: empty). ALIASES: bash `alias -p`,
//!   POSIX `alias`.
//!
//! [`State::parse`] turns the fields into restore code (see [`super::bash`] and
//! [`super::posix`]), leaving out what must never carry: see [`carried`].

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Flavor, MAX_STATE, bash, posix};

/// A record's first field.
const HEADER: &[u8] = b"seashell-state\0";

/// A complete record's last field.
/// How a whole state record ends (what the session's reader waits for).
pub const RECORD_END: &[u8] = b"\0end\0";

/// Why a shell's state record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// More than [`MAX_STATE`] bytes.
    #[error("the shell state is larger than 1 MiB (too many variables or functions)")]
    TooLong,
    /// The shell ended before it wrote its state: the line ran `exit` or `exec`, or the
    /// shell was killed.
    #[error("the shell ended without reporting its state (exit, exec, or killed)")]
    Incomplete,
    /// Not a record this module writes.
    #[error("the shell state is malformed: {0}")]
    Malformed(&'static str),
}

/// A console session's shell state: where the next line runs, the `$?` it sees, the
/// shell's PATH, and the (opaque) code that restores the rest.
#[derive(Clone, PartialEq, Eq)]
pub struct State {
    /// The shell's `$PWD`.
    cwd: PathBuf,
    /// `$?`.
    status: i32,
    /// `$PATH`, when set and UTF-8.
    path: Option<String>,
    /// Shell code, for `flavor`.
    restore: Vec<u8>,
    /// `set` letters to turn on just before the line (errexit, xtrace... would act on
    /// our own code if restored with the rest).
    deferred: String,
    /// The flavor of `restore` (None: the plain state).
    flavor: Option<Flavor>,
}

impl fmt::Debug for State {
    /// The restore code holds every variable's value (secrets too): never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("cwd", &self.cwd)
            .field("status", &self.status)
            .field("path", &self.path)
            .field("flavor", &self.flavor)
            .field("restore_bytes", &self.restore.len())
            .finish()
    }
}

impl State {
    /// The plain state: cwd `home`, status 0, no restore code (the base environment and
    /// the shell's defaults apply, with aliases expanded).
    pub fn plain(home: &Path) -> Self {
        Self {
            cwd: home.to_path_buf(),
            status: 0,
            path: None,
            restore: Vec::new(),
            deferred: String::new(),
            flavor: None,
        }
    }

    /// The shell's current directory (`$PWD`), where the next line runs.
    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    /// `$?` after the last line (0..=255).
    pub fn status(&self) -> i32 {
        self.status
    }

    /// The shell's PATH (for completion); None when unset, not UTF-8, or in the plain
    /// state (then the base environment's PATH applies).
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The restore code.
    pub(super) fn restore(&self) -> &[u8] {
        &self.restore
    }

    /// The deferred `set` letters.
    pub(super) fn deferred(&self) -> &str {
        &self.deferred
    }

    /// The flavor of the restore code (None: plain).
    pub(super) fn flavor(&self) -> Option<Flavor> {
        self.flavor
    }

    /// Parses what a line's shell wrote on [`super::STATE_FD`] (read to its end, at most
    /// [`MAX_STATE`] + 1 bytes). Untrusted input: bounded, total, never panics.
    pub fn parse(bytes: &[u8]) -> Result<State, StateError> {
        if bytes.len() > MAX_STATE {
            return Err(StateError::TooLong);
        }
        let Some(rest) = bytes.strip_prefix(HEADER) else {
            return Err(if HEADER.starts_with(bytes) {
                StateError::Incomplete
            } else {
                StateError::Malformed("not a seashell state record")
            });
        };
        let Some(body) = rest.strip_suffix(RECORD_END) else {
            return Err(StateError::Incomplete);
        };
        let fields: Vec<&[u8]> = body.split(|&b| b == 0).collect();
        let [
            flavor,
            base,
            status,
            flags,
            cwd,
            path,
            options,
            vars,
            exports,
            readonly,
            funcs,
            aliases,
        ] = fields.as_slice()
        else {
            return Err(StateError::Malformed("wrong number of fields"));
        };
        let flavor = match *flavor {
            b"bash" => Flavor::Bash,
            b"posix" => Flavor::Posix,
            _ => return Err(StateError::Malformed("unknown flavor")),
        };
        let record = Record {
            base,
            options,
            vars,
            exports,
            readonly,
            funcs,
            aliases,
        };
        let restore = match flavor {
            Flavor::Bash => bash::restore(&record),
            Flavor::Posix => posix::restore(&record)?,
        };
        Ok(State {
            cwd: parse_cwd(cwd)?,
            status: parse_status(status)?,
            path: parse_path(path)?,
            restore,
            deferred: deferred(flags),
            flavor: Some(flavor),
        })
    }
}

/// The fields of a record that become restore code.
pub(super) struct Record<'a> {
    /// `export -p` before the restore.
    pub base: &'a [u8],
    /// Options.
    pub options: &'a [u8],
    /// Variables.
    pub vars: &'a [u8],
    /// POSIX: `export -p`.
    pub exports: &'a [u8],
    /// POSIX: `readonly -p`.
    pub readonly: &'a [u8],
    /// bash: functions.
    pub funcs: &'a [u8],
    /// Aliases.
    pub aliases: &'a [u8],
}

fn parse_status(field: &[u8]) -> Result<i32, StateError> {
    let bad = StateError::Malformed("the status is not a number in 0..=255");
    if field.is_empty() || field.len() > 3 || !field.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    let status = field
        .iter()
        .fold(0i32, |n, &d| n * 10 + i32::from(d - b'0'));
    if status > 255 {
        return Err(bad);
    }
    Ok(status)
}

fn parse_cwd(field: &[u8]) -> Result<PathBuf, StateError> {
    let cwd = field
        .strip_suffix(b"\n")
        .ok_or(StateError::Malformed("the cwd does not end with a newline"))?;
    if !cwd.starts_with(b"/") {
        return Err(StateError::Malformed("the cwd is not an absolute path"));
    }
    Ok(PathBuf::from(OsStr::from_bytes(cwd)))
}

fn parse_path(field: &[u8]) -> Result<Option<String>, StateError> {
    match field.split_first() {
        Some((b'+', path)) => Ok(std::str::from_utf8(path).ok().map(str::to_owned)),
        Some((b'-', [])) => Ok(None),
        _ => Err(StateError::Malformed("bad PATH field")),
    }
}

/// The letters of `set` options in `$-` that are turned on only just before the line:
/// allexport (it would export the restore's own variables), errexit, nounset, verbose
/// and xtrace (they would act on, or show, our own code).
fn deferred(flags: &[u8]) -> String {
    "aeuvx"
        .chars()
        .filter(|&c| u8::try_from(c).is_ok_and(|c| flags.contains(&c)))
        .collect()
}

/// The long names of the deferred options, left out of the restored `set -o` list.
pub(super) const DEFERRED_OPTIONS: &[&[u8]] =
    &[b"allexport", b"errexit", b"nounset", b"verbose", b"xtrace"];

/// Options of interactive shells (from the start's login shell), or that would stop the
/// line's shell from coming back (onecmd, noexec): never carried.
pub(super) const SHELL_ONLY_OPTIONS: &[&[u8]] = &[
    b"monitor",
    b"history",
    b"emacs",
    b"vi",
    b"histexpand",
    b"interactive",
    b"stdin",
    b"onecmd",
    b"noexec",
    b"privileged",
];

/// Whether `name` is a shell variable name.
pub(super) fn is_identifier(name: &[u8]) -> bool {
    match name.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        None => false,
    }
}

/// Whether a variable carries from line to line: a name, and not one of the shell's own
/// special or per-process variables (bash's `BASH*`, `EUID`, `PPID`, `RANDOM`,
/// `SECONDS`, `LINENO`...), nor `TERM`, `COLUMNS`, `LINES` (the session's, for each
/// line), `PWD` (the cwd is applied by the caller), `SHLVL`, `OPTIND`, `_`, nor one with
/// the reserved prefix `__seashell_`.
pub(super) fn carried(name: &[u8]) -> bool {
    const NEVER: &[&[u8]] = &[
        b"EUID",
        b"UID",
        b"PPID",
        b"SHELLOPTS",
        b"FUNCNAME",
        b"GROUPS",
        b"RANDOM",
        b"SRANDOM",
        b"SECONDS",
        b"LINENO",
        b"HISTCMD",
        b"EPOCHREALTIME",
        b"EPOCHSECONDS",
        b"PIPESTATUS",
        b"_",
        b"DIRSTACK",
        b"SHLVL",
        b"COLUMNS",
        b"LINES",
        b"TERM",
        b"PWD",
        b"OPTIND",
    ];
    is_identifier(name)
        && !name.starts_with(b"BASH")
        && !name.starts_with(b"__seashell_")
        && !NEVER.contains(&name)
}

/// `text`'s lines, without their newlines.
pub(super) fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n').filter(|line| !line.is_empty())
}

/// Appends `text` and, unless it ends with one or is empty, a newline.
pub(super) fn push_block(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(text);
    if !text.is_empty() && !text.ends_with(b"\n") {
        out.push(b'\n');
    }
}

/// Appends `command` and the `words` joined by spaces, and a newline, when there are
/// words.
pub(super) fn push_command(out: &mut Vec<u8>, command: &[u8], words: &[Vec<u8>]) {
    if words.is_empty() {
        return;
    }
    out.extend_from_slice(command);
    for word in words {
        out.push(b' ');
        out.extend_from_slice(word);
    }
    out.push(b'\n');
}
