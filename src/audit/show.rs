//! `seashell audit show`: the log for people. A table with one row per command (joined with
//! its exit status and duration) and per notable event (server start and stop, summaries of
//! failed authentications, policy refusals, transfers, events the log lost), or with
//! `--json` the matching events as written. Filters: `--key` (a key fingerprint, also among
//! a failure summary's refused keys), `--since` (a time) and `--grep` (text in the command,
//! name, peer or transferred path, or in a failure summary's sources and refused names). This only reads and
//! prints; it does not check the chain (that is `verify`), and it escapes control characters
//! and bidirectional overrides so that a logged command (or a key's comment) can neither drive
//! the reader's terminal nor show itself as something else.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Write};
use std::path::PathBuf;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::chain::{Event, EventKind, Record};
use super::{AuditError, rotated_set};
use crate::shown::shown;

/// What `seashell audit show` was asked.
#[derive(Debug, Clone, Default)]
pub struct ShowOptions {
    /// The log (a single file stands for its rotated set), or several files oldest first.
    pub files: Vec<PathBuf>,
    /// Only events of this key fingerprint.
    pub key: Option<String>,
    /// Only events at or after this time (RFC 3339, or a date for midnight UTC).
    pub since: Option<String>,
    /// Only events whose command, name, peer or transferred path contains this text.
    pub grep: Option<String>,
    /// Print the matching events as JSON lines instead of a table.
    pub json: bool,
}

/// Prints the log as `options` ask, to `out`.
pub fn run(options: &ShowOptions, out: &mut dyn Write) -> Result<(), AuditError> {
    let filter = Filter::new(options)?;
    let files = match options.files.as_slice() {
        [single] => rotated_set(single),
        many => many.to_vec(),
    };
    let events = read_events(&files)?;
    let stdout = |err| AuditError::Io {
        path: PathBuf::from("<stdout>"),
        source: err,
    };
    if options.json {
        for (_, line) in events.iter().filter(|(e, _)| filter.matches(e)) {
            writeln!(out, "{line}").map_err(stdout)?;
        }
        return Ok(());
    }
    let rows: Vec<Row> = rows(&events)
        .into_iter()
        .filter(|row| filter.matches(row.event))
        .collect();
    write_table(&rows, out).map_err(stdout)
}

/// Every event of `files` with its line as written. An incomplete last line (a crash while
/// writing) is skipped; any other line that is not an event is an error naming it.
fn read_events(files: &[PathBuf]) -> Result<Vec<(Event, String)>, AuditError> {
    let mut events = Vec::new();
    for path in files {
        let file = File::open(path).map_err(AuditError::io(path))?;
        let mut reader = BufReader::new(file);
        let mut number = 0u64;
        loop {
            let mut line = String::new();
            let read = reader.read_line(&mut line).map_err(AuditError::io(path))?;
            if read == 0 {
                break;
            }
            number += 1;
            let Some(text) = line.strip_suffix('\n') else {
                break;
            };
            let event = Event::parse(text.as_bytes()).map_err(|err| AuditError::BadLine {
                path: path.clone(),
                line: number,
                detail: format!("not an audit event ({err}); run `seashell audit verify`"),
            })?;
            events.push((event, text.to_owned()));
        }
    }
    Ok(events)
}

struct Filter<'a> {
    key: Option<&'a str>,
    since: Option<OffsetDateTime>,
    grep: Option<&'a str>,
}

impl<'a> Filter<'a> {
    fn new(options: &'a ShowOptions) -> Result<Self, AuditError> {
        Ok(Self {
            key: options.key.as_deref(),
            since: options.since.as_deref().map(parse_since).transpose()?,
            grep: options.grep.as_deref(),
        })
    }

    fn matches(&self, event: &Event) -> bool {
        let record = &event.record;
        let refused = || record.sources.iter().flatten().flat_map(|s| &s.refused);
        let key = self.key.is_none_or(|key| {
            record.key.as_deref() == Some(key) || refused().any(|refused| refused.key == key)
        });
        let since = self.since.is_none_or(|since| {
            OffsetDateTime::parse(&event.time, &Rfc3339).is_ok_and(|time| time >= since)
        });
        let grep = self.grep.is_none_or(|text| {
            [&record.command, &record.name, &record.peer, &record.path]
                .iter()
                .any(|field| field.as_deref().is_some_and(|f| f.contains(text)))
                || record
                    .sources
                    .iter()
                    .flatten()
                    .any(|s| s.source.contains(text))
                || refused().any(|refused| refused.name.contains(text))
        });
        key && since && grep
    }
}

/// RFC 3339, or `YYYY-MM-DD` for midnight UTC that day.
fn parse_since(text: &str) -> Result<OffsetDateTime, AuditError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339))
        .map_err(|_| AuditError::BadTime(text.to_owned()))
}

/// One row of the table: a command and its end, or a notable event.
struct Row<'a> {
    event: &'a Event,
    exit: Option<i32>,
    duration_ms: Option<u64>,
}

/// The rows of the table, in log order; each `exit` completes the last command of its session.
fn rows(events: &[(Event, String)]) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = Vec::new();
    let mut open: HashMap<&str, usize> = HashMap::new();
    for (event, _) in events {
        let record = &event.record;
        match record.event {
            EventKind::Command => {
                if let Some(session) = record.session.as_deref() {
                    open.insert(session, rows.len());
                }
                rows.push(Row {
                    event,
                    exit: None,
                    duration_ms: None,
                });
            }
            EventKind::Exit => {
                let row = record
                    .session
                    .as_deref()
                    .and_then(|session| open.remove(session))
                    .and_then(|index| rows.get_mut(index));
                if let Some(row) = row {
                    row.exit = record.exit;
                    row.duration_ms = record.duration_ms;
                }
            }
            EventKind::AuthFail
            | EventKind::Denied
            | EventKind::Transfer
            | EventKind::Start
            | EventKind::Stop
            | EventKind::Lost => rows.push(Row {
                event,
                exit: record.exit,
                duration_ms: record.duration_ms,
            }),
            EventKind::Connect
            | EventKind::AuthOk
            | EventKind::Disconnect
            | EventKind::Checkpoint
            | EventKind::Rotate => {}
        }
    }
    rows
}

/// The cells of a row: time, host, name, exit, duration, command.
fn cells(row: &Row<'_>) -> [String; 6] {
    let record = &row.event.record;
    let time = row
        .event
        .time
        .get(..19)
        .unwrap_or(&row.event.time)
        .replacen('T', " ", 1);
    let command = match record.event {
        EventKind::Command => record.command.clone().unwrap_or_default(),
        EventKind::AuthFail => match record.failures {
            Some(failures) => failure_summary(record, failures),
            None => format!(
                "[auth_fail: key {} refused]",
                record.key.as_deref().unwrap_or("?")
            ),
        },
        EventKind::Lost => format!(
            "[lost: {} event(s) not written in {} (commands among them refused): {}]",
            record.lost.unwrap_or_default(),
            duration(record.duration_ms.unwrap_or_default()),
            record.rule.as_deref().unwrap_or("?")
        ),
        other if record.direction.is_some() || record.path.is_some() => transfer(other, record),
        other => match &record.command {
            Some(command) => format!("[{}] {command}", other.as_str()),
            None => format!("[{}]", other.as_str()),
        },
    };
    let dash = || "-".to_owned();
    [
        time,
        record.peer.clone().unwrap_or_else(dash),
        record.name.clone().unwrap_or_else(dash),
        row.exit.map_or_else(dash, |code| code.to_string()),
        row.duration_ms.map_or_else(dash, duration),
        command,
    ]
    .map(|cell| shown(&cell))
}

/// A transfer event from whatever members it has, e.g.
/// `[transfer: upload /srv/a.bin, 100000 bytes, sha256 1a2b3c4d5e6f]` or
/// `[transfer: download /srv/b, 5 bytes, failed: the session ended before the transfer did]`;
/// a transfer's start (no hash, no failure yet) ends in `starting`.
fn transfer(kind: EventKind, record: &Record) -> String {
    let mut parts = Vec::new();
    let what = [record.direction.as_deref(), record.path.as_deref()];
    let what: Vec<&str> = what.into_iter().flatten().collect();
    if !what.is_empty() {
        parts.push(what.join(" "));
    }
    if let Some(size) = record.bytes_in.or(record.bytes_out) {
        parts.push(format!("{size} bytes"));
    }
    if let Some(sha256) = &record.sha256 {
        parts.push(format!("sha256 {}", sha256.get(..12).unwrap_or(sha256)));
    }
    if let Some(rule) = &record.rule {
        parts.push(format!("failed: {rule}"));
    }
    if kind == EventKind::Transfer && record.sha256.is_none() && record.rule.is_none() {
        // Written before the first byte moved; its end is a later row.
        parts.push("starting".to_owned());
    }
    format!("[{}: {}]", kind.as_str(), parts.join(", "))
}

/// `[auth_fail: 37 failures in 1m00s from 2 sources: 10.0.0.9 ×30 (alice SHA256:…: from=: …),
/// 10.0.0.7 ×5, and 2 from other sources]`.
fn failure_summary(record: &Record, failures: u64) -> String {
    let sources = record.sources.as_deref().unwrap_or_default();
    let unlisted = record.unlisted.unwrap_or_default();
    let from = match (sources.len(), unlisted) {
        (1, 0) => "1 source".to_owned(),
        (n, 0) => format!("{n} sources"),
        (n, _) => format!("more than {n} sources"),
    };
    let mut listed: Vec<String> = sources
        .iter()
        .map(|source| {
            let refused: Vec<String> = source
                .refused
                .iter()
                .map(|key| format!("{} {}: {}", key.name, key.key, key.rule))
                .collect();
            match refused.as_slice() {
                [] => format!("{} ×{}", source.source, source.failures),
                _ => format!(
                    "{} ×{} ({})",
                    source.source,
                    source.failures,
                    refused.join("; ")
                ),
            }
        })
        .collect();
    if unlisted > 0 {
        listed.push(format!("and {unlisted} from other sources"));
    }
    format!(
        "[auth_fail: {failures} failure{} in {} from {from}: {}]",
        if failures == 1 { "" } else { "s" },
        duration(record.duration_ms.unwrap_or_default()),
        listed.join(", ")
    )
}

fn write_table(rows: &[Row<'_>], out: &mut dyn Write) -> std::io::Result<()> {
    let header = ["TIME", "HOST", "NAME", "EXIT", "DURATION", "COMMAND"].map(str::to_owned);
    let body: Vec<[String; 6]> = rows.iter().map(cells).collect();
    let mut widths = [0usize; 5];
    for cells in std::iter::once(&header).chain(&body) {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for cells in std::iter::once(&header).chain(&body) {
        let mut line = String::new();
        for (width, cell) in widths.iter().zip(cells) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        if let Some(command) = cells.last() {
            line.push_str(command);
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `12ms`, `1.234s`, `2m05s`, `1h02m`.
fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}.{:03}s", ms / 1000, ms % 1000),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::{FailureSource, RefusedKey};

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(12), "12ms");
        assert_eq!(duration(1_234), "1.234s");
        assert_eq!(duration(125_000), "2m05s");
        assert_eq!(duration(3_720_000), "1h02m");
    }

    /// An event at seq `seq`, 2025-06-01 12:00 UTC.
    fn at(seq: u64, record: Record) -> Event {
        Event {
            time: "2025-06-01T12:00:00.000Z".into(),
            seq,
            record,
            genesis: None,
            prev: String::new(),
            sig: None,
        }
    }

    /// The COMMAND cell `show` prints for `event` alone.
    fn command_cell(event: &Event) -> String {
        let row = Row {
            event,
            exit: None,
            duration_ms: None,
        };
        let [.., command] = cells(&row);
        command
    }

    #[test]
    fn a_failure_summary_is_one_readable_line() {
        let key = |name: &str, rule: &str| RefusedKey {
            name: name.into(),
            key: format!("SHA256:{name}"),
            rule: rule.into(),
            reason: None,
            cert: None,
        };
        let mut record = Record::new(EventKind::AuthFail);
        record.duration_ms = Some(60_000);
        record.failures = Some(40);
        record.sources = Some(vec![
            FailureSource {
                source: "10.0.0.9".into(),
                failures: 30,
                refused: vec![
                    key("alice", "from=: 10.0.0.9 is not allowed"),
                    key("evil\n\u{1b}[2J", "expires=: expired"),
                ],
            },
            FailureSource {
                source: "2001:db8:1:2::/64".into(),
                failures: 7,
                refused: Vec::new(),
            },
        ]);
        record.unlisted = Some(3);
        let event = at(9, record);
        let row = Row {
            event: &event,
            exit: None,
            duration_ms: event.record.duration_ms,
        };
        let [time, host, name, exit, took, command] = cells(&row);
        assert_eq!(
            [time, host, name, exit, took],
            ["2025-06-01 12:00:00", "-", "-", "-", "1m00s"]
        );
        assert_eq!(
            command,
            "[auth_fail: 40 failures in 1m00s from more than 2 sources: 10.0.0.9 ×30 (alice \
             SHA256:alice: from=: 10.0.0.9 is not allowed; evil\\n\\u{1b}[2J SHA256:evil\\n\\u{1b}[2J: \
             expires=: expired), 2001:db8:1:2::/64 ×7, and 3 from other sources]"
        );
        let mut old = Record::new(EventKind::AuthFail);
        old.key = Some("SHA256:old".into());
        let old = Event {
            record: old,
            ..event.clone()
        };
        assert_eq!(command_cell(&old), "[auth_fail: key SHA256:old refused]");
    }

    #[test]
    fn a_lost_event_says_what_was_lost_and_why() {
        let mut record = Record::new(EventKind::Lost);
        record.lost = Some(3);
        record.duration_ms = Some(2_000);
        record.rule = Some("/var/log/audit.log: No space left on device (os error 28)".into());
        let event = at(9, record);
        let row = Row {
            event: &event,
            exit: None,
            duration_ms: event.record.duration_ms,
        };
        let cells = cells(&row);
        assert_eq!(cells[4], "2.000s");
        assert_eq!(
            cells[5],
            "[lost: 3 event(s) not written in 2.000s (commands among them refused): \
             /var/log/audit.log: No space left on device (os error 28)]"
        );
    }

    fn transfer_event(outcome: Result<&str, &str>) -> Event {
        let mut record = Record::new(EventKind::Transfer);
        record.peer = Some("127.0.0.1:5000".into());
        record.direction = Some("upload".into());
        record.path = Some("/srv/data/report.pdf".into());
        record.bytes_in = Some(100_000);
        match outcome {
            Ok(sha256) => record.sha256 = Some(sha256.into()),
            Err(rule) => record.rule = Some(rule.into()),
        }
        at(5, record)
    }

    #[test]
    fn a_transfer_row_shows_direction_path_size_and_a_short_hash() {
        let done = transfer_event(Ok(&"1a2b3c4d5e6f7a8b".repeat(4)));
        assert_eq!(
            command_cell(&done),
            "[transfer: upload /srv/data/report.pdf, 100000 bytes, sha256 1a2b3c4d5e6f]"
        );
        let cut = transfer_event(Err("the session ended before the transfer did"));
        assert_eq!(
            command_cell(&cut),
            "[transfer: upload /srv/data/report.pdf, 100000 bytes, failed: the session ended \
             before the transfer did]"
        );
        // A path is shown escaped like any other text.
        let mut odd = transfer_event(Ok("ab"));
        odd.record.path = Some("/tmp/\u{1b}[2J".into());
        assert_eq!(
            command_cell(&odd),
            "[transfer: upload /tmp/\\u{1b}[2J, 100000 bytes, sha256 ab]"
        );
        // A start: no hash and no failure yet.
        let mut start = transfer_event(Ok("ab"));
        start.record.sha256 = None;
        assert_eq!(
            command_cell(&start),
            "[transfer: upload /srv/data/report.pdf, 100000 bytes, starting]"
        );
    }

    #[test]
    fn grep_finds_a_transferred_path() {
        let event = transfer_event(Ok("ab"));
        let options = ShowOptions {
            grep: Some("report.pdf".into()),
            ..ShowOptions::default()
        };
        assert!(Filter::new(&options).unwrap().matches(&event));
        let options = ShowOptions {
            grep: Some("other.pdf".into()),
            ..ShowOptions::default()
        };
        assert!(!Filter::new(&options).unwrap().matches(&event));
    }

    #[test]
    fn key_and_grep_reach_into_failure_summaries() {
        let mut record = Record::new(EventKind::AuthFail);
        record.failures = Some(1);
        record.sources = Some(vec![FailureSource {
            source: "10.0.0.9".into(),
            failures: 1,
            refused: vec![RefusedKey {
                name: "alice".into(),
                key: "SHA256:alice".into(),
                rule: "from=".into(),
                reason: None,
                cert: None,
            }],
        }]);
        let event = at(2, record);
        let matches = |key: Option<&str>, grep: Option<&str>| {
            let options = ShowOptions {
                key: key.map(str::to_owned),
                grep: grep.map(str::to_owned),
                ..ShowOptions::default()
            };
            Filter::new(&options).unwrap().matches(&event)
        };
        assert!(matches(Some("SHA256:alice"), None));
        assert!(!matches(Some("SHA256:bob"), None));
        assert!(matches(None, Some("10.0.0")));
        assert!(matches(None, Some("ali")));
        assert!(!matches(None, Some("bob")));
    }

    #[test]
    fn since_takes_a_time_or_a_date() {
        assert_eq!(
            parse_since("2025-06-01").unwrap(),
            parse_since("2025-06-01T00:00:00Z").unwrap()
        );
        assert!(parse_since("2025-06-01T12:00:00+02:00").is_ok());
        assert!(matches!(
            parse_since("yesterday"),
            Err(AuditError::BadTime(_))
        ));
    }
}
