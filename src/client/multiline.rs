//! Whether a block of shell text typed or pasted into the console is complete, or whether the
//! remote shell would read on after it (bash's `> ` continuation prompt): the line editor asks
//! [`is_incomplete`] when Enter is pressed, and keeps the block open while it says so. The
//! block's lines are joined with `\n`.
//!
//! This module owns only that verdict, decided locally from the text, with no round trip. It
//! is pure and total: it never runs a shell or anything else, does no I/O, never panics, and
//! costs time linear in the text (nesting too deep to judge cheaply is judged complete). It
//! decides no policy: what to do with a complete block (send it, refuse it for its length, keep
//! it in history) is the editor's. Text that is wrong in a way more input cannot fix is
//! complete here: it is sent, and the remote shell reports the error.
//!
//! The shell grammar is brush-parser's (a bash tokenizer and PEG parser). A tokenizer error
//! that more input could end (an open quote, `$(`, `${`, backquote, here-document or a
//! trailing `\`) means incomplete. A parse error means incomplete only if the parser got
//! through all of the text and failed at its end, and would still get past the end of the
//! line if more came: the text is parsed again with a line `)` after it, and the parser must
//! then fail on that line (or succeed, when `)` closed a `(`) rather than at the end of the
//! text. That tells `if true; then` (the parser waits for a command) from `fi` (read as a
//! function name, it waits for `(` and fails at the newline).
//!
//! The parser backtracks: its time doubles with each `(` or `case` left open, and its stack
//! grows with every nesting level, in the tokenizer too. So before it runs, a cheap linear
//! scan bounds the nesting: texts beyond the bounds are judged complete without parsing.

use brush_parser::{ParseError, ParserOptions, Token, parse_tokens, uncached_tokenize_str};

/// Texts longer than this are judged complete without parsing (four times the longest line
/// the console sends).
const MAX_TEXT: usize = 64 * 1024;

/// The most `$(`, `${` and `$[` in a text that is parsed: each nested one is a recursion of
/// the tokenizer (about 1.3 KiB of stack), so this bounds its stack whatever the nesting.
const MAX_EXPANSIONS: usize = 256;

/// The deepest nesting of compound commands (`(`, `{`, `if`, loops, `case`) that is parsed,
/// for the parser's stack.
const MAX_NESTING: usize = 128;

/// The deepest nesting of `(` and `case` that is parsed: each one left open doubles the time
/// the parser takes to fail (12 costs a few milliseconds).
const MAX_BACKTRACKING: usize = 12;

/// Whether the shell would read on after `text` (as bash shows its `> ` prompt): an unclosed
/// quote, a trailing `\`, `if` without `fi`, `for`/`while`/`until` without `done`, `case`
/// without `esac`, an open `{` or `(`, a heredoc whose delimiter line has not come, `$(`
/// unclosed, a trailing `|`, `&&`, `||`. Text that is complete, or wrong in a way more input
/// cannot fix (`fi` alone, `)`), is not incomplete: it is sent, and the remote shell reports
/// the error.
pub fn is_incomplete(text: &str) -> bool {
    // A line that ends in `\` and a newline (a pasted block's last line end) continues, as
    // it does when bash reads it interactively; the tokenizer would just drop both.
    if let Some(line) = text.strip_suffix('\n')
        && line.ends_with('\\')
    {
        return is_incomplete(line);
    }
    if text.len() > MAX_TEXT || expansions(text) > MAX_EXPANSIONS {
        return false;
    }
    match parse(text) {
        Verdict::Incomplete => true,
        Verdict::FailedAtEnd => !ends_with_word_and_paren(text) && reads_past_end(text),
        Verdict::Valid | Verdict::Complete | Verdict::FailedNear(_) => false,
    }
}

/// Whether the parser, failing at the end of `text`, would get past the end of its line if
/// more came: parsed with a line `)` after it, it must fail on that line, or succeed (the `)`
/// closed a `(`), not fail at the newline before it.
fn reads_past_end(text: &str) -> bool {
    let probe_line = text.matches('\n').count() + 2;
    match parse(&format!("{text}\n)")) {
        Verdict::Valid | Verdict::FailedAtEnd => true,
        Verdict::FailedNear(line) => line >= probe_line,
        Verdict::Incomplete | Verdict::Complete => false,
    }
}

/// What one parse of a text says.
enum Verdict {
    /// It parses.
    Valid,
    /// The tokenizer stopped at the end, in a construct that more input could close.
    Incomplete,
    /// Judged complete without parsing (too deep), or a tokenizer error more input cannot fix.
    Complete,
    /// The parser failed at the end of the text.
    FailedAtEnd,
    /// The parser failed at a token on this (1-based) line.
    FailedNear(usize),
}

/// Bash's grammar as an interactive bash without a profile has it: no `extglob`, so `@(` is
/// a syntax error there and here.
fn options() -> ParserOptions {
    ParserOptions {
        enable_extended_globbing: false,
        ..ParserOptions::default()
    }
}

fn parse(text: &str) -> Verdict {
    let options = options();
    let tokens = match uncached_tokenize_str(text, &options.tokenizer_options()) {
        Ok(tokens) => tokens,
        Err(err) if err.is_incomplete() => return Verdict::Incomplete,
        Err(_) => return Verdict::Complete,
    };
    if !shallow(&tokens) {
        return Verdict::Complete;
    }
    match parse_tokens(&tokens, &options) {
        Ok(_) => Verdict::Valid,
        Err(ParseError::ParsingAtEndOfInput) => Verdict::FailedAtEnd,
        Err(ParseError::ParsingNear(position)) => Verdict::FailedNear(position.line),
        Err(ParseError::Tokenizing { inner, .. }) if inner.is_incomplete() => Verdict::Incomplete,
        Err(ParseError::Tokenizing { .. }) => Verdict::Complete,
    }
}

/// How many `$(`, `${` and `$[` the text has, quoted or not: a bound on how deep the
/// tokenizer recurses.
fn expansions(text: &str) -> usize {
    text.as_bytes()
        .windows(2)
        .filter(|pair| matches!(pair, [b'$', b'(' | b'{' | b'[']))
        .count()
}

/// A compound command the nesting bound counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `(`: a subshell, `((`, a function's `()`, an array, a `case` pattern's `(`.
    Paren,
    /// `{`.
    Brace,
    /// `if`.
    If,
    /// `for`, `select`, `while`, `until`.
    Loop,
    /// `case`.
    Case,
}

/// Whether the nesting the parser could meet in `tokens` is within [`MAX_NESTING`] and
/// [`MAX_BACKTRACKING`]. The count errs high: every word that could open a compound command
/// where it stands is counted as opening one, and a closer is counted only where it can be
/// nothing else and it matches the innermost open one.
fn shallow(tokens: &[Token]) -> bool {
    let mut open: Vec<Open> = Vec::new();
    let mut backtracking = 0usize;
    // A word here could start a command (so `if`, `{` ... could open something).
    let mut command_position = true;
    // A reserved word here can only be a reserved word (so `fi`, `}` ... close something).
    let mut closer_position = true;
    // The previous word was `function`, `coproc` or `time`: a name or `-p` may come first.
    let mut after_prefix = false;
    for token in tokens {
        let mut close = |kind: Open, open: &mut Vec<Open>, backtracking: &mut usize| {
            if open.last() == Some(&kind) {
                open.pop();
                if matches!(kind, Open::Paren | Open::Case) {
                    *backtracking = backtracking.saturating_sub(1);
                }
            }
        };
        match token {
            Token::Operator(operator, _) => {
                match operator.as_str() {
                    "(" => {
                        open.push(Open::Paren);
                        backtracking += 1;
                    }
                    ")" => close(Open::Paren, &mut open, &mut backtracking),
                    _ => {}
                }
                let redirection = operator.starts_with(['<', '>']) || operator.starts_with("&>");
                command_position = !redirection;
                closer_position = matches!(operator.as_str(), ";" | "\n" | "&" | ")")
                    || operator.starts_with(";;")
                    || operator == ";&";
                after_prefix = false;
            }
            Token::Word(word, _) => {
                let word = word.as_str();
                if command_position || after_prefix {
                    match word {
                        "{" => open.push(Open::Brace),
                        "if" => open.push(Open::If),
                        "for" | "select" | "while" | "until" => open.push(Open::Loop),
                        "case" => {
                            open.push(Open::Case);
                            backtracking += 1;
                        }
                        _ => {}
                    }
                }
                if closer_position {
                    match word {
                        "}" => close(Open::Brace, &mut open, &mut backtracking),
                        "fi" => close(Open::If, &mut open, &mut backtracking),
                        "done" => close(Open::Loop, &mut open, &mut backtracking),
                        "esac" => close(Open::Case, &mut open, &mut backtracking),
                        _ => {}
                    }
                }
                let was_prefix = after_prefix;
                after_prefix = matches!(word, "function" | "coproc" | "time")
                    || (was_prefix && word == "-p");
                command_position = after_prefix
                    || was_prefix
                    || matches!(
                        word,
                        "{" | "}" | "!" | "if" | "then" | "else" | "elif" | "fi" | "while"
                            | "until" | "do" | "done" | "esac"
                    );
                closer_position = matches!(word, "}" | "fi" | "done" | "esac");
            }
        }
        if open.len() > MAX_NESTING || backtracking > MAX_BACKTRACKING {
            return false;
        }
    }
    true
}

/// Whether the text ends (but for newlines) with a word and then `(`, as `echo (` or `f(`:
/// bash takes that for a syntax error at the newline, where the parser here reads on (it
/// allows newlines inside an array's `( )`, whatever the word before it).
fn ends_with_word_and_paren(text: &str) -> bool {
    let Ok(tokens) = uncached_tokenize_str(text, &options().tokenizer_options()) else {
        return false;
    };
    let mut last = tokens
        .iter()
        .rev()
        .skip_while(|token| matches!(token, Token::Operator(op, _) if op == "\n"));
    match (last.next(), last.next()) {
        (Some(Token::Operator(paren, _)), Some(Token::Word(word, _))) => {
            paren == "("
                && !word.ends_with('=')
                && !matches!(
                    word.as_str(),
                    "!" | "{" | "}" | "if" | "then" | "else" | "elif" | "fi" | "while" | "until"
                        | "do" | "done" | "esac" | "in" | "time" | "-p" | "coproc" | "[["
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_incomplete;

    #[test]
    fn probe_all() {
        let Ok(input) = std::fs::read_to_string("/tmp/mlx/cases.txt") else { return };
        let mut out = String::new();
        for case in input.split("\n====\n") {
            let v = is_incomplete(case);
            out.push_str(&format!("{}\t{:?}\n", v, case));
        }
        std::fs::write("/tmp/mlx/brush.out", out).unwrap();
    }
}
