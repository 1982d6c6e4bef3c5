//! A POSIX shell's side of the shell state (dash, ash, ksh...): the scripts a console
//! line and the session's start run, the reader of what `set`, `export -p`,
//! `readonly -p` and `alias` print, and the restore code made from a POSIX state record.
//!
//! The scripts follow the same steps as bash's (see [`super::bash`]), in POSIX shell
//! code: every command word is backslash-quoted (a quoted word is never an alias; a POSIX
//! shell does not expand aliases for reserved words such as `{` or `case`), and the
//! variables are listed with `set` and filtered in Rust. Functions are not carried: a
//! POSIX shell cannot list them (dash has no `typeset -f`). A variable of the base
//! environment that a line unsets stays unset: the record's base section (`export -p`
//! before the restore) says which to unset again.

use super::StateError;
use super::state::{
    DEFERRED_OPTIONS, Record, SHELL_ONLY_OPTIONS, carried, is_identifier, lines, push_command,
};

/// The functions both scripts define; see [`super::bash`].
macro_rules! functions {
    () => {
        r#"__seashell_arm() {
\set -- "${__seashell_d-}" "${__seashell_st-0}"
\unset __seashell_d __seashell_st __seashell_line __seashell_pre
case $1 in ?*) \set "-$1" ;; esac
\return "$2"
}
__seashell_capture() {
{ \set +aeuvx; } 2>&-
\trap '' INT QUIT
\trap - EXIT
{
\command printf '%s\0%s\0' "$__seashell_st" "$__seashell_f"
\command pwd 2>&- || \command printf '%s\n' "$PWD"
case ${PATH+x} in x) \command printf '\0+%s\0' "$PATH" ;; *) \command printf '\0-\0' ;; esac
\set +o
\command printf '\0'
\set
\command printf '\0'
\export -p
\command printf '\0'
\readonly -p
\command printf '\0\0'
\command alias
\command printf '\0end\0'
} >&3
}
__seashell_done() { \__seashell_capture; \exit "$__seashell_st"; }
__seashell_intr() {
{ __seashell_st=$1 __seashell_f=$-${__seashell_d-}; \set +xv; } 2>&-
\trap '\__seashell_done' EXIT
}
"#
    };
}

/// The record's start: header, flavor, base environment.
macro_rules! record_start {
    () => {
        "{ \\command printf 'seashell-state\\0posix\\0'; \\export -p; \\command printf '\\0'; } >&3\n"
    };
}

/// `sh -c LINE_SCRIPT NAME LINE STATUS DEFERRED CHUNKS`.
pub(super) const LINE: &str = concat!(
    r#"{
__seashell_line=$1 __seashell_st=$2 __seashell_d=$3 __seashell_k=$4 __seashell_r= __seashell_i=0
\set --
while \[ "$__seashell_i" -lt "$__seashell_k" ]; do
\eval "__seashell_c=\${__seashell_r$__seashell_i?the shell state is missing from the environment}"
__seashell_r=$__seashell_r$__seashell_c
\unset "__seashell_r$__seashell_i"
__seashell_i=$((__seashell_i + 1))
done
"#,
    record_start!(),
    functions!(),
    r#"\trap '__seashell_int=130' INT
\trap '__seashell_int=131' QUIT
case $__seashell_r in ?*) \eval "$__seashell_r" ;; esac
\unset __seashell_r __seashell_c __seashell_i __seashell_k
\trap '\__seashell_intr 130; \exit 130' INT
\trap '\__seashell_intr 131; \exit 131' QUIT
case ${__seashell_int-} in ?*) \__seashell_intr "$__seashell_int"; \exit "$__seashell_int" ;; esac
case $__seashell_st in 0) __seashell_pre='\__seashell_arm 2>&-' ;; *) __seashell_pre='\__seashell_arm 2>&- && :' ;; esac
\eval "$__seashell_pre
$__seashell_line" 3>&-
{ __seashell_st=$? __seashell_f=$-; \set +xv; } 2>&-
\__seashell_done
}
"#
);

/// `sh -l [-i] -c START_SCRIPT NAME`, after the profile (and, with `-i`, `$ENV`); its
/// record's base section is empty, as bash's.
pub(super) const START: &str = concat!(
    "{\n",
    "\\command printf 'seashell-state\\0posix\\0\\0' >&3\n",
    functions!(),
    r#"{ __seashell_st=0 __seashell_f=$-; \set +xv; } 2>&-
\__seashell_capture
}
"#
);

/// The restore code for a POSIX record: unset the base variables the state no longer has
/// exported, assign every variable (re-quoted), export and mark readonly the ones that
/// were, options (`set -o`: not the interactive-only ones, not the deferred ones), and
/// the aliases last, in one command (an alias defined earlier in the same code would
/// apply to what follows it).
pub(super) fn restore(record: &Record<'_>) -> Result<Vec<u8>, StateError> {
    let vars: Vec<(Vec<u8>, Vec<u8>)> = entries(record.vars)?
        .into_iter()
        .filter_map(|entry| match entry.as_slice() {
            [word] => word.split(),
            _ => None,
        })
        .filter(|(name, _)| carried(name))
        .collect();
    let names = |declared: Vec<Declared>| -> Vec<Vec<u8>> {
        declared.into_iter().map(|(name, _)| name).collect()
    };
    let exports = names(declared(record.exports, b"export")?);
    let readonly = names(declared(record.readonly, b"readonly")?);
    let base = declared(record.base, b"export")?;
    let mut unset: Vec<Vec<u8>> = Vec::new();
    for (name, _) in &base {
        let kept = exports.contains(name) && vars.iter().any(|(n, _)| n == name);
        if !kept && !unset.contains(name) {
            unset.push(name.clone());
        }
    }
    // A variable the fresh shell already has from the base environment, exported with
    // the same value, needs no assignment (and `LANG` or `LC_*` would cost a setlocale).
    let vars: Vec<(Vec<u8>, Vec<u8>)> = vars
        .into_iter()
        .filter(|(name, value)| {
            !(exports.contains(name)
                && base
                    .iter()
                    .any(|(n, v)| n == name && v.as_deref() == Some(value.as_slice())))
        })
        .collect();
    let mut set_o = Vec::new();
    for line in lines(record.options) {
        if let [b"set", mode @ (b"-o" | b"+o"), name] = line
            .splitn(3, |&b| b == b' ')
            .collect::<Vec<_>>()
            .as_slice()
            && is_identifier(name)
            && !SHELL_ONLY_OPTIONS.contains(name)
            && !DEFERRED_OPTIONS.contains(name)
        {
            set_o.push(mode.to_vec());
            set_o.push(name.to_vec());
        }
    }
    let aliases: Vec<Vec<u8>> = entries(record.aliases)?
        .into_iter()
        .filter_map(|entry| {
            let mut words = entry.into_iter();
            match (words.next(), words.next(), words.next()) {
                (Some(word), None, None) => Some(word),
                (Some(first), Some(word), None) if first.text == b"alias" => Some(word),
                _ => None,
            }
        })
        .filter(|word| word.eq.is_some_and(|eq| eq > 0))
        .map(|word| quote(&word.text))
        .collect();
    let mut out = Vec::with_capacity(record.vars.len() + 1024);
    push_command(&mut out, b"\\unset", &unset);
    for (name, value) in &vars {
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(&quote(value));
        out.push(b'\n');
    }
    push_command(&mut out, b"\\export", &exports);
    push_command(&mut out, b"\\readonly", &readonly);
    push_command(&mut out, b"\\set", &set_o);
    push_command(&mut out, b"\\alias", &aliases);
    Ok(out)
}

/// A name `export -p` or `readonly -p` printed, and its value if it has one.
type Declared = (Vec<u8>, Option<Vec<u8>>);

/// The carried names, and values, of `export -p` or `readonly -p` output (`export
/// NAME='value'`, `export NAME`; some shells print `export -x`, `readonly -r` flags
/// first).
fn declared(text: &[u8], command: &[u8]) -> Result<Vec<Declared>, StateError> {
    let mut names: Vec<Declared> = Vec::new();
    for entry in entries(text)? {
        let mut words = entry.iter();
        if words.next().is_none_or(|word| word.text != command) {
            continue;
        }
        let Some(word) = words.find(|word| !word.text.starts_with(b"-")) else {
            continue;
        };
        let (name, value) = match word.split() {
            Some((name, value)) => (name, Some(value)),
            None => (word.text.clone(), None),
        };
        if carried(&name) && !names.iter().any(|(n, _)| *n == name) {
            names.push((name, value));
        }
    }
    Ok(names)
}

/// `text` in single quotes, as one shell word.
fn quote(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(b'\'');
    for &b in text {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// One shell word, its quotes removed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Word {
    /// The word's bytes.
    text: Vec<u8>,
    /// Where its first unquoted `=` is.
    eq: Option<usize>,
}

impl Word {
    /// `NAME=VALUE` split at the first unquoted `=`, when the name is a variable name.
    fn split(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let eq = self.eq?;
        let name = self.text.get(..eq)?;
        let value = self.text.get(eq + 1..)?;
        is_identifier(name).then(|| (name.to_vec(), value.to_vec()))
    }
}

/// The entries of shell output such as `set` prints (`NAME='it'\''s'`, values spanning
/// lines inside quotes), one entry per unquoted newline, each a list of words. Reads
/// single quotes, double quotes, `$'...'` and backslashes; an unterminated quote is
/// malformed.
fn entries(text: &[u8]) -> Result<Vec<Vec<Word>>, StateError> {
    let unterminated = StateError::Malformed("unterminated quote in the shell's output");
    let mut entries = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut word: Option<Word> = None;
    let mut rest = text;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'\n' | b' ' | b'\t' => {
                words.extend(word.take());
                if b == b'\n' && !words.is_empty() {
                    entries.push(std::mem::take(&mut words));
                }
            }
            b'\'' => {
                let end = rest
                    .iter()
                    .position(|&c| c == b'\'')
                    .ok_or(unterminated.clone())?;
                let (quoted, tail) = rest.split_at(end);
                word.get_or_insert_default().text.extend_from_slice(quoted);
                rest = tail.get(1..).unwrap_or_default();
            }
            b'"' => {
                let current = word.get_or_insert_default();
                loop {
                    match rest.split_first() {
                        None => return Err(unterminated),
                        Some((b'"', tail)) => {
                            rest = tail;
                            break;
                        }
                        Some((b'\\', tail)) => match tail.split_first() {
                            Some((b'\n', tail)) => rest = tail,
                            Some((&c @ (b'\\' | b'"' | b'$' | b'`'), tail)) => {
                                current.text.push(c);
                                rest = tail;
                            }
                            _ => {
                                current.text.push(b'\\');
                                rest = tail;
                            }
                        },
                        Some((&c, tail)) => {
                            current.text.push(c);
                            rest = tail;
                        }
                    }
                }
            }
            b'$' if rest.first() == Some(&b'\'') => {
                rest = ansi_c(
                    rest.get(1..).unwrap_or_default(),
                    word.get_or_insert_default(),
                )
                .ok_or(unterminated.clone())?;
            }
            b'\\' => match rest.split_first() {
                Some((b'\n', tail)) => rest = tail,
                Some((&c, tail)) => {
                    word.get_or_insert_default().text.push(c);
                    rest = tail;
                }
                None => word.get_or_insert_default().text.push(b'\\'),
            },
            _ => {
                let current = word.get_or_insert_default();
                if b == b'=' && current.eq.is_none() {
                    current.eq = Some(current.text.len());
                }
                current.text.push(b);
            }
        }
    }
    words.extend(word);
    if !words.is_empty() {
        entries.push(words);
    }
    Ok(entries)
}

/// Reads the body of a `$'...'` word (after the opening quote) into `word`; the rest, or
/// None when the quote is not closed.
fn ansi_c<'a>(mut rest: &'a [u8], word: &mut Word) -> Option<&'a [u8]> {
    loop {
        let (&b, tail) = rest.split_first()?;
        rest = tail;
        match b {
            b'\'' => return Some(rest),
            b'\\' => {
                let (&c, tail) = rest.split_first()?;
                rest = tail;
                let simple = match c {
                    b'a' => Some(7),
                    b'b' => Some(8),
                    b'e' | b'E' => Some(27),
                    b'f' => Some(12),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(11),
                    b'\\' | b'\'' | b'"' | b'?' => Some(c),
                    _ => None,
                };
                if let Some(byte) = simple {
                    word.text.push(byte);
                } else if (b'0'..=b'7').contains(&c) {
                    let mut value = u32::from(c - b'0');
                    for _ in 0..2 {
                        match rest.split_first() {
                            Some((&d @ b'0'..=b'7', tail)) => {
                                value = value * 8 + u32::from(d - b'0');
                                rest = tail;
                            }
                            _ => break,
                        }
                    }
                    word.text.push((value & 0xff) as u8);
                } else if c == b'x' {
                    let mut value = 0u32;
                    for _ in 0..2 {
                        match rest
                            .split_first()
                            .map(|(&d, tail)| ((d as char).to_digit(16), tail))
                        {
                            Some((Some(digit), tail)) => {
                                value = value * 16 + digit;
                                rest = tail;
                            }
                            _ => break,
                        }
                    }
                    word.text.push((value & 0xff) as u8);
                } else {
                    word.text.push(b'\\');
                    word.text.push(c);
                }
            }
            _ => word.text.push(b),
        }
    }
}
