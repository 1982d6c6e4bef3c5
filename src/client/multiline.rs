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
const MAX_EXPANSIONS: usize = 512;

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

/// The compound commands open at a point of the text, as [`shallow`] counts them.
#[derive(Default)]
struct Nesting {
    /// Innermost last.
    open: Vec<Open>,
    /// How many of `open` are [`Open::Paren`] or [`Open::Case`].
    backtracking: usize,
}

impl Nesting {
    fn push(&mut self, kind: Open) {
        self.open.push(kind);
        if matches!(kind, Open::Paren | Open::Case) {
            self.backtracking += 1;
        }
    }

    /// Closes the innermost open command if it is of this kind; leaves all open otherwise.
    fn close(&mut self, kind: Open) {
        if self.open.last() == Some(&kind) {
            self.open.pop();
            if matches!(kind, Open::Paren | Open::Case) {
                self.backtracking = self.backtracking.saturating_sub(1);
            }
        }
    }

    fn within_bounds(&self) -> bool {
        self.open.len() <= MAX_NESTING && self.backtracking <= MAX_BACKTRACKING
    }
}

/// Whether the nesting the parser could meet in `tokens` is within [`MAX_NESTING`] and
/// [`MAX_BACKTRACKING`]. The count errs high: every word that could open a compound command
/// where it stands is counted as opening one, and a closer is counted only where it can be
/// nothing else and it matches the innermost open one.
fn shallow(tokens: &[Token]) -> bool {
    let mut nesting = Nesting::default();
    // A word here could start a command (so `if`, `{` ... could open something).
    let mut command_position = true;
    // A reserved word here can only be a reserved word (so `fi`, `}` ... close something).
    let mut closer_position = true;
    // The previous word was `function`, `coproc` or `time` (or `time -p`): the word after it
    // may be a name or `-p`, and the one after that may open a command too.
    let mut after_prefix = false;
    for token in tokens {
        match token {
            Token::Operator(operator, _) => {
                match operator.as_str() {
                    "(" => nesting.push(Open::Paren),
                    ")" => nesting.close(Open::Paren),
                    _ => {}
                }
                // After a redirection comes its target, not a command.
                command_position =
                    !(operator.starts_with(['<', '>']) || operator.starts_with("&>"));
                closer_position = matches!(operator.as_str(), ";" | "\n" | "&" | ")" | ";&")
                    || operator.starts_with(";;");
                after_prefix = false;
            }
            Token::Word(word, _) => {
                let word = word.as_str();
                if command_position || after_prefix {
                    match word {
                        "{" => nesting.push(Open::Brace),
                        "if" => nesting.push(Open::If),
                        "for" | "select" | "while" | "until" => nesting.push(Open::Loop),
                        "case" => nesting.push(Open::Case),
                        _ => {}
                    }
                }
                if closer_position {
                    match word {
                        "}" => nesting.close(Open::Brace),
                        "fi" => nesting.close(Open::If),
                        "done" => nesting.close(Open::Loop),
                        "esac" => nesting.close(Open::Case),
                        _ => {}
                    }
                }
                let was_prefix = after_prefix;
                after_prefix =
                    matches!(word, "function" | "coproc" | "time") || (was_prefix && word == "-p");
                command_position = after_prefix || was_prefix || OPENS_A_COMMAND.contains(&word);
                closer_position = matches!(word, "}" | "fi" | "done" | "esac");
            }
        }
        if !nesting.within_bounds() {
            return false;
        }
    }
    true
}

/// Reserved words after which the next word is in command position.
const OPENS_A_COMMAND: &[&str] = &[
    "{", "}", "!", "if", "then", "else", "elif", "fi", "while", "until", "do", "done", "esac",
];

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
                && !OPENS_A_COMMAND.contains(&word.as_str())
                && !matches!(word.as_str(), "in" | "time" | "-p" | "coproc" | "[[")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_BACKTRACKING, MAX_EXPANSIONS, MAX_NESTING, is_incomplete};
    use proptest::prelude::*;

    /// Each text with interactive bash's verdict: `true` where bash 5.2 (`bash --norc -i` on
    /// a pseudo-terminal, `set +H`, no `extglob`), fed the text and a newline, showed its
    /// `PS2` prompt after the last line, `false` where it ran the text or reported a syntax
    /// error and showed `PS1` again.
    const BASH: &[(&str, bool)] = &[
        ("echo hi", false),
        ("echo 'a", true),
        ("echo \"a", true),
        ("echo a \\", true),
        ("if true; then", true),
        ("if true; then echo x; fi", false),
        ("for i in 1 2 3; do", true),
        ("for i in 1 2 3\ndo\n  echo $i\ndone", false),
        ("while true; do", true),
        ("until false; do", true),
        ("case x in", true),
        ("case x in a) echo;; esac", false),
        ("{ echo", true),
        ("( echo", true),
        ("f() {", true),
        ("cat <<EOF\nhello", true),
        ("cat <<EOF\nhello\nEOF", false),
        ("cat <<-EOF\n\thello\n\tEOF", false),
        ("cat <<'EOF'\n$x\nEOF", false),
        ("echo $(ls", true),
        ("ls |", true),
        ("true &&", true),
        ("false ||", true),
        ("fi", false),
        (")", false),
        ("done", false),
        ("", false),
        ("# comment", false),
        ("echo '#' 'x", true),
        ("echo \\'", false),
        ("echo \"it's\"", false),
        ("echo $((1+2))", false),
        ("[[ -f x ]] && echo y", false),
        ("echo {a,b}", false),
        ("echo x # it's", false),
        ("echo `ls", true),
        ("echo ${x", true),
        ("echo $((1+", true),
        ("echo $'a", true),
        ("if true; then\necho x\nfi", false),
        ("if", true),
        ("then", false),
        ("esac", false),
        ("}", false),
        ("echo )", false),
        ("echo a; fi", false),
        ("f() { echo; }", false),
        ("echo a |\ncat", false),
        ("[[ -f x", true),
        ("echo a \\\nb", false),
        ("cat <<EOF", true),
        ("cat <<", false),
        ("echo <", false),
        ("echo >", false),
        ("a=(1 2", true),
        ("a=(1 2)", false),
        ("x=$(\ncat <<EOF\nhi\nEOF\n)", false),
        ("echo $(cat <<EOF\nhi\nEOF\n)", false),
        ("echo \"$(ls\"", true),
        ("echo \"a\\", true),
        ("case x in\na) echo a;;\nesac", false),
        ("case x in a)", true),
        ("while", true),
        ("for", false),
        ("for i in", true),
        ("echo hi;", false),
        ("echo hi &", false),
        ("!", false),
        ("echo ;;", false),
        ("|", false),
        ("&&", false),
        ("echo a && \\", true),
        ("echo 'a\nb'", false),
        ("cat <<EOF; echo 'x\nhi\nEOF", true),
        ("(( 1 +", true),
        ("(( 1 + 2 ))", false),
        ("echo a\\\\", false),
        ("coproc {", true),
        ("time", false),
        ("function f", true),
        ("function f {", true),
        ("if true; then echo; else", true),
        ("if true; then echo; elif", true),
        ("echo \"${x:-\"", true),
        ("echo ${x:-'a}", true),
        ("trap 'echo", true),
        ("echo $[1+", true),
        ("cat <<EOF\nhi\nEOF\necho 'a", true),
        ("echo a # '\necho b", false),
        ("echo #'", false),
        ("echo a#'", true),
        ("x=\"", true),
        ("echo ((", false),
        ("echo $(( ", true),
        ("echo $(echo )", false),
        ("echo $(case x in a) echo;; esac)", false),
        ("cat <<EOF <<EOG\na\nEOF\nb", true),
        ("cat <<EOF <<EOG\na\nEOF\nb\nEOG", false),
        ("cat <<\"EOF\"\nx\nEOF", false),
        ("cat <<E\\OF\nx\nEOF", false),
        ("if true; then fi", false),
        ("for do done", false),
        ("{ }", false),
        ("( )", false),
        ("echo a ||\n", true),
        ("echo a\n|", false),
        ("case x in a", false),
        ("echo (", false),
        ("f(", false),
        ("f()", true),
        ("f() ", true),
        ("echo $(if", true),
        ("[[ -f x ]", false),
        ("[[", true),
        ("echo a\n", false),
        ("echo a;\n\n", false),
        ("if true\nthen", true),
        ("x=$(", true),
        ("echo $( (", true),
        ("case x in (a", false),
        ("cat <<EOF\n$(", true),
        ("! ", false),
        ("echo a | ! ", false),
        ("echo a |&", true),
        ("echo a &&\n\n", true),
        ("if true; then echo; fi |", true),
        ("{ echo; } &&", true),
        ("time |", false),
        ("[[ a ==", false),
        ("((", true),
        ("echo \"$((\"", true),
        ("for ((i=0;", true),
        ("for ((i=0;i<3;i++)); do", true),
        ("for ((i=0;i<3;i++)); do echo; done", false),
        ("declare -a a=(", true),
        ("echo a >&", false),
        ("echo a 2>", false),
        ("case x in a|", false),
        ("case x in a) ;; b", false),
        ("while true; do echo; done &&", true),
        ("echo `echo \\`", true),
        ("echo 'a'\\", true),
        ("if true; then echo; fi; fi", false),
        ("if ( true; then", false),
        ("echo ) (", false),
        ("{ echo }", true),
        ("f() { echo; }; f() {", true),
        ("case x in\n", true),
        ("time -p", false),
        ("function", false),
        ("echo a ;; ", false),
        ("echo a & &&", false),
        ("(echo; ) (", false),
        ("a=1 \\", true),
        ("echo \\\\\\", true),
        ("echo $((", true),
        ("echo $(( (1", true),
        ("echo $(( 1 ))", false),
        ("echo $(echo \"$(ls\")", true),
        ("echo ~(", false),
        ("echo >(", true),
        ("echo <(ls", true),
        ("echo <(ls)", false),
        ("diff <(ls) <(ls", true),
        ("exec {fd}>", false),
        ("cat <<EOF | grep x\nhi\nEOF", false),
        ("cat <<EOF | \nhi\nEOF", true),
        ("cat <<EOF &&\nhi\nEOF", true),
        ("until", true),
        ("do", false),
        ("elif", false),
        ("else", false),
        ("in", false),
        ("!!", false),
        ("echo $(cat <<EOF\nhi\n", true),
        ("echo `echo", true),
        ("echo `echo \\`echo\\``", false),
        ("echo a # \\", false),
        ("echo a #\n", false),
        ("echo a\necho 'b", true),
        ("if true\n", true),
        ("for x\n", true),
        ("while true\ndo\n", true),
        ("f()\n{", true),
        ("function f()\n", true),
        ("case x in\n*)", true),
        ("case x in\n*) echo ;;\n", true),
        ("echo \"a\nb", true),
        ("echo $'\\''", false),
        ("echo 'a'\\''b", true),
        ("echo \\\"", false),
        ("echo \\\\\"", true),
        ("x=${y:-$(echo", true),
        ("echo $((1+(2", true),
        ("echo $(( $(echo 1) +", true),
        ("arr=(\n1\n2", true),
        ("arr=(\n1\n2\n)", false),
        ("[[ a ]] ||", true),
        ("((x++)) &&", true),
        ("time ls |", true),
        ("ls | \\", true),
        ("ls |\n\n", true),
        ("cat <<EOF\n", true),
        ("cat <<EOF\nEOF\n", false),
        ("cat <<EOF\n  EOF", true),
        ("cat <<-EOF\n  EOF", true),
        ("cat << EOF\nx\nEOF", false),
        ("cat <<\"E F\"\nx\nE F", false),
        ("cat <<EOF\n$(echo\nEOF", false),
        ("cat <<A | cat <<B\na\nA\nb\nB", false),
        ("cat <<A | cat <<B\na\nA\nb", true),
        ("echo a\\\nb\\", true),
        ("\\", true),
        ("echo \\\n", false),
        ("if [ -f x ]; then echo; fi", false),
        ("if true; then echo; fi &&", true),
        ("while read l; do echo $l; done < file", false),
        ("for f in *; do echo \"$f\"; done | sort", false),
        ("echo \"$(echo \"a b\")\"", false),
        ("echo \"${a[@]}\"", false),
        ("echo ${#a[@]}", false),
        ("echo $((16#ff))", false),
        ("echo $(( 1 > 2 ? 1 : 0 ))", false),
        ("echo a > >(cat", true),
        ("f() ( echo", true),
        ("f() ( echo )", false),
        ("{ echo; } > x", false),
        ("exec 3>&-", false),
        ("echo a 2>&1 |", true),
        ("echo a |& cat", false),
        ("x=1; y=2", false),
        ("echo ~/x", false),
        ("echo a#b", false),
        ("echo a \\# b", false),
        ("trap 'echo x' EXIT", false),
        ("alias ll='ls -l'", false),
        ("echo $'it\\'s'", false),
        ("echo $\"x", true),
        ("echo \"\\\"", true),
        ("echo \"\\\\\"", false),
        ("printf '%s\\n' \"a\" |", true),
        ("until [ x ]\ndo :\ndone", false),
        (
            "case $x in\n  a|b) echo ab ;;\n  *) echo other ;;\nesac",
            false,
        ),
        ("case x in a) echo;;", true),
        ("if true; then :; elif false; then :; else :; fi", false),
        (":", false),
        (";", false),
        ("&", false),
        ("echo a &&& b", false),
        ("echo ${x/a/b}", false),
        ("echo ${x:0:1}", false),
        ("echo ${x%%.*}", false),
        ("test -f x || {", true),
        ("cd /tmp && {\n echo\n}", false),
        ("echo \"a\" 'b' \"c", true),
        ("echo $(( ))", false),
        ("f() {\n  local x=1\n  echo $x\n}", false),
        ("for ((;;)); do break; done", false),
        (
            "if true; then\n  for i in 1 2; do\n    case $i in\n      1) echo one;;\n",
            true,
        ),
        (
            "if true; then\n  for i in 1 2; do\n    case $i in\n      1) echo one;;\n    esac\n  done\nfi",
            false,
        ),
        ("echo 'a' # 'b", false),
        ("echo a; # if", false),
        ("echo a # $(", false),
        ("a=( [0]=x", true),
        ("declare -A m=([k]=v)", false),
        ("echo ${x:-}", false),
        ("echo {", false),
        ("echo }", false),
        ("echo a; }", false),
        ("{ echo a; } }", false),
        ("if true; then echo; fi fi", false),
        ("echo (a)", false),
        ("echo a(", false),
        ("a=(", true),
        ("a+=(1", true),
        ("echo $(( 2 ** 3 ))", false),
        ("let x=1+2", false),
        ("echo $[ 1 + 2 ]", false),
        ("(echo a) | (cat", true),
        ("(echo a) | (cat)", false),
        ("x=`date`", false),
        ("x=`date", true),
        ("echo \\`", false),
        ("echo '\\'", false),
        ("echo \"'\"", false),
        ("echo '\"'", false),
        ("echo $(echo ')')", false),
        ("echo $(echo \")\")", false),
        ("echo $(echo \\))", false),
        ("echo $( # )\n)", false),
        ("echo $(\n# comment\necho)", false),
        ("if true; then # fi\n", true),
        ("cat <<'EOF' | sed s/a/b/\n$(\nEOF", false),
        ("cat <<EOF\n`\nEOF", false),
        ("cat <<EOF\n\\\nEOF", false),
        ("cat <<\\EOF\n\\\nEOF", false),
        ("echo a | if true; then cat; fi", false),
        ("{\n", true),
        ("(\n", true),
        ("if\n", true),
        ("echo x |\n# comment\n", true),
        ("echo x &&\n# comment", true),
        ("echo x\n&& echo y", false),
        ("echo a ||| b", false),
        ("echo a\\ b", false),
        ("echo 'a\\'", false),
        ("echo \"a\\\"", true),
        ("echo \"a\\\\\"", false),
    ];

    #[test]
    fn agrees_with_bash() {
        let wrong: Vec<_> = BASH
            .iter()
            .filter(|(text, bash)| is_incomplete(text) != *bash)
            .collect();
        assert!(wrong.is_empty(), "verdicts differ from bash's: {wrong:?}");
    }

    /// Where the verdict is not bash's, and why. Each is rare at a prompt, and each errs the
    /// way a remote error or one more line mends.
    #[test]
    fn known_differences_from_bash() {
        // brush-parser has no `select`: the parser fails at its name (bash reads on).
        assert!(!is_incomplete("select x in a; do"));
        // brush-parser ends a `$(` at the first unquoted `)`, a `case` pattern's too (bash
        // reads on, for `esac` and the `)` of `$(`).
        assert!(!is_incomplete("echo $(case x in x)"));
        assert!(!is_incomplete("echo $(case x in x) echo;; esac"));
        // brush-parser fails on an empty arithmetic `for` (bash reads on, for `done`).
        assert!(!is_incomplete("for ((;;)); do"));
        // Without `extglob` bash takes `@(` and `!(` for syntax errors; brush-parser reads on
        // in an array's `( )`, which allows newlines, whatever the word before it. (With
        // `extglob`, as many profiles set it, bash reads on too.)
        assert!(is_incomplete("echo @(a"));
        assert!(is_incomplete("echo !("));
        // The inside of `$(` is tokenized here, not parsed, until the `)` comes (bash
        // reports the `fi` at once).
        assert!(is_incomplete("echo $(fi"));
        // bash wants `[[ -f`'s operand and `coproc`'s command on the same line; brush-parser
        // lets a newline come first.
        assert!(is_incomplete("[[ -f"));
        assert!(is_incomplete("coproc"));
    }

    #[test]
    fn lines_are_joined_with_newlines() {
        assert!(is_incomplete("for i in 1 2 3\ndo\n  echo $i"));
        assert!(!is_incomplete("for i in 1 2 3\ndo\n  echo $i\ndone"));
        assert!(is_incomplete(
            "f() {\n  local x=1\n  if [ \"$x\" ]; then\n    echo \"$x\"\n  fi"
        ));
        assert!(!is_incomplete(
            "f() {\n  local x=1\n  if [ \"$x\" ]; then\n    echo \"$x\"\n  fi\n}"
        ));
        // An empty line after a trailing `\` ends the command, as in bash.
        assert!(is_incomplete("echo a \\"));
        assert!(!is_incomplete("echo a \\\n"));
    }

    /// Runs `is_incomplete` on a thread with a 1 MiB stack: half what a test thread or a
    /// tokio worker has, an eighth of a main thread's.
    fn on_small_stack(text: String) -> bool {
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || is_incomplete(&text))
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn long_and_deep_texts_return() {
        let size = 16 * 1024;
        for unit in [
            "(",
            "( ",
            "((",
            "{ ",
            "if ",
            "if true; then ",
            "while ",
            "for x in a; do ",
            "f() { ",
            "case x in x) ",
            "case x in (x) ",
            "$(",
            "\"$(",
            "${x:-",
            "$((",
            "$( (",
            "`",
            "\\`",
            "'",
            "\"",
            "\\",
            "a | ",
            "a && ",
            "a; ",
            "a\n",
            "cat <<E\n",
            "cat <<E ",
            "a=(",
            "! ",
            "[[ ( ",
            "f() ",
            "x <(",
            "# (\n",
            "elif true; then echo; ",
            "a) echo a;;\n",
        ] {
            let text = unit.repeat(size / unit.len());
            // Returns, on a small stack; what it says matters less.
            let _ = on_small_stack(text);
        }
        // Quotes and backslashes need no nesting bound: the verdict is still exact.
        assert!(!on_small_stack("'".repeat(size)));
        assert!(on_small_stack("'".repeat(size - 1)));
        assert!(on_small_stack("\"".repeat(size - 1)));
        assert!(!on_small_stack("\\".repeat(size)));
        assert!(on_small_stack("\\".repeat(size - 1)));
        // A long script, flat or nested a few levels, is judged, not given up on.
        let block = "if [ -f \"$f\" ]; then\n  for x in $(cat \"$f\"); do\n    case $x in\n      \
                     a) ( echo \"${x}\" | tr a b ) ;;\n    esac\n  done\nfi\n";
        let script = block.repeat(size / block.len());
        assert!(!on_small_stack(script.clone()));
        assert!(on_small_stack(
            script.trim_end().trim_end_matches("fi").to_owned()
        ));
    }

    #[test]
    fn nesting_is_judged_up_to_the_bounds_and_complete_past_them() {
        // Each open `(` or `case` doubles the parser's time: up to the bound it is judged.
        assert!(on_small_stack("( ".repeat(MAX_BACKTRACKING)));
        assert!(!on_small_stack("( ".repeat(MAX_BACKTRACKING + 1)));
        assert!(on_small_stack("case x in x) ".repeat(MAX_BACKTRACKING)));
        assert!(!on_small_stack(
            "case x in x) ".repeat(MAX_BACKTRACKING + 1)
        ));
        // Closed ones do not count, however many came before.
        for closed in [
            "( echo ) ; case x in x) echo;; esac\n",
            "((i++)); for ((i=0;i<3;i++)); do echo; done\n",
            "a=(1 2); cat <(ls) >(cat); [[ ( -f x ) ]] && echo\n",
            "case x in (a) echo;; (b) ;; esac; f() ( echo ); { echo; } >x\n",
            "if (true); then (echo); fi; while (false); do :; done\n",
            "function f { echo; }; time -p { echo; }; coproc c { cat; }\n",
        ] {
            let before = closed.repeat(4 * MAX_BACKTRACKING);
            assert!(!on_small_stack(before.clone()), "{closed}");
            assert!(on_small_stack(format!("{before}(")), "{closed}");
            assert!(on_small_stack(format!("{before}case x in")), "{closed}");
        }
        // Other compound commands, for the stack.
        assert!(on_small_stack("{ ".repeat(MAX_NESTING)));
        assert!(!on_small_stack("{ ".repeat(MAX_NESTING + 1)));
        assert!(on_small_stack("if true; then ".repeat(MAX_NESTING)));
        // `$(`, `${` and `$[`, quoted or not, for the tokenizer's stack.
        assert!(on_small_stack("$(".repeat(MAX_EXPANSIONS)));
        assert!(on_small_stack("\"$(".repeat(MAX_EXPANSIONS)));
        assert!(on_small_stack("${x:-".repeat(MAX_EXPANSIONS)));
        assert!(!on_small_stack("$(".repeat(MAX_EXPANSIONS + 1)));
    }

    /// Shell-like text: pieces of the grammar and some other characters.
    fn shellish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => proptest::sample::select(vec![
                "(", ")", "{", "}", "[[", "]]", "$(", "${", "$[", "$((", "`", "'", "\"", "\\",
                "\n", " ", ";", ";;", "&", "&&", "|", "||", "<", ">", "<<", "<<-", "<<<", ">&",
                "#", "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "while",
                "case", "esac", "function", "coproc", "time", "!", "x", "EOF", "=", "a=", "@(",
                "$'", "=~", "\t",
            ])
            .prop_map(str::to_owned),
            1 => any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in any::<String>()) {
            let _ = is_incomplete(&text);
        }

        #[test]
        fn never_panics_on_shell_like_text(text in shellish()) {
            let _ = is_incomplete(&text);
        }

        /// A plain command is complete; an open quote, a trailing `|` or `&&` or an open
        /// `if` after it makes it incomplete, and closing that makes it complete again.
        #[test]
        fn plain_commands_and_what_opens_them(words in "[a-z0-9 ]{0,30}") {
            let command = format!("echo {words}");
            let after = |suffix: &str| is_incomplete(&format!("{command}{suffix}"));
            prop_assert!(!after(""));
            prop_assert!(after(" '"));
            prop_assert!(!after(" ''"));
            prop_assert!(after(" |"));
            prop_assert!(!after(" |\ncat"));
            prop_assert!(after(" &&"));
            let open_if = format!("if {command}; then");
            let closed_if = format!("{open_if}\n{command}\nfi");
            prop_assert!(is_incomplete(&open_if));
            prop_assert!(!is_incomplete(&closed_if));
        }
    }
}
