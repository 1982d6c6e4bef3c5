//! A command's run as one JSON object, the schema of `exec --json` (one object) and of
//! fan-out's `--json` (one line per host): `host`, `address`, `exit`, `signal`, `stdout`,
//! `stdout_encoding`, `stderr`, `stderr_encoding`, `duration_ms` and `error`, each always
//! present and `null` where it does not apply. It owns the capture of a command's output,
//! capped per stream ([`STREAM_CAP`]) so that a server cannot grow the client without bound;
//! a stream is text when its bytes are UTF-8 and base64 otherwise, never a lossy conversion.
//! Pure: it does no I/O and never prints.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use super::console::Stream;
use crate::proto::ExitStatus;

/// The most of each stream kept for one command (then `error` says it was cut).
pub const STREAM_CAP: usize = 16 << 20;

/// One stream's bytes, up to a cap.
#[derive(Debug, Default)]
struct Capped {
    bytes: Vec<u8>,
    cut: bool,
}

impl Capped {
    fn push(&mut self, data: &[u8], cap: usize) {
        let room = cap.saturating_sub(self.bytes.len());
        let (kept, dropped) = data.split_at(data.len().min(room));
        self.bytes.extend_from_slice(kept);
        self.cut |= !dropped.is_empty();
    }

    /// The text and its encoding.
    fn encoded(&self) -> (Value, Value) {
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => (text.into(), "utf-8".into()),
            Err(_) => (
                base64::engine::general_purpose::STANDARD
                    .encode(&self.bytes)
                    .into(),
                "base64".into(),
            ),
        }
    }
}

/// A command's stdout and stderr, each capped.
#[derive(Debug)]
pub struct Captured {
    stdout: Capped,
    stderr: Capped,
    cap: usize,
}

impl Default for Captured {
    fn default() -> Self {
        Self::with_cap(STREAM_CAP)
    }
}

impl Captured {
    /// Keeping at most `cap` bytes of each stream.
    fn with_cap(cap: usize) -> Self {
        Self {
            stdout: Capped::default(),
            stderr: Capped::default(),
            cap,
        }
    }

    /// Adds a piece of output.
    pub fn take(&mut self, stream: Stream, data: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.push(data, self.cap),
            Stream::Stderr => self.stderr.push(data, self.cap),
        }
    }

    /// What was cut, if anything: `stdout cut at 16 MiB`.
    fn cut(&self) -> Option<String> {
        let names: Vec<&str> = [("stdout", &self.stdout), ("stderr", &self.stderr)]
            .into_iter()
            .filter(|(_, stream)| stream.cut)
            .map(|(name, _)| name)
            .collect();
        (!names.is_empty())
            .then(|| format!("{} cut at {} MiB", names.join(" and "), self.cap >> 20))
    }
}

/// Everything one object says.
#[derive(Debug)]
pub struct Record<'a> {
    /// The host as given (an alias, a name, `host:port`).
    pub host: &'a str,
    /// Where it was connected to (`host:port`).
    pub address: &'a str,
    /// How the command ended, if it did.
    pub status: Option<ExitStatus>,
    /// Its output, if it ran.
    pub output: Option<&'a Captured>,
    /// From the start of the connection to the end.
    pub duration: Duration,
    /// Why it did not run or end, if so.
    pub error: Option<String>,
}

impl Record<'_> {
    /// The object.
    pub fn to_json(&self) -> Value {
        let (exit, signal) = match self.status {
            Some(ExitStatus::Code(code)) => (Value::from(code), Value::Null),
            Some(ExitStatus::Signal(n)) => (Value::Null, Value::from(n)),
            None => (Value::Null, Value::Null),
        };
        let streams = self
            .output
            .map(|out| (out.stdout.encoded(), out.stderr.encoded()));
        let ((stdout, stdout_encoding), (stderr, stderr_encoding)) =
            streams.unwrap_or(((Value::Null, Value::Null), (Value::Null, Value::Null)));
        let errors: Vec<String> = self
            .error
            .iter()
            .cloned()
            .chain(self.output.and_then(Captured::cut))
            .collect();
        let error = if errors.is_empty() {
            Value::Null
        } else {
            errors.join("; ").into()
        };
        json!({
            "host": self.host,
            "address": self.address,
            "exit": exit,
            "signal": signal,
            "stdout": stdout,
            "stdout_encoding": stdout_encoding,
            "stderr": stderr,
            "stderr_encoding": stderr_encoding,
            "duration_ms": u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
            "error": error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(status: Option<ExitStatus>, output: Option<&'a Captured>) -> Record<'a> {
        Record {
            host: "web1",
            address: "10.0.0.5:7022",
            status,
            output,
            duration: Duration::from_millis(1500),
            error: None,
        }
    }

    #[test]
    fn every_member_is_present_and_null_where_it_does_not_apply() {
        let mut out = Captured::default();
        out.take(Stream::Stdout, b"hi\n");
        let ran = record(Some(ExitStatus::Code(3)), Some(&out)).to_json();
        assert_eq!(
            ran,
            json!({"host": "web1", "address": "10.0.0.5:7022", "exit": 3, "signal": null,
                   "stdout": "hi\n", "stdout_encoding": "utf-8", "stderr": "",
                   "stderr_encoding": "utf-8", "duration_ms": 1500, "error": null})
        );
        let killed = record(Some(ExitStatus::Signal(9)), Some(&out)).to_json();
        assert_eq!(
            (&killed["exit"], &killed["signal"]),
            (&Value::Null, &json!(9))
        );
        let mut unreachable = record(None, None);
        unreachable.error = Some("connection refused".into());
        let unreachable = unreachable.to_json();
        for member in [
            "exit",
            "signal",
            "stdout",
            "stdout_encoding",
            "stderr",
            "stderr_encoding",
        ] {
            assert_eq!(unreachable[member], Value::Null, "{member}");
        }
        assert_eq!(unreachable["error"], "connection refused");
        assert_eq!(unreachable.as_object().map(|o| o.len()), Some(10));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_base64() {
        let mut out = Captured::default();
        out.take(Stream::Stderr, b"\xff\xfe");
        out.take(Stream::Stdout, "é".as_bytes());
        let json = record(Some(ExitStatus::Code(0)), Some(&out)).to_json();
        assert_eq!(json["stderr"], "//4=");
        assert_eq!(json["stderr_encoding"], "base64");
        assert_eq!(json["stdout"], "é");
        assert_eq!(json["stdout_encoding"], "utf-8");
    }

    #[test]
    fn a_stream_past_its_cap_is_cut_and_said_so() {
        let mut out = Captured::with_cap(4 << 20);
        let chunk = vec![b'a'; 3 << 20];
        out.take(Stream::Stdout, &chunk);
        out.take(Stream::Stdout, &chunk);
        out.take(Stream::Stderr, b"fine");
        assert_eq!(out.stdout.bytes.len(), 4 << 20);
        let mut cut = record(Some(ExitStatus::Code(0)), Some(&out));
        assert_eq!(cut.to_json()["error"], "stdout cut at 4 MiB");
        cut.error = Some("timed out after 5 s".into());
        assert_eq!(
            cut.to_json()["error"],
            "timed out after 5 s; stdout cut at 4 MiB"
        );
        out.take(Stream::Stderr, &chunk);
        out.take(Stream::Stderr, &chunk);
        let both = record(None, Some(&out)).to_json();
        assert_eq!(both["error"], "stdout and stderr cut at 4 MiB");
    }
}
