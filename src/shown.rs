//! Text from elsewhere (a peer's message, a name it chose, a line of a log file) made safe to
//! print on a terminal: control characters (C0, DEL, C1: newlines, escape sequences),
//! Unicode's bidirectional formatting characters (which reorder what follows them) and the
//! line and paragraph separators are shown as Rust escapes (`\u{1b}`, `\n`), every other
//! character as itself. Pure; it imports nothing of the crate, and it never drops a
//! character.

/// `text` with every character that could drive a terminal or disguise the text escaped.
pub fn shown(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}') {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    safe
}

/// Unicode's Bidi_Control characters: the marks, embeddings, overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(
            shown("bad\u{1b}]0;title\u{7}\r\n"),
            "bad\\u{1b}]0;title\\u{7}\\r\\n"
        );
        assert_eq!(shown("\u{7f}"), "\\u{7f}");
        // C1 controls too (U+009B is CSI on terminals that take 8-bit controls).
        assert_eq!(shown("a\u{9b}2J"), "a\\u{9b}2J");
    }

    #[test]
    fn printable_text_is_left_alone() {
        for text in [
            "protocol error",
            "répertoire",
            "שלום",
            "日本語",
            "a\\b",
            "tab-free",
        ] {
            assert_eq!(shown(text), text);
        }
    }

    #[test]
    fn bidi_controls_and_separators_are_escaped() {
        // `rm -rf / #` shown as if it were a comment: an override reorders what follows it.
        assert_eq!(
            shown("echo hi \u{202e}# /tmp fr- mr"),
            "echo hi \\u{202e}# /tmp fr- mr"
        );
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{2028}', '\u{2029}',
        ] {
            assert_eq!(
                shown(&c.to_string()),
                c.escape_unicode().to_string(),
                "{c:?}"
            );
        }
    }
}
