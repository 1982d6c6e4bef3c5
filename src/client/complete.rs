//! Tab completion on the client: finding the word under the cursor as the remote shell
//! would read it ([`word_at`]), quoting a name the server offers so that the shell reads it
//! back as the same name ([`replacement`]), and showing it in the list safely
//! ([`display`]). The names themselves come from the server (`server::complete`, over the
//! protocol); this module is pure: no I/O, no terminal, no protocol.
//!
//! It must never show a name raw (a name is the server's text and may hold escape
//! sequences), and never insert one the shell would read differently: every shell special
//! is quoted. The shell-word rules are a useful subset of sh's: quotes, backslashes, the
//! operators that start a new command, assignments and redirections; not parameter
//! expansion, not command substitution inside double quotes, not `~user`.

use crate::shown::shown;

/// The word under the cursor, for completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Byte offset in the line where the replacement starts: the word's first character
    /// (its opening quote or backslash included), or just after an unquoted '=' in it, as
    /// bash breaks words there (`dd if=/de`, `FOO=~/x`). The replacement runs to the
    /// cursor.
    pub start: usize,
    /// The word as the shell would see it: quotes and backslashes removed. A leading
    /// unquoted `~` is kept (the server expands `~/`); a leading quoted or escaped `~`,
    /// which the shell would not expand, comes with `./` before it so the server does not
    /// either.
    pub text: String,
    /// Whether the word is in command position (the first word of a command).
    pub command: bool,
    /// The quote still open at the cursor (`'` or `"`), wherever in the word it opened.
    pub quote: Option<char>,
}

/// Reserved words after which the next word is still in command position.
const LEADING_KEYWORDS: &[&str] = &[
    "!", "{", "do", "elif", "else", "if", "then", "time", "until", "while",
];

/// Characters backslash-escaped in an unquoted replacement.
const SPECIAL: &str = " \t\\'\"$`;&|<>()*?[]{}!#~=^";

/// Finds the word that ends at `pos` in `line` (a byte offset, taken down to a character
/// boundary and to the line's end). Spaces and tabs separate words unless quoted or
/// escaped; `;`, `|`, `&` (so `&&`, `||`), `(`, `` ` ``, `$(` and newline start a new
/// command, so the next word is in command position, as is the word after assignments
/// (`FOO=1 cmd`) and after the reserved words that lead a command (`if`, `then`, `do`...).
/// The word after a redirection (`>`, `2>>`, `<&`) is a path, not a command.
pub fn word_at(line: &str, pos: usize) -> Word {
    let mut pos = pos.min(line.len());
    while !line.is_char_boundary(pos) {
        pos = pos.saturating_sub(1);
    }
    let head = line.get(..pos).unwrap_or_default();
    let mut lexer = Lexer::default();
    let mut chars = head.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if lexer.escaped {
            lexer.escaped = false;
            lexer.escaped_char(c);
            continue;
        }
        match lexer.quote {
            Some('\'') => {
                if c == '\'' {
                    lexer.quote = None;
                } else {
                    lexer.push(i, c, true);
                }
            }
            Some(_) => match c {
                '"' => lexer.quote = None,
                '\\' => lexer.escaped = true,
                _ => lexer.push(i, c, true),
            },
            None => match c {
                ' ' | '\t' => lexer.end_word(),
                '\n' | ';' | '&' | '|' | '(' => lexer.new_command(),
                ')' => {
                    lexer.end_word();
                    lexer.command = false;
                }
                '`' => {
                    let closing = lexer.in_backtick;
                    lexer.new_command();
                    lexer.in_backtick = !closing;
                    lexer.command = !closing;
                }
                '<' | '>' => {
                    while chars
                        .next_if(|&(_, n)| matches!(n, '<' | '>' | '&' | '|'))
                        .is_some()
                    {}
                    lexer.redirection();
                }
                '\\' => {
                    lexer.begin(i);
                    lexer.escaped = true;
                }
                '\'' | '"' => {
                    lexer.begin(i);
                    lexer.quoted = true;
                    lexer.quote = Some(c);
                }
                '=' if !lexer.text.is_empty() => lexer.equals(i),
                _ => lexer.push(i, c, false),
            },
        }
    }
    lexer.word(pos)
}

/// The scan of a line up to the cursor: where it stands and the word in progress.
#[derive(Debug)]
struct Lexer {
    /// The current (or next) word is in command position.
    command: bool,
    /// The current word is a redirection's target; the command position to go back to.
    redirect: Option<bool>,
    /// Inside an unquoted backtick substitution.
    in_backtick: bool,
    /// The open quote.
    quote: Option<char>,
    /// A backslash waits for its character.
    escaped: bool,
    /// A word is in progress (it may be empty: `""`).
    started: bool,
    /// Where the completion word starts.
    start: usize,
    /// The completion word so far, unquoted.
    text: String,
    /// Some of the word was quoted or escaped.
    quoted: bool,
    /// The word so far is an unquoted name (what an assignment needs before its '=').
    name: bool,
    /// The word is an assignment (`NAME=...`).
    assignment: bool,
    /// The completion word starts after an '=' of the shell word.
    after_equals: bool,
    /// The completion word's first character is a quoted `~`.
    quoted_tilde: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Self {
            command: true,
            redirect: None,
            in_backtick: false,
            quote: None,
            escaped: false,
            started: false,
            start: 0,
            text: String::new(),
            quoted: false,
            name: true,
            assignment: false,
            after_equals: false,
            quoted_tilde: false,
        }
    }
}

impl Lexer {
    /// A word starts at `i` unless one is in progress.
    fn begin(&mut self, i: usize) {
        if !self.started {
            self.started = true;
            self.start = i;
        }
    }

    /// One character of the word, at byte `i`.
    fn push(&mut self, i: usize, c: char, quoted: bool) {
        self.begin(i);
        if self.text.is_empty() && c == '~' && quoted {
            self.quoted_tilde = true;
        }
        let name_char =
            c == '_' || c.is_ascii_alphabetic() || (c.is_ascii_digit() && !self.text.is_empty());
        self.name &= !quoted && name_char && !self.after_equals;
        self.quoted |= quoted;
        self.text.push(c);
    }

    /// The character after a backslash (the backslash began the word already).
    fn escaped_char(&mut self, c: char) {
        let start = self.start;
        match (self.quote, c) {
            // A line continuation: both go.
            (_, '\n') => {}
            (None, _) | (Some(_), '$' | '`' | '"' | '\\') => self.push(start, c, true),
            // Inside double quotes other backslashes stay.
            (Some(_), _) => {
                self.push(start, '\\', true);
                self.push(start, c, true);
            }
        }
    }

    /// An unquoted '=' at byte `i`, not the word's first character.
    fn equals(&mut self, i: usize) {
        if self.name && !self.after_equals {
            self.assignment = true;
        }
        self.after_equals = true;
        self.start = i + 1;
        self.text.clear();
        self.quoted_tilde = false;
    }

    /// The word in progress is over (a space, an operator).
    fn end_word(&mut self) {
        if !self.started {
            return;
        }
        let leading =
            !self.quoted && !self.after_equals && LEADING_KEYWORDS.contains(&self.text.as_str());
        if let Some(before) = self.redirect.take() {
            self.command = before;
        } else if !(self.command && (self.assignment || leading)) {
            self.command = false;
        }
        self.started = false;
        self.text.clear();
        self.quoted = false;
        self.name = true;
        self.assignment = false;
        self.after_equals = false;
        self.quoted_tilde = false;
    }

    /// An operator that starts a new command.
    fn new_command(&mut self) {
        self.end_word();
        self.redirect = None;
        self.command = true;
    }

    /// A redirection operator: the next word is its target. A word of digits just before
    /// it is its file descriptor (`2>`), not a word of the command.
    fn redirection(&mut self) {
        let fd = self.started
            && !self.quoted
            && !self.after_equals
            && !self.text.is_empty()
            && self.text.chars().all(|c| c.is_ascii_digit());
        if fd {
            self.started = false;
            self.text.clear();
            self.name = true;
        } else {
            self.end_word();
        }
        let before = self.redirect.take().unwrap_or(self.command);
        self.redirect = Some(before);
        self.command = false;
    }

    /// The word at the cursor, at byte `pos`.
    fn word(self, pos: usize) -> Word {
        let start = if self.started { self.start } else { pos };
        let text = if self.quoted_tilde {
            format!("./{}", self.text)
        } else {
            self.text
        };
        Word {
            start,
            text,
            command: self.command && !self.after_equals && self.redirect.is_none(),
            quote: self.quote,
        }
    }
}

/// A candidate as it is inserted in place of `line[word.start..cursor]`: quoted so the
/// shell reads it back as the same name, then a space unless it ends with '/' (a directory,
/// to go on into). Unquoted, shell specials are backslash-escaped (a newline, which a
/// backslash would join away, goes in single quotes). If the word has an open quote, the
/// candidate is written in that quote, which is closed before the space (and left open
/// after a directory, as bash does). A leading `~/` stays bare so the shell expands it.
pub fn replacement(word: &Word, candidate: &str) -> String {
    let (mut out, rest) = match candidate.strip_prefix("~/") {
        Some(rest) => (String::from("~/"), rest),
        None => (String::new(), candidate),
    };
    let directory = candidate.ends_with('/');
    match word.quote {
        Some('\'') => {
            out.push('\'');
            for c in rest.chars() {
                if c == '\'' {
                    out.push_str("'\\''");
                } else {
                    out.push(c);
                }
            }
            if !directory {
                out.push('\'');
            }
        }
        Some(_) => {
            out.push('"');
            for c in rest.chars() {
                if matches!(c, '"' | '\\' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
            if !directory {
                out.push('"');
            }
        }
        None => {
            for c in rest.chars() {
                if c == '\n' {
                    out.push_str("'\n'");
                } else {
                    if SPECIAL.contains(c) {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
        }
    }
    if !directory {
        out.push(' ');
    }
    out
}

/// A candidate as it is shown in the list: its last component only (a directory with its
/// '/'), as a shell lists completions, with control characters escaped (`\u{1b}`, the
/// crate's `shown`) so that a name can never drive the terminal.
pub fn display(candidate: &str) -> String {
    let (bare, slash) = match candidate.strip_suffix('/') {
        Some(bare) => (bare, "/"),
        None => (candidate, ""),
    };
    let last = match bare.rsplit_once('/') {
        Some((_, last)) if !last.is_empty() => last,
        _ => bare,
    };
    if last.is_empty() {
        return shown(candidate);
    }
    format!("{}{slash}", shown(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word at the end of `line`.
    fn at_end(line: &str) -> Word {
        word_at(line, line.len())
    }

    #[test]
    fn an_argument_is_not_in_command_position() {
        let word = at_end("ls /et");
        assert_eq!(word.text, "/et");
        assert_eq!(word.start, 3);
        assert!(!word.command);
        assert_eq!(word.quote, None);
    }

    #[test]
    fn the_first_word_is_a_command() {
        let word = at_end("l");
        assert_eq!(
            (word.start, word.text.as_str(), word.command),
            (0, "l", true)
        );
        let word = at_end("");
        assert_eq!(
            (word.start, word.text.as_str(), word.command),
            (0, "", true)
        );
        let word = at_end("  gi");
        assert_eq!((word.start, word.command), (2, true));
        let word = at_end("ls ");
        assert_eq!(
            (word.start, word.text.as_str(), word.command),
            (3, "", false)
        );
    }

    #[test]
    fn operators_start_a_new_command() {
        for line in [
            "echo a; gi",
            "ls | gi",
            "a && gi",
            "a || gi",
            "a & gi",
            "(gi",
            "echo $(gi",
            "echo `gi",
            "a\ngi",
            "a;gi",
            "a|gi",
            "if true; then gi",
            "while gi",
            "! gi",
            "time gi",
            "x; do gi",
        ] {
            let word = at_end(line);
            assert!(word.command, "{line:?}");
            assert_eq!(word.text, "gi", "{line:?}");
        }
        let word = at_end("ls | gr");
        assert_eq!(
            (word.start, word.text.as_str(), word.command),
            (5, "gr", true)
        );
        assert!(!at_end("echo `date` gi").command);
        assert!(!at_end("echo $(date) gi").command);
        assert!(!at_end("echo 'a; b' gi").command);
        assert!(!at_end("echo a\\;b gi").command);
    }

    #[test]
    fn after_assignments_comes_the_command() {
        let word = at_end("FOO=1 ma");
        assert_eq!((word.text.as_str(), word.command), ("ma", true));
        assert!(at_end("FOO=1 BAR=\"a b\" ma").command);
        assert!(!at_end("FOO=1 make ta").command);
        // Not assignments: a quoted name, a name that is not one.
        assert!(!at_end("\"FOO\"=1 ma").command);
        assert!(!at_end("1A=1 ma").command);
    }

    #[test]
    fn a_value_after_equals_is_completed_as_a_path() {
        let word = at_end("FOO=/us");
        assert_eq!(
            (word.start, word.text.as_str(), word.command),
            (4, "/us", false)
        );
        let word = at_end("dd if=/de");
        assert_eq!(
            (word.start, word.text.as_str(), word.command),
            (6, "/de", false)
        );
        let word = at_end("ls FOO=");
        assert_eq!((word.start, word.text.as_str()), (7, ""));
        let word = at_end("cmd a\\=b");
        assert_eq!((word.start, word.text.as_str()), (4, "a=b"));
    }

    #[test]
    fn an_open_quote_is_kept() {
        let word = at_end("cat \"my fi");
        assert_eq!(word.text, "my fi");
        assert_eq!(word.quote, Some('"'));
        assert_eq!(word.start, 4);
        assert!(!word.command);
        let word = at_end("cat 'it''s a");
        assert_eq!((word.text.as_str(), word.quote), ("its a", Some('\'')));
        let word = at_end("cat my\"fi");
        assert_eq!(
            (word.start, word.text.as_str(), word.quote),
            (4, "myfi", Some('"'))
        );
        let word = at_end("cat \"a b\"c");
        assert_eq!((word.text.as_str(), word.quote), ("a bc", None));
        let word = at_end("cat \"");
        assert_eq!(
            (word.start, word.text.as_str(), word.quote),
            (4, "", Some('"'))
        );
    }

    #[test]
    fn backslashes_are_removed() {
        let word = at_end("cat my\\ fi");
        assert_eq!(
            (word.start, word.text.as_str(), word.quote),
            (4, "my fi", None)
        );
        assert_eq!(at_end("cat a\\\\b").text, "a\\b");
        // Inside double quotes only some backslashes escape.
        assert_eq!(at_end("cat \"a\\$b\\c").text, "a$b\\c");
        // A line continuation vanishes; a dangling backslash is not part of the word.
        assert_eq!(at_end("cat a\\\nb").text, "ab");
        assert_eq!(at_end("cat ab\\").text, "ab");
        assert_eq!(at_end("cat 'a\\b").text, "a\\b");
    }

    #[test]
    fn a_tilde_is_expanded_only_unquoted_at_the_start() {
        assert_eq!(at_end("ls ~/Doc").text, "~/Doc");
        assert_eq!(at_end("ls \"~/Doc").text, "./~/Doc");
        assert_eq!(at_end("ls \\~/Doc").text, "./~/Doc");
        assert_eq!(at_end("ls a~b").text, "a~b");
    }

    #[test]
    fn a_redirection_target_is_a_path() {
        for line in [
            "ls > fi",
            "ls >fi",
            "ls 2>>fi",
            "ls >&fi",
            "sort < fi",
            "> fi",
            "2>fi",
        ] {
            let word = at_end(line);
            assert!(!word.command, "{line:?}");
            assert_eq!(word.text, "fi", "{line:?}");
        }
        // After the target, the command position comes back.
        assert!(at_end("> out ec").command);
        assert!(!at_end("ls > out fi").command);
        assert!(!at_end("ls 2>&1 fi").command);
    }

    #[test]
    fn the_cursor_may_be_mid_line_or_mid_character() {
        let word = word_at("ls /etc/pa | wc", 10);
        assert_eq!(
            (word.start, word.text.as_str(), word.command),
            (3, "/etc/pa", false)
        );
        let word = word_at("ls é", 4);
        assert_eq!(word.text, "");
        assert_eq!(word.start, 3);
        let word = word_at("ls é", 99);
        assert_eq!(word.text, "é");
    }

    #[test]
    fn replacements_are_quoted_for_the_shell() {
        let plain = at_end("cat my");
        assert_eq!(replacement(&plain, "my file"), "my\\ file ");
        assert_eq!(replacement(&plain, "dir/"), "dir/");
        assert_eq!(
            replacement(&plain, "a$b;c&d|e'f\"g"),
            "a\\$b\\;c\\&d\\|e\\'f\\\"g "
        );
        assert_eq!(replacement(&plain, "*?[x]"), "\\*\\?\\[x\\] ");
        assert_eq!(replacement(&plain, "a\nb"), "a'\n'b ");
        assert_eq!(replacement(&plain, "~/my dir/"), "~/my\\ dir/");
        assert_eq!(replacement(&plain, "~odd"), "\\~odd ");
        assert_eq!(replacement(&plain, "héllo"), "héllo ");
    }

    #[test]
    fn replacements_continue_an_open_quote() {
        let double = at_end("cat \"my");
        assert_eq!(replacement(&double, "my file"), "\"my file\" ");
        assert_eq!(replacement(&double, "my dir/"), "\"my dir/");
        assert_eq!(replacement(&double, "a\"$`\\b"), "\"a\\\"\\$\\`\\\\b\" ");
        assert_eq!(replacement(&double, "~/my file"), "~/\"my file\" ");
        let single = at_end("cat 'it");
        assert_eq!(replacement(&single, "it's"), "'it'\\''s' ");
        assert_eq!(replacement(&single, "a b/"), "'a b/");
    }

    /// Whatever the name, the word read back from its replacement is the name.
    #[test]
    fn replacements_read_back_as_the_name() {
        for name in [
            "my file",
            "a$b",
            "x'y\"z",
            "tab\there",
            "semi;colon",
            "~/a b",
            "q=1",
            "\\n",
        ] {
            for line in ["cat x", "cat \"x", "cat 'x"] {
                let word = at_end(line);
                let mut typed = line.get(..word.start).unwrap().to_owned();
                typed.push_str(replacement(&word, name).trim_end_matches(' '));
                let back = at_end(&typed);
                assert_eq!(back.start, word.start, "{line:?} {name:?} -> {typed:?}");
                assert_eq!(back.text, name, "{line:?} {name:?} -> {typed:?}");
                assert_eq!(back.quote, None, "{line:?} {name:?} -> {typed:?}");
            }
        }
    }

    #[test]
    fn display_escapes_control_characters_and_shows_the_last_component() {
        assert_eq!(display("evil\u{1b}[2J"), "evil\\u{1b}[2J");
        assert_eq!(display("/etc/passwd"), "passwd");
        assert_eq!(display("sub/deeper/"), "deeper/");
        assert_eq!(display("~/"), "~/");
        assert_eq!(display("/"), "/");
        assert_eq!(display("a\nb/c\u{7}"), "c\\u{7}");
    }
}
