//! The audit log's one writer: the task that owns the file and the chain. It takes the
//! records the handle queued, writes whatever is waiting as one group and fsyncs it once
//! (group commit), then answers every sender that waits for durability. It seals the chain
//! with signed checkpoints (every N events, at least every interval while events flow, before
//! each rotation, and after `stop`), rotates the file by size (`PATH` → `PATH.1` →
//! `PATH.2` ..., the chain continuing in the new file), copies each line to syslog, and
//! writes the summary of failed authentications that `failures` counts. After any write
//! error it refuses everything. It never decides what is recorded (the handle does) and never
//! rewrites a line once written.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::RngExt as _;
use rsa::PrivateKey;
use tokio::sync::{mpsc, oneshot};

use super::failures::FailureTally;
use super::resume::resume_point;
use crate::audit::chain::{AuditChain, ChainError, EventKind, Record, RefusedKey};
use crate::audit::syslog::{SyslogSender, SyslogTarget};
use crate::audit::{AuditError, numbered};
use crate::keys::public::fingerprint;

/// Most records written as one group.
const MAX_GROUP: usize = 256;

/// Audit log knobs, with defaults from [`AuditOptions::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// Rotate when the file reaches this size (default 64 MiB).
    pub max_bytes: u64,
    /// Checkpoint after this many events (default 100).
    pub checkpoint_every: u64,
    /// Checkpoint at least this often while events flow (default one minute).
    pub checkpoint_interval: Duration,
    /// Write at most one summary of failed authentications this often, and only when there
    /// were some (default one minute).
    pub failure_interval: Duration,
    /// Also send every line to syslog.
    pub syslog: Option<SyslogTarget>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            checkpoint_every: 100,
            checkpoint_interval: Duration::from_secs(60),
            failure_interval: Duration::from_secs(60),
            syslog: None,
        }
    }
}

/// An answer the writer owes a sender that waits.
type Ack = oneshot::Sender<Result<(), AuditError>>;

/// What the handle asks of the writer task.
#[allow(
    clippy::large_enum_variant,
    reason = "most jobs are writes: boxing them would allocate for every event to save queue space only on failures"
)]
pub(super) enum Job {
    /// Something to write.
    Write(Write),
    /// Count one failed authentication from this source (written only in a summary).
    AuthFailure(String, Option<RefusedKey>),
}

/// What the writer task writes, in order, as one group.
pub(super) enum Write {
    /// Write this record with the next group.
    Append(Record),
    /// Write this record and answer once it is fsynced.
    Durable(Record, Ack),
    /// Write `stop` and a final checkpoint, fsync, answer, and end the task.
    Close(Ack),
}

/// The writer task: takes whatever jobs are waiting (up to [`MAX_GROUP`]), counts the failed
/// authentications among them, writes the rest as one group off the runtime, and wakes up on
/// its own when a checkpoint or a failure summary falls due. Its clock is tokio's.
pub(super) async fn write_jobs(mut sink: Sink, mut jobs: mpsc::Receiver<Job>) {
    let mut failures = FailureTally::new(sink.options.failure_interval);
    let mut received = Vec::with_capacity(MAX_GROUP);
    loop {
        let due = earliest(sink.due(), failures.due()).map(tokio::time::Instant::from_std);
        let closed = tokio::select! {
            count = jobs.recv_many(&mut received, MAX_GROUP) => count == 0,
            () = sleep_until(due), if due.is_some() => false,
        };
        if closed {
            return;
        }
        let now = tokio::time::Instant::now().into_std();
        let work = writes(std::mem::take(&mut received), &mut failures, now);
        if work.is_empty() && sink.due().is_none_or(|due| due > now) {
            continue;
        }
        let written = tokio::task::spawn_blocking(move || {
            let closing = sink.write_group(work, now);
            (sink, closing)
        })
        .await;
        match written {
            Ok((back, false)) => sink = back,
            Ok((_, true)) => return,
            Err(err) => {
                tracing::error!("audit writer stopped: {err}");
                return;
            }
        }
    }
}

/// What `jobs` ask to write, in order, with the failed authentications among them counted in
/// `failures` instead: their summary goes just before a `Close`, or last when it is due.
fn writes(jobs: Vec<Job>, failures: &mut FailureTally, now: Instant) -> Vec<Write> {
    let mut work = Vec::with_capacity(jobs.len() + 1);
    for job in jobs {
        match job {
            Job::AuthFailure(source, refused) => failures.add(&source, refused, now),
            Job::Write(close @ Write::Close(_)) => {
                work.extend(failures.summary(now).map(Write::Append));
                work.push(close);
            }
            Job::Write(write) => work.push(write),
        }
    }
    if failures.due().is_some_and(|due| due <= now) {
        work.extend(failures.summary(now).map(Write::Append));
    }
    work
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until(due: Option<tokio::time::Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}

/// The file, the chain and the checkpoint state; all blocking I/O happens here. The time is
/// passed in.
pub(super) struct Sink {
    path: PathBuf,
    file: File,
    size: u64,
    chain: AuditChain,
    host: PrivateKey,
    host_fingerprint: String,
    options: AuditOptions,
    syslog: Option<SyslogSender>,
    /// Events since the last checkpoint, and when the first of them was written.
    unsealed: u64,
    unsealed_since: Option<Instant>,
    /// Set by the first failed write; everything is refused afterwards.
    broken: Option<String>,
}

impl Sink {
    /// Continues (or starts) the chain at `path`, opens the file for appending, and writes and
    /// fsyncs a `start` event at `now`.
    pub(super) fn open(
        path: PathBuf,
        options: AuditOptions,
        host: PrivateKey,
        now: Instant,
    ) -> Result<Self, AuditError> {
        let chain = match resume_point(&path)? {
            Some(chain) => chain,
            None => AuditChain::new(rand::rng().random()),
        };
        let file = open_append(&path)?;
        let size = file.metadata().map_err(AuditError::io(&path))?.len();
        let syslog = options
            .syslog
            .as_ref()
            .map(SyslogSender::open)
            .transpose()?;
        let host_fingerprint = fingerprint(host.as_public_key());
        let mut sink = Self {
            path,
            file,
            size,
            chain,
            host,
            host_fingerprint,
            options,
            syslog,
            unsealed: 0,
            unsealed_since: None,
            broken: None,
        };
        let mut start = Record::new(EventKind::Start);
        start.key = Some(sink.host_fingerprint.clone());
        sink.append(start, now)?;
        sink.sync()?;
        Ok(sink)
    }

    /// When the writer must run without a job: when the oldest unsealed event has waited the
    /// checkpoint interval.
    pub(super) fn due(&self) -> Option<Instant> {
        self.unsealed_since
            .filter(|_| self.broken.is_none())
            .and_then(|since| since.checked_add(self.options.checkpoint_interval))
    }

    /// Writes a group at `now`, fsyncs once, then answers every waiting sender. True after a
    /// Close.
    pub(super) fn write_group(&mut self, jobs: Vec<Write>, now: Instant) -> bool {
        let mut acks = Vec::new();
        let mut closing = false;
        for job in jobs {
            match job {
                Write::Append(record) => self.guard(|sink| sink.append(record, now)),
                Write::Durable(record, ack) => {
                    self.guard(|sink| sink.append(record, now));
                    acks.push(ack);
                }
                Write::Close(ack) => {
                    self.guard(|sink| {
                        sink.append(Record::new(EventKind::Stop), now)?;
                        sink.checkpoint()
                    });
                    acks.push(ack);
                    closing = true;
                }
            }
        }
        if self.due().is_some_and(|due| due <= now) {
            self.guard(Self::checkpoint);
        }
        self.guard(Self::sync);
        for ack in acks {
            let _ = ack.send(self.refusal().map_or(Ok(()), Err));
        }
        closing
    }

    /// Runs `step` unless the log is broken; a failure breaks it (and is logged once).
    fn guard(&mut self, step: impl FnOnce(&mut Self) -> Result<(), AuditError>) {
        if self.broken.is_some() {
            return;
        }
        if let Err(err) = step(self) {
            tracing::error!("audit log: {err}; refusing commands until the server restarts");
            self.broken = Some(err.to_string());
        }
    }

    fn refusal(&self) -> Option<AuditError> {
        self.broken.as_ref().map(|reason| AuditError::Broken {
            path: self.path.clone(),
            reason: reason.clone(),
        })
    }

    fn append(&mut self, record: Record, now: Instant) -> Result<(), AuditError> {
        let kind = record.event;
        let time = timestamp_now();
        let line = self
            .chain
            .seal(record, time.clone())
            .map_err(|source| self.chain_error(source))?;
        self.write_line(kind, &time, &line)?;
        self.unsealed += 1;
        self.unsealed_since.get_or_insert(now);
        if self.unsealed >= self.options.checkpoint_every || self.size >= self.options.max_bytes {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Seals everything so far with a signed checkpoint; rotates if the file is full.
    fn checkpoint(&mut self) -> Result<(), AuditError> {
        let time = timestamp_now();
        let line = self
            .chain
            .seal_checkpoint(time.clone(), &self.host, &self.host_fingerprint)
            .map_err(|source| self.chain_error(source))?;
        self.write_line(EventKind::Checkpoint, &time, &line)?;
        self.unsealed = 0;
        self.unsealed_since = None;
        if self.size >= self.options.max_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    fn write_line(&mut self, kind: EventKind, time: &str, line: &str) -> Result<(), AuditError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .map_err(AuditError::io(&self.path))?;
        self.size += bytes.len() as u64;
        if let Some(syslog) = &mut self.syslog {
            syslog.send(kind, time, line);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(AuditError::io(&self.path))
    }

    /// `PATH.n` → `PATH.n+1` for every n (oldest first), `PATH` → `PATH.1`, then a new `PATH`.
    /// The old file is fsynced first and ends with a checkpoint; the directory is fsynced after.
    fn rotate(&mut self) -> Result<(), AuditError> {
        self.sync()?;
        let count = (1u32..)
            .take_while(|n| numbered(&self.path, *n).exists())
            .count();
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        for n in (1..=count).rev() {
            let from = numbered(&self.path, n);
            std::fs::rename(&from, numbered(&self.path, n.saturating_add(1)))
                .map_err(AuditError::io(&from))?;
        }
        std::fs::rename(&self.path, numbered(&self.path, 1)).map_err(AuditError::io(&self.path))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        sync_parent(&self.path)?;
        tracing::info!(path = %self.path.display(), "audit log rotated");
        Ok(())
    }

    fn chain_error(&self, source: ChainError) -> AuditError {
        AuditError::Chain {
            path: self.path.clone(),
            source,
        }
    }
}

/// The current time as the log writes it: RFC 3339 UTC with milliseconds (the wall clock:
/// only the `time` member comes from it).
fn timestamp_now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// `at` as the log writes it: `YYYY-MM-DDTHH:MM:SS.mmmZ`, milliseconds truncated (not
/// rounded), four-digit year, `Z` for UTC. A year outside 0000-9999 has no such form; it
/// falls back to `time`'s own display rather than failing the write.
fn timestamp(at: time::OffsetDateTime) -> String {
    use time::format_description::well_known::Iso8601;
    use time::format_description::well_known::iso8601::{Config, EncodedConfig, TimePrecision};

    const LOG_TIME: EncodedConfig = Config::DEFAULT
        .set_year_is_six_digits(false)
        .set_time_precision(TimePrecision::Second {
            decimal_digits: std::num::NonZeroU8::new(3),
        })
        .encode();
    let utc = at.to_offset(time::UtcOffset::UTC);
    utc.format(&Iso8601::<LOG_TIME>)
        .unwrap_or_else(|_| utc.to_string())
}

/// Opens `path` for appending, creating it with mode 0600.
fn open_append(path: &Path) -> Result<File, AuditError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(AuditError::io(path))
}

fn sync_parent(path: &Path) -> Result<(), AuditError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(AuditError::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(source: &str) -> Job {
        Job::AuthFailure(source.to_owned(), None)
    }

    fn kinds(writes: &[Write]) -> Vec<&'static str> {
        writes
            .iter()
            .map(|write| match write {
                Write::Append(record) | Write::Durable(record, _) => record.event.as_str(),
                Write::Close(_) => "close",
            })
            .collect()
    }

    #[test]
    fn failed_authentications_are_counted_not_written() {
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        let mut tally = FailureTally::new(minute);
        let jobs = vec![failure("10.0.0.1"), failure("10.0.0.2")];
        assert!(writes(jobs, &mut tally, start).is_empty());
        let exit = Job::Write(Write::Append(Record::new(EventKind::Exit)));
        let work = writes(vec![failure("10.0.0.1"), exit], &mut tally, start);
        assert_eq!(kinds(&work), ["exit"]);
        // Due: the summary goes last.
        let exit = Job::Write(Write::Append(Record::new(EventKind::Exit)));
        let work = writes(vec![exit], &mut tally, start + minute);
        assert_eq!(kinds(&work), ["exit", "auth_fail"]);
        // At close, what is left goes just before the close, whether due or not.
        let (ack, _) = oneshot::channel();
        let jobs = vec![failure("10.0.0.3"), Job::Write(Write::Close(ack))];
        let work = writes(jobs, &mut tally, start + minute);
        assert_eq!(kinds(&work), ["auth_fail", "close"]);
        assert_eq!(tally.due(), None);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_truncated_milliseconds() {
        let at = time::Date::from_calendar_date(2026, time::Month::March, 7)
            .unwrap()
            .with_hms_nano(4, 5, 6, 123_999_999)
            .unwrap()
            .assume_utc();
        assert_eq!(timestamp(at), "2026-03-07T04:05:06.123Z");
        let midnight = time::OffsetDateTime::UNIX_EPOCH;
        assert_eq!(timestamp(midnight), "1970-01-01T00:00:00.000Z");
        let east = at.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(timestamp(east), "2026-03-07T04:05:06.123Z");
        assert!(timestamp_now().ends_with('Z') && timestamp_now().len() == 24);
    }
}
