//! The audit log's one writer: the task that owns the file and the chain. It takes the
//! records the handle queued, writes whatever is waiting as one group and fsyncs it once
//! (group commit), then answers every sender that waits for durability. It seals the chain
//! with signed checkpoints (every N events, at least every interval while events flow, before
//! each rotation, and after `stop`), rotates the file by size (`PATH` → `PATH.1` →
//! `PATH.2` ..., the chain continuing in the new file), copies each line to syslog once it is
//! synced, and writes the summary of failed authentications that `failures` counts. After a
//! write error it refuses everything, counting what it refuses, and retries every
//! [`RETRY_EVERY`]: it cuts the file back to what was last synced, continues the chain from
//! there with a `lost` event, and goes on. It never decides what is recorded (the handle
//! does) and never changes a line once synced.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::crypto::PrivateKey;
use tokio::sync::{mpsc, oneshot};

use super::failures::FailureTally;
use super::millis;
use super::resume::{resume_point, rotate_record};
use crate::audit::chain::{AuditChain, ChainError, EventKind, Record, RefusedKey, Seal};
use crate::audit::syslog::{SyslogSender, SyslogTarget};
use crate::audit::{AuditError, numbered};
use crate::keys::public::fingerprint;

/// Most records written as one group.
const MAX_GROUP: usize = 256;

/// How often a log that cannot write tries again.
pub(super) const RETRY_EVERY: Duration = Duration::from_secs(2);

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
    /// Write `stop` and the final seal, fsync, answer, and end the task.
    Close(Ack),
}

/// The writer task: takes whatever jobs are waiting (up to [`MAX_GROUP`]), counts the failed
/// authentications among them, writes the rest as one group off the runtime, and wakes up on
/// its own when a checkpoint, a failure summary or a retry falls due. Its clock is tokio's.
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

/// Why the log is not writing, since when, and what it has refused.
#[derive(Debug)]
struct Outage {
    /// The first error.
    reason: String,
    /// When it came.
    since: Instant,
    /// Events not written: those of the failed group, and every one refused since.
    lost: u64,
    /// The next attempt to write again.
    retry_at: Instant,
}

/// The file, the chain and the checkpoint state; all blocking I/O happens here. The time is
/// passed in.
pub(super) struct Sink {
    path: PathBuf,
    file: File,
    size: u64,
    /// The size of `file` as of its last successful sync: what a recovery cuts it back to.
    synced_size: u64,
    /// Records written since the last successful sync (lost if the group fails).
    unsynced: u64,
    chain: AuditChain,
    host: PrivateKey,
    host_fingerprint: String,
    options: AuditOptions,
    syslog: Option<SyslogSender>,
    /// Lines written since the last sync, sent to syslog once they are synced.
    syslog_pending: Vec<(EventKind, String, String)>,
    /// Events since the last checkpoint, and when the first of them was written.
    unsealed: u64,
    unsealed_since: Option<Instant>,
    /// Set by a failed write; everything is refused until a retry succeeds.
    outage: Option<Outage>,
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
        let (chain, rotated) = match resume_point(&path)? {
            Some(resumed) => (resumed.chain, resumed.rotated),
            None => {
                let genesis = crate::crypto::random().map_err(|err| AuditError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(err),
                })?;
                (AuditChain::new(genesis), None)
            }
        };
        let file = open_append(&path)?;
        let size = file.metadata().map_err(AuditError::io(&path))?.len();
        let syslog = options
            .syslog
            .as_ref()
            .map(SyslogSender::open)
            .transpose()?;
        let host_fingerprint = fingerprint(host.public_key());
        let mut sink = Self {
            path,
            file,
            size,
            synced_size: size,
            unsynced: 0,
            chain,
            host,
            host_fingerprint,
            options,
            syslog,
            syslog_pending: Vec::new(),
            unsealed: 0,
            unsealed_since: None,
            outage: None,
        };
        if let Some(rotated) = rotated {
            sink.write_event(rotated, now)?;
        }
        let mut start = Record::new(EventKind::Start);
        start.key = Some(sink.host_fingerprint.clone());
        sink.append(start, now)?;
        sink.sync()?;
        Ok(sink)
    }

    /// When the writer must run without a job: the next retry while the log is out of order,
    /// otherwise when the oldest unsealed event has waited the checkpoint interval.
    pub(super) fn due(&self) -> Option<Instant> {
        match &self.outage {
            Some(outage) => Some(outage.retry_at),
            None => self.checkpoint_due(),
        }
    }

    fn checkpoint_due(&self) -> Option<Instant> {
        self.unsealed_since
            .filter(|_| self.outage.is_none())
            .and_then(|since| since.checked_add(self.options.checkpoint_interval))
    }

    /// Writes a group at `now`, fsyncs once, then answers every waiting sender. Out of order,
    /// it first retries if a retry is due. True after a Close.
    pub(super) fn write_group(&mut self, jobs: Vec<Write>, now: Instant) -> bool {
        self.retry(now);
        let mut acks = Vec::new();
        let mut closing = false;
        for job in jobs {
            match job {
                Write::Append(record) => self.record(record, now),
                Write::Durable(record, ack) => {
                    self.record(record, now);
                    acks.push(ack);
                }
                Write::Close(ack) => {
                    self.record(Record::new(EventKind::Stop), now);
                    self.guard(now, |sink| sink.write_checkpoint(Some(Seal::Final)));
                    acks.push(ack);
                    closing = true;
                }
            }
        }
        if self.checkpoint_due().is_some_and(|due| due <= now) {
            self.guard(now, |sink| sink.checkpoint(now));
        }
        if self.size != self.synced_size {
            self.guard(now, Self::sync);
        }
        for ack in acks {
            let _ = ack.send(self.refusal().map_or(Ok(()), Err));
        }
        closing
    }

    /// Writes `record`, or counts it as lost while the log is out of order.
    fn record(&mut self, record: Record, now: Instant) {
        match &mut self.outage {
            Some(outage) => outage.lost = outage.lost.saturating_add(1),
            None => self.guard(now, |sink| sink.append(record, now)),
        }
    }

    /// Runs `step` unless the log is out of order; a failure puts it out of order at `now`
    /// (logged once).
    fn guard(&mut self, now: Instant, step: impl FnOnce(&mut Self) -> Result<(), AuditError>) {
        if self.outage.is_some() {
            return;
        }
        if let Err(err) = step(self) {
            tracing::error!(
                "audit log: {err}; refusing commands until it can write again (retrying every \
                 {RETRY_EVERY:?})"
            );
            self.outage = Some(Outage {
                reason: err.to_string(),
                since: now,
                lost: self.unsynced,
                retry_at: retry_after(now),
            });
            self.forget_unsynced();
        }
    }

    /// Drops what was written since the last sync: it will be cut off the file.
    fn forget_unsynced(&mut self) {
        self.unsynced = 0;
        self.syslog_pending.clear();
    }

    /// Out of order and due for a retry at `now`: tries to write again; on failure, the next
    /// retry is [`RETRY_EVERY`] later.
    fn retry(&mut self, now: Instant) {
        let Some(outage) = self.outage.take_if(|outage| outage.retry_at <= now) else {
            return;
        };
        match self.write_again(&outage, now) {
            Ok(()) => {
                tracing::warn!(
                    path = %self.path.display(),
                    lost = outage.lost,
                    "audit log writes again; {} event(s) could not be written (commands among \
                     them were refused)",
                    outage.lost
                );
                if self.size >= self.options.max_bytes {
                    self.guard(now, |sink| sink.rotate(now));
                }
            }
            Err(err) => {
                tracing::debug!("audit log still out of order: {err}");
                self.forget_unsynced();
                self.outage = Some(Outage {
                    retry_at: retry_after(now),
                    ..outage
                });
            }
        }
    }

    /// Reopens `PATH`, cuts what was written to it after its last sync (half-written lines,
    /// commands that were refused), continues the chain from what is on disk, and writes a
    /// `lost` event sealed by a checkpoint, fsynced. It does not rotate: once the `lost` event
    /// is on disk, a failed rotation is a new outage, not this one again.
    fn write_again(&mut self, outage: &Outage, now: Instant) -> Result<(), AuditError> {
        let file = open_append(&self.path)?;
        let size = if same_file(&file, &self.file) {
            file.set_len(self.synced_size)
                .map_err(AuditError::io(&self.path))?;
            self.synced_size
        } else {
            // Not the file we wrote to (a rotation failed after its rename): nothing of it
            // is ours to cut.
            file.metadata().map_err(AuditError::io(&self.path))?.len()
        };
        sync_parent(&self.path)?;
        let resumed = resume_point(&self.path)?.ok_or_else(|| AuditError::BadLine {
            path: self.path.clone(),
            line: 0,
            detail: "the log's files are gone: cannot continue the audit chain".to_owned(),
        })?;
        self.file = file;
        self.size = size;
        self.synced_size = size;
        self.chain = resumed.chain;
        if let Some(rotated) = resumed.rotated {
            self.write_event(rotated, now)?;
        }
        let mut lost = Record::new(EventKind::Lost);
        lost.lost = Some(outage.lost);
        lost.duration_ms = Some(millis(now.saturating_duration_since(outage.since)));
        lost.rule = Some(outage.reason.clone());
        self.write_event(lost, now)?;
        self.write_checkpoint(None)?;
        self.sync()
    }

    fn refusal(&self) -> Option<AuditError> {
        self.outage.as_ref().map(|outage| AuditError::Broken {
            path: self.path.clone(),
            reason: outage.reason.clone(),
        })
    }

    /// Writes `record`, then a checkpoint if one is due by count or by size.
    fn append(&mut self, record: Record, now: Instant) -> Result<(), AuditError> {
        self.write_event(record, now)?;
        if self.unsealed >= self.options.checkpoint_every || self.size >= self.options.max_bytes {
            self.checkpoint(now)?;
        }
        Ok(())
    }

    /// Seals `record` into the chain and writes its line.
    fn write_event(&mut self, record: Record, now: Instant) -> Result<(), AuditError> {
        self.unsynced += 1;
        let kind = record.event;
        let time = timestamp_now();
        let line = self
            .chain
            .seal(record, time.clone())
            .map_err(|source| self.chain_error(source))?;
        self.write_line(kind, time, line)?;
        self.unsealed += 1;
        self.unsealed_since.get_or_insert(now);
        Ok(())
    }

    /// Seals everything so far with a signed checkpoint; if the file is full, that checkpoint
    /// is marked as the file's last and the file is rotated.
    fn checkpoint(&mut self, now: Instant) -> Result<(), AuditError> {
        if self.size < self.options.max_bytes {
            return self.write_checkpoint(None);
        }
        self.write_checkpoint(Some(Seal::Rotate))?;
        self.rotate(now)
    }

    /// Writes a checkpoint marked `seal` (`None`: an ordinary one).
    fn write_checkpoint(&mut self, seal: Option<Seal>) -> Result<(), AuditError> {
        let time = timestamp_now();
        let line = self
            .chain
            .seal_checkpoint(time.clone(), &self.host, &self.host_fingerprint, seal)
            .map_err(|source| self.chain_error(source))?;
        self.write_line(EventKind::Checkpoint, time, line)?;
        self.unsealed = 0;
        self.unsealed_since = None;
        Ok(())
    }

    fn write_line(
        &mut self,
        kind: EventKind,
        time: String,
        line: String,
    ) -> Result<(), AuditError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .map_err(AuditError::io(&self.path))?;
        self.size += bytes.len() as u64;
        if self.syslog.is_some() {
            self.syslog_pending.push((kind, time, line));
        }
        Ok(())
    }

    /// Fsyncs what was written; then it counts as synced and goes to syslog.
    fn sync(&mut self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(AuditError::io(&self.path))?;
        self.synced_size = self.size;
        self.unsynced = 0;
        if let Some(syslog) = &mut self.syslog {
            for (kind, time, line) in self.syslog_pending.drain(..) {
                syslog.send(kind, &time, &line);
            }
        }
        Ok(())
    }

    /// `PATH.n` → `PATH.n+1` for every n (oldest first), `PATH` → `PATH.1`, then a new `PATH`
    /// that begins with a `rotate` line naming `PATH.1`. The old file is fsynced first and
    /// ends with a checkpoint; the directory is fsynced after.
    fn rotate(&mut self, now: Instant) -> Result<(), AuditError> {
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
        self.synced_size = 0;
        sync_parent(&self.path)?;
        tracing::info!(path = %self.path.display(), "audit log rotated");
        self.write_event(rotate_record(&self.path), now)
    }

    fn chain_error(&self, source: ChainError) -> AuditError {
        AuditError::Chain {
            path: self.path.clone(),
            source,
        }
    }
}

/// When to retry after a failure at `now`.
fn retry_after(now: Instant) -> Instant {
    now.checked_add(RETRY_EVERY).unwrap_or(now)
}

/// Whether `a` and `b` are the same file (device and inode); false if either is unreadable.
fn same_file(a: &File, b: &File) -> bool {
    match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
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
    use crate::audit::chain::Event;
    use crate::audit::verify::{Verdict, verify_files};

    fn host_key() -> PrivateKey {
        crate::keys::private::from_pem(include_str!("../../../tests/fixtures/host_rsa")).unwrap()
    }

    fn command(line: &str) -> Record {
        let mut record = Record::new(EventKind::Command);
        record.command = Some(line.to_owned());
        record
    }

    /// Writes `line` as a durable command at `now`; returns the writer's answer.
    fn durable(sink: &mut Sink, line: &str, now: Instant) -> Result<(), AuditError> {
        let (ack, mut answer) = oneshot::channel();
        sink.write_group(vec![Write::Durable(command(line), ack)], now);
        answer.try_recv().unwrap()
    }

    fn events(path: &Path) -> Vec<Event> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| Event::parse(line.as_bytes()).unwrap())
            .collect()
    }

    /// Makes the sink's next write fail, as a full disk would: its file is now read-only.
    fn break_the_file(sink: &mut Sink) {
        sink.file = File::open(&sink.path).unwrap();
    }

    #[test]
    fn a_failed_write_is_retried_every_two_seconds_then_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let t0 = Instant::now();
        let mut sink = Sink::open(path.clone(), AuditOptions::default(), host_key(), t0).unwrap();
        durable(&mut sink, "before", t0).unwrap();
        assert_eq!(sink.due(), Some(t0 + Duration::from_secs(60)));

        break_the_file(&mut sink);
        let (ack, mut answer) = oneshot::channel();
        let group = vec![
            Write::Append(Record::new(EventKind::Disconnect)),
            Write::Durable(command("refused 1"), ack),
        ];
        sink.write_group(group, t0);
        let err = answer.try_recv().unwrap().unwrap_err();
        assert!(matches!(err, AuditError::Broken { .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("commands are refused until it can write again"),
            "{err}"
        );
        assert_eq!(sink.due(), Some(t0 + RETRY_EVERY));
        // Half a line reached the file before the failure (as on a full disk).
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(b"{\"time\":\"2025-"))
            .unwrap();

        // Not due yet: refused, though writing would work again by now.
        let t1 = t0 + Duration::from_secs(1);
        assert!(durable(&mut sink, "refused 2", t1).is_err());
        assert_eq!(sink.due(), Some(t0 + RETRY_EVERY));
        // Due: the log writes again before the group, and the command goes ahead.
        let t2 = t0 + RETRY_EVERY;
        durable(&mut sink, "after", t2).unwrap();
        assert_eq!(sink.due(), Some(t2 + Duration::from_secs(60)));

        let all = events(&path);
        let kinds: Vec<&str> = all.iter().map(|e| e.record.event.as_str()).collect();
        assert_eq!(kinds, ["start", "command", "lost", "checkpoint", "command"]);
        let lost = &all[2].record;
        assert_eq!(lost.lost, Some(3));
        assert_eq!(lost.duration_ms, Some(2_000));
        assert!(
            lost.rule
                .as_deref()
                .unwrap()
                .contains("audit.log: Bad file descriptor"),
            "{lost:?}"
        );
        assert_eq!(all[4].record.command.as_deref(), Some("after"));
        let host = host_key();
        assert!(matches!(
            verify_files(&[path], host.public_key()).unwrap(),
            Verdict::Unsealed { after: 1, .. }
        ));
    }

    #[test]
    fn syslog_gets_only_lines_that_were_synced() {
        let Some(disk) = super::super::tests::Tmpfs::mount("size=256k") else {
            return;
        };
        let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        collector
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let options = AuditOptions {
            syslog: Some(SyslogTarget::Udp(
                collector.local_addr().unwrap().to_string(),
            )),
            ..AuditOptions::default()
        };
        let path = disk.path().join("audit.log");
        let t0 = Instant::now();
        let mut sink = Sink::open(path.clone(), options, host_key(), t0).unwrap();
        let filler = disk.fill("filler");
        // The first line fits in what is left of the file's last page, the second does not:
        // the first is written, never synced, and cut off later.
        let (ack, _) = oneshot::channel();
        let long = format!(": {}", "x".repeat(10_000));
        let group = vec![
            Write::Append(command("written, not synced")),
            Write::Durable(command(&long), ack),
        ];
        sink.write_group(group, t0);
        assert!(sink.refusal().is_some());
        std::fs::remove_file(filler).unwrap();
        sink.write_group(Vec::new(), t0 + RETRY_EVERY);
        assert!(sink.refusal().is_none());

        let mut received = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = collector.recv(&mut buf) {
            received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let lines: Vec<&str> = received
            .iter()
            .map(|m| m.split_once(" - ").unwrap().1)
            .collect();
        let file = std::fs::read_to_string(&path).unwrap();
        assert_eq!(lines, file.lines().collect::<Vec<_>>());
        let kinds: Vec<&str> = events(&path)
            .iter()
            .map(|e| e.record.event.as_str())
            .collect();
        assert_eq!(kinds, ["start", "lost", "checkpoint"]);
        assert_eq!(events(&path)[1].record.lost, Some(2));
    }

    #[test]
    fn a_retry_that_fails_waits_two_seconds_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let t0 = Instant::now();
        let mut sink = Sink::open(path.clone(), AuditOptions::default(), host_key(), t0).unwrap();
        break_the_file(&mut sink);
        assert!(durable(&mut sink, "refused", t0).is_err());
        // The log's place is now a directory: reopening it fails.
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        std::fs::create_dir(&path).unwrap();
        let t2 = t0 + RETRY_EVERY;
        sink.write_group(Vec::new(), t2);
        assert_eq!(sink.due(), Some(t2 + RETRY_EVERY));
        assert!(matches!(sink.refusal(), Some(AuditError::Broken { .. })));
    }

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
