//! One host's output stream cut into whole lines, each with the host's prefix (`web1: `),
//! so that lines from many hosts never mix mid-line: bytes are held until their newline and
//! handed out line by line; a last line without one is handed out with one added at the
//! end. A line longer than [`MAX_LINE`] is handed out in pieces of that size, each a line of
//! its own, so what is held stays bounded whatever a server sends. Pure: bytes in, bytes
//! out; it never writes.

/// The most of an unfinished line held before it is handed out as a line anyway.
pub const MAX_LINE: usize = 64 << 10;

/// One stream's unfinished line and its prefix.
#[derive(Debug, Default)]
pub struct Lines {
    prefix: Vec<u8>,
    pending: Vec<u8>,
}

impl Lines {
    /// Lines prefixed with `prefix` (empty: none).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.as_bytes().to_vec(),
            pending: Vec::new(),
        }
    }

    /// Takes a piece of output; returns every line it completes, prefixed (maybe nothing).
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(end + 1);
            out.extend_from_slice(&self.prefix);
            out.append(&mut self.pending);
            out.extend_from_slice(line);
            rest = after;
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= MAX_LINE {
            out.extend_from_slice(&self.prefix);
            out.extend(self.pending.drain(..MAX_LINE));
            out.push(b'\n');
        }
        out
    }

    /// The unfinished last line, prefixed and ended with a newline (nothing if there is none).
    pub fn finish(&mut self) -> Vec<u8> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let mut out = self.prefix.clone();
        out.append(&mut self.pending);
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_lines_come_out_prefixed_as_they_complete() {
        let mut lines = Lines::new("web1: ");
        assert_eq!(lines.push(b"one\ntw"), b"web1: one\n");
        assert_eq!(lines.push(b"o"), b"");
        assert_eq!(lines.push(b"\n\nthree"), b"web1: two\nweb1: \n");
        assert_eq!(lines.finish(), b"web1: three\n");
        assert_eq!(lines.finish(), b"");
        let mut bare = Lines::new("");
        assert_eq!(bare.push(b"a\nb"), b"a\n");
        assert_eq!(bare.finish(), b"b\n");
    }

    #[test]
    fn a_line_without_end_is_cut_at_the_limit() {
        let mut lines = Lines::new("h: ");
        let out = lines.push(&vec![b'x'; MAX_LINE + 10]);
        assert_eq!(out.len(), 3 + MAX_LINE + 1);
        assert!(out.starts_with(b"h: xx") && out.ends_with(b"x\n"));
        assert_eq!(lines.pending.len(), 10);
        assert_eq!(lines.push(b"y\n"), b"h: xxxxxxxxxxy\n");
    }

    proptest! {
        /// However the bytes are split, what comes out is the same: every line of the input,
        /// prefixed, and the input's bytes in order once the prefixes are taken out.
        #[test]
        fn splitting_never_changes_the_lines(
            text in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), any::<u8>()], 0..300),
            cut in 0usize..300,
        ) {
            let whole = {
                let mut lines = Lines::new("p: ");
                let mut out = lines.push(&text);
                out.extend(lines.finish());
                out
            };
            let (a, b) = text.split_at(cut.min(text.len()));
            let mut lines = Lines::new("p: ");
            let mut split = lines.push(a);
            split.extend(lines.push(b));
            split.extend(lines.finish());
            prop_assert_eq!(&split, &whole);
            let mut back = Vec::new();
            for line in whole.split_inclusive(|&b| b == b'\n') {
                prop_assert!(line.starts_with(b"p: "));
                back.extend_from_slice(line.get(3..).unwrap_or_default());
            }
            if !text.is_empty() && !text.ends_with(b"\n") {
                back.pop();
            }
            prop_assert_eq!(back, text);
        }
    }
}
