//! The line syntax of the trust files (authorized_keys, known_hosts): one entry per line,
//! blank lines and `#` comments skipped (`.pub` files skip the same lines), and a bad line
//! reported with its 1-based number and skipped rather than failing the whole file. What an
//! entry means is each file's own business (`authorized`, `known_hosts`); this module never
//! looks inside an entry and never reads or writes a file.

use crate::keys::{LineProblem, LineWarning};

/// True for lines that trust and key files skip: empty, whitespace or `#` comments.
pub(crate) fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim_start();
    line.is_empty() || line.starts_with('#')
}

/// Parses a trust file line by line (1-based numbers), skipping blanks and comments: the good
/// entries, and a warning for each bad line.
pub(crate) fn parse_trust_lines<T>(
    text: &str,
    parse_entry: impl Fn(&str, usize) -> Result<T, LineProblem>,
) -> (Vec<T>, Vec<LineWarning>) {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for (index, content) in text.lines().enumerate() {
        let line = index + 1;
        if is_blank_or_comment(content) {
            continue;
        }
        match parse_entry(content, line) {
            Ok(entry) => entries.push(entry),
            Err(problem) => warnings.push(LineWarning { line, problem }),
        }
    }
    (entries, warnings)
}
