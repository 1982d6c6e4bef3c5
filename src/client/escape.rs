//! The ssh-style escapes typed into a command that runs on a pseudo-terminal: `~.` drops the
//! connection, `~?` lists the escapes, `~~` sends one `~`, and `~` followed by any other byte
//! sends both. A `~` starts an escape only as the first key of a line: right after a typed
//! CR or LF, or as the command's very first key. This module owns that recognition and its
//! state from one read of the keyboard to the next (a `~` may end one read and its `.` begin
//! the next). It is pure: bytes in, bytes to send and escapes out. It does no I/O, and it
//! never drops, adds or reorders a byte that is not part of an escape.

/// The escape character, as in ssh.
pub const ESCAPE_CHAR: u8 = b'~';

/// What the user asked for with an escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// `~.`: drop the connection. Nothing typed after it is sent.
    Disconnect,
    /// `~?`: show [`HELP`].
    Help,
}

/// One step of what a read of the keyboard means, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Bytes for the remote command.
    Send(Vec<u8>),
    /// An escape to carry out here.
    Do(Escape),
}

/// The list `~?` shows, with the `\r\n` line ends a terminal in raw mode needs.
pub const HELP: &str = "Supported escape sequences:\r\n \
    ~.   - drop the connection (exit 255)\r\n \
    ~?   - this message\r\n \
    ~~   - send the escape character by typing it twice\r\n\
    (Escapes are only recognized immediately after a newline.)\r\n";

/// Recognises escapes in what is typed, across reads.
#[derive(Debug, Clone)]
pub struct EscapeScanner {
    /// The next key is the first of a line.
    line_start: bool,
    /// A `~` at the start of a line was held back: the next key decides what it means.
    pending: bool,
    /// `~.` was seen: nothing more is sent.
    disconnected: bool,
}

impl Default for EscapeScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl EscapeScanner {
    /// A scanner at the start of a command: its first key is the first of a line.
    pub fn new() -> Self {
        Self {
            line_start: true,
            pending: false,
            disconnected: false,
        }
    }

    /// What `keys`, the next bytes typed, mean: the bytes to send and the escapes to carry
    /// out, in the order they were typed. A held-back `~` at the end is decided by the next
    /// call.
    pub fn feed(&mut self, keys: &[u8]) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut send = Vec::with_capacity(keys.len() + 1);
        for &key in keys {
            if self.disconnected {
                break;
            }
            if self.pending {
                self.pending = false;
                match key {
                    b'.' => {
                        self.disconnected = true;
                        flush(&mut send, &mut steps);
                        steps.push(Step::Do(Escape::Disconnect));
                        continue;
                    }
                    // Still at the start of a line: another escape may follow at once.
                    b'?' => {
                        flush(&mut send, &mut steps);
                        steps.push(Step::Do(Escape::Help));
                        continue;
                    }
                    // `~~` is one `~`, sent below.
                    ESCAPE_CHAR => {}
                    _ => send.push(ESCAPE_CHAR),
                }
            } else if self.line_start && key == ESCAPE_CHAR {
                self.pending = true;
                continue;
            }
            self.line_start = matches!(key, b'\r' | b'\n');
            send.push(key);
        }
        flush(&mut send, &mut steps);
        steps
    }
}

/// Ends the current run of bytes to send, if there is one.
fn flush(send: &mut Vec<u8>, steps: &mut Vec<Step>) {
    if !send.is_empty() {
        steps.push(Step::Send(std::mem::take(send)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(bytes: &[u8]) -> Step {
        Step::Send(bytes.to_vec())
    }

    #[test]
    fn a_disconnect_right_at_the_start_of_the_command_is_recognised() {
        let mut keys = EscapeScanner::new();
        assert_eq!(keys.feed(b"~."), [Step::Do(Escape::Disconnect)]);
    }

    #[test]
    fn a_disconnect_split_across_two_reads_is_recognised() {
        let mut keys = EscapeScanner::new();
        assert_eq!(keys.feed(b"ls\r~"), [send(b"ls\r")]);
        assert_eq!(keys.feed(b"."), [Step::Do(Escape::Disconnect)]);
    }

    #[test]
    fn a_disconnect_after_a_line_feed_is_recognised() {
        let mut keys = EscapeScanner::new();
        assert_eq!(
            keys.feed(b"x\n~."),
            [send(b"x\n"), Step::Do(Escape::Disconnect)]
        );
    }

    #[test]
    fn nothing_typed_after_a_disconnect_is_sent() {
        let mut keys = EscapeScanner::new();
        assert_eq!(
            keys.feed(b"a\r~.rm -rf\r"),
            [send(b"a\r"), Step::Do(Escape::Disconnect)]
        );
        assert_eq!(keys.feed(b"more"), []);
    }

    #[test]
    fn a_tilde_that_is_not_after_enter_is_literal() {
        let mut keys = EscapeScanner::new();
        assert_eq!(keys.feed(b"cd ~.x"), [send(b"cd ~.x")]);
        assert_eq!(keys.feed(b"~."), [send(b"~.")]);
    }

    #[test]
    fn a_tilde_typed_twice_sends_one_and_ends_the_line_start() {
        let mut keys = EscapeScanner::new();
        assert_eq!(keys.feed(b"~~"), [send(b"~")]);
        // The line has begun: the next `~.` is literal.
        assert_eq!(keys.feed(b"~."), [send(b"~.")]);
    }

    #[test]
    fn a_tilde_typed_twice_across_reads_sends_one() {
        let mut keys = EscapeScanner::new();
        assert_eq!(keys.feed(b"\r~"), [send(b"\r")]);
        assert_eq!(keys.feed(b"~/bin"), [send(b"~/bin")]);
    }

    #[test]
    fn a_tilde_then_another_byte_sends_both() {
        let mut keys = EscapeScanner::new();
        assert_eq!(keys.feed(b"~/x"), [send(b"~/x")]);
        let mut keys = EscapeScanner::new();
        assert_eq!(keys.feed(b"~"), []);
        assert_eq!(keys.feed(b"a"), [send(b"~a")]);
    }

    #[test]
    fn a_tilde_then_enter_sends_both_and_a_new_line_starts() {
        let mut keys = EscapeScanner::new();
        assert_eq!(
            keys.feed(b"~\r~."),
            [send(b"~\r"), Step::Do(Escape::Disconnect)]
        );
    }

    #[test]
    fn question_mark_asks_for_help_and_keeps_the_line_start() {
        let mut keys = EscapeScanner::new();
        assert_eq!(
            keys.feed(b"ab\r~?~."),
            [
                send(b"ab\r"),
                Step::Do(Escape::Help),
                Step::Do(Escape::Disconnect)
            ]
        );
    }

    #[test]
    fn help_in_the_middle_of_a_read_keeps_the_bytes_around_it_in_order() {
        let mut keys = EscapeScanner::new();
        assert_eq!(
            keys.feed(b"1\r~?2"),
            [send(b"1\r"), Step::Do(Escape::Help), send(b"2")]
        );
    }

    #[test]
    fn control_keys_pass_through_unchanged() {
        let mut keys = EscapeScanner::new();
        let all: Vec<u8> = (0u8..=255).filter(|b| *b != ESCAPE_CHAR).collect();
        assert_eq!(keys.feed(&all), [send(&all)]);
    }

    #[test]
    fn the_help_text_has_terminal_line_ends() {
        assert!(HELP.ends_with("\r\n"));
        assert_eq!(HELP.matches('\n').count(), HELP.matches("\r\n").count());
    }
}
