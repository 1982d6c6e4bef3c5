//! Tab completion on the server: the names that complete one word of a console line. It
//! owns the lookup only: command names from the shell's `PATH` and its builtins, paths
//! relative to the session's cwd (a leading `~/` meaning home), or, for a restricted key,
//! only its allowed command words. It runs in a blocking thread and its request is
//! untrusted, so every answer is bounded: at most [`MAX_SCANNED`] directory entries looked
//! at, at most [`MAX_COMPLETIONS`] names returned, and no word or name longer than
//! [`MAX_WORD_BYTES`].
//!
//! It must never write to the filesystem, never run a program, and never touch more than
//! listing the one directory the word names (or the `PATH` directories) needs: a `stat` of
//! an entry that matches, to tell directories and executables apart, and nothing else. A
//! restricted key's completion never touches the filesystem at all. An unreadable or
//! missing directory simply yields nothing; names that are not UTF-8 on disk are skipped
//! (the console speaks UTF-8); a name with control characters is returned as it is, and
//! the client escapes it for display.

use std::collections::BTreeSet;
use std::fs::{self, DirEntry};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The most names one answer carries (the first ones in sort order).
pub const MAX_COMPLETIONS: usize = 1000;

/// The most directory entries looked at per request (a huge directory must not cost
/// unbounded CPU). Each directory opened counts as one more.
pub const MAX_SCANNED: usize = 100_000;

/// The longest word completed, and the longest name returned, in bytes: a longer word gets
/// no answer, a longer name is left out.
pub const MAX_WORD_BYTES: usize = 4096;

/// Where a shell session completes: its cwd, home, `PATH` and the shell's builtins.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The session's working directory; relative words are completed from here.
    pub cwd: &'a Path,
    /// The session user's home, for a leading `~/`.
    pub home: &'a Path,
    /// The shell's `PATH` (None: no command lookup, builtins only). An empty entry means
    /// the cwd, as for the shell; a relative entry is taken from the cwd.
    pub path: Option<&'a str>,
    /// The shell's builtin names and reserved words ([`BASH_BUILTINS`], [`POSIX_BUILTINS`]).
    pub builtins: &'a [&'a str],
}

/// What a session may complete.
#[derive(Debug, Clone, Copy)]
pub enum Words<'a> {
    /// A shell: commands from `PATH` and builtins, and paths.
    Shell(Context<'a>),
    /// A restricted key: only these command words (its `allow=` / `command=` names), never
    /// a path.
    Restricted(&'a [String]),
}

/// bash's builtins and the reserved words it completes in command position. The one-
/// character punctuation builtins (`.`, `:`, `[`) and the reserved punctuation (`!`, `{`,
/// `[[`) are left out: completing them never helps.
pub const BASH_BUILTINS: &[&str] = &[
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "coproc",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "in",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "then",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
];

/// A POSIX shell's (dash's) builtins and reserved words, punctuation left out as for
/// [`BASH_BUILTINS`].
pub const POSIX_BUILTINS: &[&str] = &[
    "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done", "echo", "elif",
    "else", "esac", "eval", "exec", "exit", "export", "false", "fc", "fg", "fi", "for", "getopts",
    "hash", "if", "in", "jobs", "kill", "local", "printf", "pwd", "read", "readonly", "return",
    "set", "shift", "test", "then", "times", "trap", "true", "type", "ulimit", "umask", "unalias",
    "unset", "until", "wait", "while",
];

/// Names that complete `word` (the word as the shell would see it, already unquoted by the
/// client).
///
/// In command position (`command`): executables (regular files with an x bit, or symlinks
/// to them) in `PATH`'s directories whose name starts with `word`, plus the builtins that
/// do; if `word` contains a '/', paths as below instead, directories and executables only.
/// Elsewhere: paths. Paths: `word` is split at its last '/'; the directory part (from the
/// cwd, or from home after a leading `~/`) is listed, and its entries starting with the
/// rest come back as the whole word (directory part as typed, then the name), directories
/// (and symlinks to them) with a trailing '/'. A lone `~` completes to `~/`; `~user` is not
/// expanded. Hidden entries only when the rest starts with '.' (then `./` and `../` too,
/// where they match).
///
/// [`Words::Restricted`]: only the allowed words that start with `word`, in command
/// position only, never paths. The answer is sorted, without duplicates, at most
/// [`MAX_COMPLETIONS`] long; a word longer than [`MAX_WORD_BYTES`] gets nothing.
pub fn complete(word: &str, command: bool, words: &Words<'_>) -> Vec<String> {
    if word.len() > MAX_WORD_BYTES {
        return Vec::new();
    }
    let mut found = Found::default();
    match words {
        Words::Restricted(allowed) => {
            if command {
                let fits = |w: &&String| w.len() <= MAX_WORD_BYTES && w.starts_with(word);
                for allowed in allowed.iter().filter(fits) {
                    found.add(allowed.clone());
                }
            }
        }
        Words::Shell(context) => {
            let mut budget = Budget(MAX_SCANNED);
            if word == "~" {
                if context.home.is_dir() {
                    found.add("~/".to_owned());
                }
            } else if command && !word.contains('/') {
                commands(word, context, &mut budget, &mut found);
            } else {
                paths(word, context, command, &mut budget, &mut found);
            }
        }
    }
    found.names.into_iter().collect()
}

/// The names found so far: the first [`MAX_COMPLETIONS`] in sort order, never more kept.
#[derive(Default)]
struct Found {
    names: BTreeSet<String>,
}

impl Found {
    /// Keeps `name` if it is among the first [`MAX_COMPLETIONS`] so far (a path is at most
    /// a word plus a name, each within [`MAX_WORD_BYTES`]).
    fn add(&mut self, name: String) {
        if self.names.len() >= MAX_COMPLETIONS && self.names.last().is_some_and(|l| name >= *l) {
            return;
        }
        self.names.insert(name);
        if self.names.len() > MAX_COMPLETIONS {
            self.names.pop_last();
        }
    }
}

/// What is left of [`MAX_SCANNED`] for this request.
struct Budget(usize);

impl Budget {
    /// Takes one unit; false once it is spent.
    fn take(&mut self) -> bool {
        match self.0.checked_sub(1) {
            Some(left) => {
                self.0 = left;
                true
            }
            None => false,
        }
    }
}

/// The entries of `dir` whose UTF-8 name starts with `prefix` (hidden ones only for a
/// prefix starting with '.'), within the budget; nothing for an unreadable directory.
fn matching(dir: &Path, prefix: &str, budget: &mut Budget) -> Vec<(String, DirEntry)> {
    let mut out = Vec::new();
    if !budget.take() {
        return out;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    let hidden = prefix.starts_with('.');
    for entry in entries {
        if !budget.take() {
            break;
        }
        let Ok(entry) = entry else { continue };
        // Names that are not UTF-8 cannot be shown or typed in the console: skipped.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.len() > MAX_WORD_BYTES
            || !name.starts_with(prefix)
            || (name.starts_with('.') && !hidden)
        {
            continue;
        }
        out.push((name, entry));
    }
    out
}

/// An entry's kind, symlinks followed (one `stat` only for a symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Executable,
    Other,
}

fn kind(entry: &DirEntry) -> Kind {
    let Ok(file_type) = entry.file_type() else {
        return Kind::Other;
    };
    let metadata = if file_type.is_symlink() {
        fs::metadata(entry.path())
    } else if file_type.is_dir() {
        return Kind::Dir;
    } else {
        entry.metadata()
    };
    match metadata {
        Ok(m) if m.is_dir() => Kind::Dir,
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Kind::Executable,
        _ => Kind::Other,
    }
}

/// Command position, no '/': executables from `PATH`, and builtins.
fn commands(word: &str, context: &Context<'_>, budget: &mut Budget, found: &mut Found) {
    let fits = |b: &&&str| b.len() <= MAX_WORD_BYTES && b.starts_with(word);
    for builtin in context.builtins.iter().filter(fits) {
        found.add((*builtin).to_owned());
    }
    let Some(path) = context.path else { return };
    let mut seen: Vec<PathBuf> = Vec::new();
    for dir in path.split(':') {
        let dir = if dir.is_empty() {
            context.cwd.to_path_buf()
        } else {
            context.cwd.join(dir)
        };
        if seen.contains(&dir) {
            continue;
        }
        if budget.0 == 0 {
            break;
        }
        for (name, entry) in matching(&dir, word, budget) {
            if kind(&entry) == Kind::Executable {
                found.add(name);
            }
        }
        seen.push(dir);
    }
}

/// Paths: the directory part of `word` listed (directories and executables only for a
/// command).
fn paths(word: &str, context: &Context<'_>, command: bool, budget: &mut Budget, found: &mut Found) {
    let (typed, rest) = match word.rfind('/') {
        Some(slash) => word.split_at(slash + 1),
        None => ("", word),
    };
    let dir = if typed.is_empty() {
        context.cwd.to_path_buf()
    } else if let Some(under_home) = typed.strip_prefix("~/") {
        context.home.join(under_home)
    } else {
        // An absolute part replaces the cwd in join.
        context.cwd.join(typed)
    };
    for special in ["./", "../"] {
        if !rest.is_empty() && special.starts_with(rest) && dir.is_dir() {
            found.add(format!("{typed}{special}"));
        }
    }
    for (name, entry) in matching(&dir, rest, budget) {
        match kind(&entry) {
            Kind::Dir => found.add(format!("{typed}{name}/")),
            Kind::Executable => found.add(format!("{typed}{name}")),
            Kind::Other if !command => found.add(format!("{typed}{name}")),
            Kind::Other => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, Permissions, create_dir, set_permissions};

    fn file(path: &Path, mode: u32) {
        File::create(path).unwrap();
        set_permissions(path, Permissions::from_mode(mode)).unwrap();
    }

    /// A cwd, a home and a PATH dir, with a few files in each.
    struct Fixture {
        cwd: tempfile::TempDir,
        home: tempfile::TempDir,
        bin: tempfile::TempDir,
        path: String,
    }

    impl Fixture {
        fn new() -> Self {
            let cwd = tempfile::tempdir().unwrap();
            let home = tempfile::tempdir().unwrap();
            let bin = tempfile::tempdir().unwrap();
            file(&bin.path().join("mytool"), 0o755);
            file(&bin.path().join("mytext"), 0o644);
            file(&bin.path().join(".myhidden"), 0o755);
            create_dir(bin.path().join("mydir")).unwrap();
            std::os::unix::fs::symlink(bin.path().join("mytool"), bin.path().join("mylink"))
                .unwrap();
            std::os::unix::fs::symlink(bin.path().join("mytext"), bin.path().join("mybadlink"))
                .unwrap();
            file(&cwd.path().join("notes.txt"), 0o644);
            file(&cwd.path().join("run.sh"), 0o755);
            file(&cwd.path().join(".secret"), 0o644);
            create_dir(cwd.path().join("sub")).unwrap();
            file(&cwd.path().join("sub/inner file"), 0o644);
            create_dir(cwd.path().join("sub/deeper")).unwrap();
            std::os::unix::fs::symlink(cwd.path().join("sub"), cwd.path().join("sublink")).unwrap();
            file(&home.path().join("homefile"), 0o644);
            create_dir(home.path().join("homedir")).unwrap();
            let path = format!("/nonexistent-seashell:{}", bin.path().display());
            Self {
                cwd,
                home,
                bin,
                path,
            }
        }

        fn complete(&self, word: &str, command: bool) -> Vec<String> {
            let words = Words::Shell(Context {
                cwd: self.cwd.path(),
                home: self.home.path(),
                path: Some(&self.path),
                builtins: BASH_BUILTINS,
            });
            complete(word, command, &words)
        }
    }

    #[test]
    fn commands_are_the_executables_in_path() {
        let f = Fixture::new();
        assert_eq!(f.complete("my", true), ["mylink", "mytool"]);
        assert_eq!(f.complete("myt", true), ["mytool"]);
        assert_eq!(f.complete(".my", true), [".myhidden"]);
        assert!(f.complete("nothing-like-this", true).is_empty());
    }

    #[test]
    fn builtins_are_commands_too() {
        let f = Fixture::new();
        let found = f.complete("ex", true);
        assert!(found.contains(&"exec".to_owned()), "{found:?}");
        assert!(found.contains(&"export".to_owned()), "{found:?}");
        assert!(f.complete("whi", true).contains(&"while".to_owned()));
        // Not in argument position.
        assert!(f.complete("ex", false).is_empty());
    }

    #[test]
    fn a_command_with_a_slash_is_a_path_to_a_directory_or_an_executable() {
        let f = Fixture::new();
        assert_eq!(f.complete("./", true), ["./run.sh", "./sub/", "./sublink/"]);
        let bin = format!("{}/my", f.bin.path().display());
        let found = f.complete(&bin, true);
        let names: Vec<&str> = found
            .iter()
            .filter_map(|n| n.rsplit('/').find(|s| !s.is_empty()))
            .collect();
        assert_eq!(names, ["mydir", "mylink", "mytool"]);
        assert!(found.iter().any(|n| n.ends_with("mydir/")));
    }

    #[test]
    fn paths_are_relative_to_the_cwd_and_directories_end_in_a_slash() {
        let f = Fixture::new();
        assert_eq!(
            f.complete("", false),
            ["notes.txt", "run.sh", "sub/", "sublink/"]
        );
        assert_eq!(f.complete("su", false), ["sub/", "sublink/"]);
        assert_eq!(f.complete("sub/", false), ["sub/deeper/", "sub/inner file"]);
        assert_eq!(f.complete("sub/in", false), ["sub/inner file"]);
        assert_eq!(f.complete("sublink/d", false), ["sublink/deeper/"]);
        assert_eq!(f.complete("sub//in", false), ["sub//inner file"]);
    }

    #[test]
    fn absolute_paths_are_listed_as_typed() {
        let f = Fixture::new();
        let typed = format!("{}/no", f.cwd.path().display());
        assert_eq!(f.complete(&typed, false), [format!("{typed}tes.txt")]);
    }

    #[test]
    fn a_leading_tilde_means_home() {
        let f = Fixture::new();
        assert_eq!(f.complete("~/home", false), ["~/homedir/", "~/homefile"]);
        assert_eq!(f.complete("~/", true), ["~/homedir/"]);
        assert_eq!(f.complete("~", false), ["~/"]);
        // `~user` is not expanded: a name in the cwd.
        assert!(f.complete("~nobody/x", false).is_empty());
    }

    #[test]
    fn hidden_entries_only_for_a_dot() {
        let f = Fixture::new();
        assert!(!f.complete("", false).contains(&".secret".to_owned()));
        assert_eq!(f.complete(".", false), ["../", "./", ".secret"]);
        assert_eq!(f.complete("..", false), ["../"]);
        assert_eq!(f.complete(".s", false), [".secret"]);
        assert_eq!(f.complete("sub/.", false), ["sub/../", "sub/./"]);
    }

    #[test]
    fn missing_or_unreadable_directories_give_nothing() {
        let f = Fixture::new();
        assert!(f.complete("no-such-dir/", false).is_empty());
        assert!(f.complete("notes.txt/", false).is_empty());
        let locked = f.cwd.path().join("locked");
        create_dir(&locked).unwrap();
        file(&locked.join("inside"), 0o644);
        set_permissions(&locked, Permissions::from_mode(0o000)).unwrap();
        // root reads it anyway; for anyone else it is unreadable.
        if fs::read_dir(&locked).is_err() {
            assert!(f.complete("locked/", false).is_empty());
        }
        set_permissions(&locked, Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_huge_directory_gives_a_bounded_sorted_answer() {
        let f = Fixture::new();
        let big = f.cwd.path().join("big");
        create_dir(&big).unwrap();
        for i in 0..5000 {
            File::create(big.join(format!("f{i:05}"))).unwrap();
        }
        let found = f.complete("big/f", false);
        assert_eq!(found.len(), MAX_COMPLETIONS);
        // The first names in sort order, whatever order the directory lists them in.
        assert_eq!(found.first().map(String::as_str), Some("big/f00000"));
        assert_eq!(found.last().map(String::as_str), Some("big/f00999"));
        assert!(found.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_scan_budget_stops_the_listing() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            File::create(dir.path().join(format!("f{i}"))).unwrap();
        }
        let mut budget = Budget(5);
        // One for the directory, four entries.
        assert_eq!(matching(dir.path(), "", &mut budget).len(), 4);
        assert!(matching(dir.path(), "", &mut budget).is_empty());
    }

    #[test]
    fn words_and_names_too_long_give_nothing() {
        let f = Fixture::new();
        assert!(
            f.complete(&"a".repeat(MAX_WORD_BYTES + 1), false)
                .is_empty()
        );
        assert!(f.complete(&"a".repeat(MAX_WORD_BYTES + 1), true).is_empty());
        let long = vec!["x".repeat(MAX_WORD_BYTES + 1)];
        assert!(complete("x", true, &Words::Restricted(&long)).is_empty());
    }

    #[test]
    fn names_that_are_not_utf8_are_skipped_and_control_characters_kept() {
        use std::os::unix::ffi::OsStrExt;
        let f = Fixture::new();
        let odd = f.cwd.path().join(std::ffi::OsStr::from_bytes(b"zz\xff"));
        if File::create(&odd).is_ok() {
            assert!(f.complete("zz", false).is_empty());
        }
        file(&f.cwd.path().join("esc\u{1b}[31m"), 0o644);
        assert_eq!(f.complete("esc", false), ["esc\u{1b}[31m"]);
    }

    #[test]
    fn restricted_keys_complete_only_their_words() {
        let allowed = vec!["backup".to_owned(), "status".to_owned(), "bar".to_owned()];
        let words = Words::Restricted(&allowed);
        assert_eq!(complete("b", true, &words), ["backup", "bar"]);
        assert_eq!(complete("", true, &words), ["backup", "bar", "status"]);
        assert!(complete("/", true, &words).is_empty());
        assert!(complete("/etc/", true, &words).is_empty());
        assert!(complete("./", false, &words).is_empty());
        assert!(complete("b", false, &words).is_empty());
    }

    #[test]
    fn without_a_path_only_builtins() {
        let f = Fixture::new();
        let words = Words::Shell(Context {
            cwd: f.cwd.path(),
            home: f.home.path(),
            path: None,
            builtins: POSIX_BUILTINS,
        });
        assert_eq!(complete("ca", true, &words), ["case"]);
        assert!(complete("my", true, &words).is_empty());
    }

    #[test]
    fn an_empty_path_entry_is_the_cwd() {
        let f = Fixture::new();
        let words = Words::Shell(Context {
            cwd: f.cwd.path(),
            home: f.home.path(),
            path: Some("/nonexistent-seashell::"),
            builtins: &[],
        });
        assert_eq!(complete("ru", true, &words), ["run.sh"]);
        assert!(complete("no", true, &words).is_empty());
    }
}
