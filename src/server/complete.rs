//! The server's half of Tab completion: which names complete a word the client sends, from
//! the shell's PATH and builtins in command position, else from the paths under the shell's
//! cwd (`~` is the home); for a restricted key only its allowed command words, never a
//! path. It only lists directories: it never writes, never runs a program, never follows
//! anything but the directory the word names. The word is untrusted: a long word gets no
//! answer, at most [`MAX_SCANNED`] entries are looked at per request, and the answer holds
//! at most [`MAX_COMPLETIONS`] names. It runs on a blocking thread, never on the async
//! workers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use crate::proto::message::MAX_COMPLETIONS;

/// The most directory entries looked at per request.
pub const MAX_SCANNED: usize = 100_000;

/// The longest word (and name) answered.
const MAX_NAME: usize = 4096;

/// bash's builtins and reserved words.
pub const BASH_BUILTINS: &[&str] = &[
    "alias", "bg", "bind", "break", "builtin", "caller", "case", "cd", "command", "compgen",
    "complete", "compopt", "continue", "declare", "dirs", "disown", "do", "done", "echo",
    "elif", "else", "enable", "esac", "eval", "exec", "exit", "export", "false", "fc", "fg",
    "fi", "for", "function", "getopts", "hash", "help", "history", "if", "in", "jobs", "kill",
    "let", "local", "logout", "mapfile", "popd", "printf", "pushd", "pwd", "read", "readarray",
    "readonly", "return", "select", "set", "shift", "shopt", "source", "suspend", "test",
    "then", "time", "times", "trap", "true", "type", "typeset", "ulimit", "umask", "unalias",
    "unset", "until", "wait", "while",
];

/// A POSIX shell's builtins and reserved words (dash's).
pub const POSIX_BUILTINS: &[&str] = &[
    "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done", "echo", "elif",
    "else", "esac", "eval", "exec", "exit", "export", "false", "fg", "fi", "for", "getopts",
    "hash", "if", "in", "jobs", "kill", "local", "printf", "pwd", "read", "readonly",
    "return", "set", "shift", "test", "then", "times", "trap", "true", "type", "ulimit",
    "umask", "unalias", "unset", "until", "wait", "while",
];

/// Where a shell's names come from.
pub struct Context<'a> {
    /// The shell's cwd.
    pub cwd: &'a Path,
    /// The user's home, for `~`.
    pub home: &'a Path,
    /// The shell's PATH.
    pub path: Option<&'a str>,
    /// The shell's builtins and reserved words.
    pub builtins: &'a [&'a str],
}

/// What a key may be offered.
pub enum Words<'a> {
    /// A shell's commands and paths.
    Shell(Context<'a>),
    /// A restricted key's allowed command words, and nothing else.
    Restricted(&'a [String]),
}

/// The names that complete `word` (as the shell would see it, unquoted): sorted, without
/// duplicates, at most [`MAX_COMPLETIONS`].
pub fn complete(word: &str, command: bool, words: &Words<'_>) -> Vec<String> {
    if word.len() > MAX_NAME {
        return Vec::new();
    }
    let mut names: Vec<String> = match words {
        Words::Restricted(allowed) => allowed
            .iter()
            .filter(|w| command && w.starts_with(word))
            .cloned()
            .collect(),
        Words::Shell(ctx) if command && !word.contains('/') => {
            let mut names: Vec<String> = ctx
                .builtins
                .iter()
                .filter(|b| b.starts_with(word))
                .map(|b| (*b).to_owned())
                .collect();
            commands(word, ctx.path.unwrap_or_default(), &mut names);
            names
        }
        Words::Shell(ctx) => paths(word, ctx, command),
    };
    names.sort();
    names.dedup();
    names.truncate(MAX_COMPLETIONS);
    names
}

/// Executables starting with `prefix` in the directories of `path`.
fn commands(prefix: &str, path: &str, names: &mut Vec<String>) {
    let mut budget = MAX_SCANNED;
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if budget == 0 || names.len() >= MAX_COMPLETIONS {
                return;
            }
            budget -= 1;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with(prefix) && name.len() <= MAX_NAME && is_executable(&entry.path())
            {
                names.push(name);
            }
        }
    }
}

/// A regular file (through a link) with an execute bit.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Paths completing `word`: its directory part as typed, then each entry's name.
fn paths(word: &str, ctx: &Context<'_>, executables_only: bool) -> Vec<String> {
    let (dir_part, prefix) = match word.rfind('/') {
        Some(at) => (word.get(..=at).unwrap_or_default(), word.get(at + 1..).unwrap_or_default()),
        None => ("", word),
    };
    let dir = resolve(dir_part, ctx);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in entries.flatten().take(MAX_SCANNED) {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
            continue;
        }
        let path = entry.path();
        let is_dir = path.is_dir();
        if executables_only && !is_dir && !is_executable(&path) {
            continue;
        }
        let full = format!("{dir_part}{name}{}", if is_dir { "/" } else { "" });
        if full.len() <= MAX_NAME {
            names.push(full);
        }
        if names.len() >= MAX_COMPLETIONS {
            break;
        }
    }
    names
}

/// The directory a word's directory part names: `~`/`~/…` under the home, an absolute path
/// as is, else under the cwd.
fn resolve(dir_part: &str, ctx: &Context<'_>) -> PathBuf {
    if dir_part == "~/" || dir_part == "~" {
        return ctx.home.to_path_buf();
    }
    if let Some(rest) = dir_part.strip_prefix("~/") {
        return ctx.home.join(rest);
    }
    if dir_part.starts_with('/') {
        return PathBuf::from(dir_part);
    }
    if dir_part.is_empty() {
        return ctx.cwd.to_path_buf();
    }
    ctx.cwd.join(dir_part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell<'a>(cwd: &'a Path, home: &'a Path, path: Option<&'a str>) -> Words<'a> {
        Words::Shell(Context {
            cwd,
            home,
            path,
            builtins: BASH_BUILTINS,
        })
    }

    #[test]
    fn commands_come_from_path_executables_and_builtins() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("exportfs-tool"), "").unwrap();
        std::fs::set_permissions(bin.join("exportfs-tool"), PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::write(bin.join("exportfs-data"), "").unwrap();
        let path = bin.display().to_string();
        let names = complete("expo", true, &shell(dir.path(), dir.path(), Some(&path)));
        assert_eq!(names, ["export", "exportfs-tool"]);
    }

    #[test]
    fn paths_are_relative_to_the_cwd_with_tilde_and_dirs_marked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/notes.txt"), "").unwrap();
        std::fs::write(dir.path().join("sub/.hidden"), "").unwrap();
        let words = shell(dir.path(), dir.path(), None);
        assert_eq!(complete("su", false, &words), ["sub/"]);
        assert_eq!(complete("sub/", false, &words), ["sub/notes.txt"]);
        assert_eq!(complete("sub/.", false, &words), ["sub/.hidden"]);
        assert_eq!(complete("~/sub/n", false, &words), ["~/sub/notes.txt"]);
        let abs = format!("{}/sub/n", dir.path().display());
        assert_eq!(complete(&abs, false, &words), [format!("{abs}otes.txt")]);
    }

    #[test]
    fn a_huge_directory_answers_at_most_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..1500 {
            std::fs::write(dir.path().join(format!("f{n}")), "").unwrap();
        }
        let names = complete("f", false, &shell(dir.path(), dir.path(), None));
        assert_eq!(names.len(), MAX_COMPLETIONS);
    }

    #[test]
    fn a_restricted_key_gets_its_words_and_never_a_path() {
        let allowed = vec!["uptime".to_owned(), "uname".to_owned()];
        let words = Words::Restricted(&allowed);
        assert_eq!(complete("u", true, &words), ["uname", "uptime"]);
        assert!(complete("/", true, &words).is_empty());
        assert!(complete("/et", false, &words).is_empty());
        assert!(complete(&"x".repeat(5000), true, &words).is_empty());
    }
}
