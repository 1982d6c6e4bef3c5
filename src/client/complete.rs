//! The client's half of Tab completion, pure: which word the cursor ends (with shell-word
//! rules: quotes, backslashes, and the operators after which a new command starts), that
//! word unquoted for the server, and each name the server offers made ready to insert
//! (quoted so the shell reads it back as the same name) and to show (its control characters
//! escaped). It never talks to the server and never touches a file.

use super::console::shown;

/// The word under the cursor, for completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Where the replacement starts (a byte offset in the line).
    pub start: usize,
    /// The word as the shell would see it: quotes and backslashes removed.
    pub text: String,
    /// It is a command name (the first word of a command).
    pub command: bool,
    /// The quote the word is still inside, if any.
    pub quote: Option<char>,
}

/// The word that ends at `pos` in `line`.
pub fn word_at(line: &str, pos: usize) -> Word {
    let typed = line.get(..pos).unwrap_or(line);
    let mut word = Word {
        start: 0,
        text: String::new(),
        command: true,
        quote: None,
    };
    // Whether the next word starts a command.
    let mut at_command = true;
    let mut in_word = false;
    let mut escaped = false;
    let mut chars = typed.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if escaped {
            word.text.push(c);
            escaped = false;
            continue;
        }
        match (word.quote, c) {
            (Some(q), c) if c == q => word.quote = None,
            (Some('"'), '\\') => escaped = true,
            (Some(_), c) => word.text.push(c),
            (None, '\\') => {
                start_word(&mut word, &mut in_word, at_command, at);
                escaped = true;
            }
            (None, '\'' | '"') => {
                start_word(&mut word, &mut in_word, at_command, at);
                word.quote = Some(c);
            }
            (None, ' ' | '\t') => {
                if in_word {
                    // A word ends; an assignment (`FOO=1 cmd`) keeps the command position.
                    at_command = word.command && is_assignment(&word.text);
                }
                in_word = false;
            }
            (None, ';' | '|' | '&' | '(' | '`' | '\n') => {
                in_word = false;
                at_command = true;
            }
            (None, '$') if chars.peek().is_some_and(|(_, n)| *n == '(') => {
                chars.next();
                in_word = false;
                at_command = true;
            }
            (None, c) => {
                start_word(&mut word, &mut in_word, at_command, at);
                word.text.push(c);
            }
        }
    }
    if !in_word {
        word.start = typed.len();
        word.text.clear();
        word.command = at_command;
        word.quote = None;
    }
    word
}

/// A new word starts at `at` unless one is under way.
fn start_word(word: &mut Word, in_word: &mut bool, at_command: bool, at: usize) {
    if !*in_word {
        *in_word = true;
        word.start = at;
        word.text.clear();
        word.command = at_command;
    }
}

/// `NAME=value`, as the shell takes it before a command.
fn is_assignment(text: &str) -> bool {
    text.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// `name` as it replaces the word: inside the word's open quote if it has one, else with
/// the shell's special characters backslash-escaped; a space after it unless it is a
/// directory (`/` at the end).
pub fn replacement(word: &Word, name: &str) -> String {
    let dir = name.ends_with('/');
    let mut out = String::with_capacity(name.len() + 2);
    match word.quote {
        Some(q) => {
            out.push(q);
            for c in name.chars() {
                if c == q || (q == '"' && matches!(c, '\\' | '$' | '`')) {
                    if q == '\'' {
                        out.push_str("'\\''");
                        continue;
                    }
                    out.push('\\');
                }
                out.push(c);
            }
            if !dir {
                out.push(q);
            }
        }
        None => {
            for (i, c) in name.chars().enumerate() {
                let tilde_first = c == '~' && i == 0;
                if !tilde_first && " \t\n'\"\\$`;&|<>()*?[]#!{}~".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    if !dir {
        out.push(' ');
    }
    out
}

/// `name` as the list shows it: control characters escaped.
pub fn display(name: &str) -> String {
    shown(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_end(line: &str) -> Word {
        word_at(line, line.len())
    }

    #[test]
    fn the_word_under_the_cursor_and_whether_it_is_a_command() {
        let w = at_end("ls /et");
        assert_eq!((w.start, w.text.as_str(), w.command), (3, "/et", false));
        assert!(at_end("l").command);
        assert!(at_end("echo a; gi").command);
        assert!(at_end("ls | gr").command);
        assert!(at_end("FOO=1 ma").command);
        assert!(at_end("x $(whi").command);
        assert!(!at_end("echo ").command);
        assert!(at_end("").command);
        let w = at_end("cat \"my fi");
        assert_eq!((w.start, w.text.as_str(), w.quote), (4, "my fi", Some('"')));
        let w = at_end("cat my\\ fi");
        assert_eq!((w.start, w.text.as_str(), w.quote), (4, "my fi", None));
    }

    #[test]
    fn names_are_inserted_quoted_and_shown_escaped() {
        let plain = at_end("cat my");
        assert_eq!(replacement(&plain, "my file"), "my\\ file ");
        assert_eq!(replacement(&plain, "dir/"), "dir/");
        assert_eq!(replacement(&plain, "~/x"), "~/x ");
        let quoted = at_end("cat \"my");
        assert_eq!(replacement(&quoted, "my $file"), "\"my \\$file\" ");
        let single = at_end("cat 'it");
        assert_eq!(replacement(&single, "it's"), "'it'\\''s' ");
        assert_eq!(display("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
    }
}
