//! The server's audit writer: one task owns the log file and the chain; the server hands it
//! records through a bounded channel. "Log, then act": [`AuditLog::record_durable`] returns
//! only once the line is written and fsynced, and the server awaits it before a command
//! starts. Records that arrive together are written as one group and fsynced once (group
//! commit); every acknowledgement waits for that fsync. The writer also seals the chain with
//! signed checkpoints (every N events, at least every interval while events flow, before each
//! rotation, and after `stop`), rotates the file by size (`PATH` → `PATH.1` → `PATH.2` ...,
//! the chain continuing in the new file), and on start continues the chain from the last line
//! already on disk. After any write error it refuses everything: a log with a hole in it is
//! worse than a server that runs no commands.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::RngExt as _;
use rsa::PrivateKey;
use tokio::sync::{mpsc, oneshot};

use super::chain::{AuditChain, EventKind, Record};
use super::syslog::{SyslogSender, SyslogTarget};
use super::{AuditError, numbered};
use crate::keys::public::fingerprint;

/// Largest tail read when continuing a log: a last line longer than this is refused.
const TAIL_MAX: u64 = 4 * 1024 * 1024;

/// Most records written as one group.
const MAX_GROUP: usize = 256;

/// Records waiting for the writer before senders wait.
const QUEUE: usize = 1024;

/// Audit log knobs, with defaults from [`AuditOptions::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// Rotate when the file reaches this size (default 64 MiB).
    pub max_bytes: u64,
    /// Checkpoint after this many events (default 100).
    pub checkpoint_every: u64,
    /// Checkpoint at least this often while events flow (default one minute).
    pub checkpoint_interval: Duration,
    /// Also send every line to syslog.
    pub syslog: Option<SyslogTarget>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            checkpoint_every: 100,
            checkpoint_interval: Duration::from_secs(60),
            syslog: None,
        }
    }
}

/// Who a session's events are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The session id (hex).
    pub session: String,
    /// The client's address.
    pub peer: String,
    /// The client key's fingerprint.
    pub key: String,
    /// The client key's comment in authorized_keys.
    pub name: String,
}

impl Who {
    fn record(&self, event: EventKind) -> Record {
        let mut record = Record::new(event);
        record.session = Some(self.session.clone());
        record.peer = Some(self.peer.clone());
        record.key = Some(self.key.clone());
        record.name = Some(self.name.clone());
        record
    }
}

enum Job {
    Append(Record),
    Durable(Record, oneshot::Sender<Result<(), AuditError>>),
    Close(oneshot::Sender<Result<(), AuditError>>),
}

/// The server's handle on the audit log (cheap to clone). A disabled log accepts everything
/// and writes nothing.
#[derive(Debug, Clone)]
pub struct AuditLog {
    jobs: Option<mpsc::Sender<Job>>,
}

impl AuditLog {
    /// A log that records nothing (no `audit_log` configured).
    pub fn disabled() -> Self {
        Self { jobs: None }
    }

    /// Opens (or creates) the log at `path`, continuing the chain from its last line, writes
    /// and fsyncs a `start` event, and starts the writer task (call from a tokio runtime).
    pub async fn open(
        path: &Path,
        options: &AuditOptions,
        host: &PrivateKey,
    ) -> Result<Self, AuditError> {
        let (path, options, host) = (path.to_owned(), options.clone(), host.clone());
        let sink = tokio::task::spawn_blocking(move || Sink::open(path, options, host))
            .await
            .map_err(|_| AuditError::Closed)??;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_jobs(sink, rx));
        Ok(Self { jobs: Some(tx) })
    }

    /// Queues `record`; a failure to write it is logged by the writer.
    pub async fn record(&self, record: Record) {
        if let Some(jobs) = &self.jobs
            && jobs.send(Job::Append(record)).await.is_err()
        {
            tracing::warn!("audit log closed: an event was not recorded");
        }
    }

    /// Writes `record` and returns once it is on disk (fsynced).
    pub async fn record_durable(&self, record: Record) -> Result<(), AuditError> {
        let Some(jobs) = &self.jobs else {
            return Ok(());
        };
        let (ack, done) = oneshot::channel();
        jobs.send(Job::Durable(record, ack))
            .await
            .map_err(|_| AuditError::Closed)?;
        done.await.map_err(|_| AuditError::Closed)?
    }

    /// Clean shutdown: writes `stop` and a final checkpoint, fsyncs, and ends the writer.
    pub async fn close(&self) -> Result<(), AuditError> {
        let Some(jobs) = &self.jobs else {
            return Ok(());
        };
        let (ack, done) = oneshot::channel();
        jobs.send(Job::Close(ack))
            .await
            .map_err(|_| AuditError::Closed)?;
        done.await.map_err(|_| AuditError::Closed)?
    }

    /// A TCP connection from `peer` was accepted.
    pub async fn connect(&self, peer: &str) {
        let mut record = Record::new(EventKind::Connect);
        record.peer = Some(peer.to_owned());
        self.record(record).await;
    }

    /// The key `key` from `peer` is not authorized.
    pub async fn auth_fail(&self, peer: &str, key: &str) {
        let mut record = Record::new(EventKind::AuthFail);
        record.peer = Some(peer.to_owned());
        record.key = Some(key.to_owned());
        self.record(record).await;
    }

    /// A key refused by its authorized_keys options before the session began (`from=`,
    /// `expires=`).
    pub async fn denied(&self, peer: &str, key: &str, name: &str, rule: &str) {
        let mut record = Record::new(EventKind::Denied);
        record.peer = Some(peer.to_owned());
        record.key = Some(key.to_owned());
        record.name = Some(name.to_owned());
        record.rule = Some(rule.to_owned());
        self.record(record).await;
    }

    /// The handle for one authenticated session; records its `auth_ok`.
    pub async fn session(&self, who: Who) -> SessionAudit {
        self.record(who.record(EventKind::AuthOk)).await;
        SessionAudit {
            log: self.clone(),
            who,
        }
    }
}

/// One session's events, each carrying the session id, peer, key and name.
#[derive(Debug, Clone)]
pub struct SessionAudit {
    log: AuditLog,
    who: Who,
}

impl SessionAudit {
    /// Records a command line, returning once it is on disk: the command may start only after
    /// this returned `Ok`.
    pub async fn command(&self, line: &str) -> Result<(), AuditError> {
        let mut record = self.who.record(EventKind::Command);
        record.command = Some(line.to_owned());
        self.log.record_durable(record).await
    }

    /// Records a line the key's policy refused, and the rule that refused it.
    pub async fn denied(&self, line: &str, rule: &str) {
        let mut record = self.who.record(EventKind::Denied);
        record.command = Some(line.to_owned());
        record.rule = Some(rule.to_owned());
        self.log.record(record).await;
    }

    /// Records a file transfer: direction, server path, size, and the SHA-256 of a completed
    /// file or the reason it failed (in `rule`).
    pub async fn transfer(
        &self,
        direction: &str,
        path: &str,
        size: Option<u64>,
        outcome: Result<String, String>,
    ) {
        let mut record = self.who.record(EventKind::Transfer);
        record.direction = Some(direction.to_owned());
        record.path = Some(path.to_owned());
        match direction {
            "upload" => record.bytes_in = size,
            _ => record.bytes_out = size,
        }
        match outcome {
            Ok(sha256) => record.sha256 = Some(sha256),
            Err(reason) => record.rule = Some(reason),
        }
        self.log.record(record).await;
    }

    /// The session id these events carry.
    pub fn session_id(&self) -> &str {
        &self.who.session
    }

    /// Records the end of a command: its exit status (128 + N after signal N), how long it
    /// ran, how many bytes of stdin it was given and how many output bytes were sent.
    pub async fn exit(&self, status: i32, duration: Duration, bytes_in: u64, bytes_out: u64) {
        let mut record = self.who.record(EventKind::Exit);
        record.exit = Some(status);
        record.duration_ms = Some(millis(duration));
        record.bytes_in = Some(bytes_in);
        record.bytes_out = Some(bytes_out);
        self.log.record(record).await;
    }

    /// Records the end of the session, `duration` after it began.
    pub async fn disconnect(&self, duration: Duration) {
        let mut record = self.who.record(EventKind::Disconnect);
        record.duration_ms = Some(millis(duration));
        self.log.record(record).await;
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The writer task: takes whatever records are waiting (up to [`MAX_GROUP`]), writes them as
/// one group off the runtime, and wakes up on its own when a checkpoint falls due.
async fn write_jobs(mut sink: Sink, mut jobs: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        let due = sink.checkpoint_due().map(tokio::time::Instant::from_std);
        let closed = tokio::select! {
            received = jobs.recv_many(&mut group, MAX_GROUP) => received == 0,
            () = sleep_until(due), if due.is_some() => false,
        };
        if closed {
            return;
        }
        let work = std::mem::take(&mut group);
        let written = tokio::task::spawn_blocking(move || {
            let closing = sink.write_group(work);
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

async fn sleep_until(due: Option<tokio::time::Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}

/// The file, the chain and the checkpoint state; all blocking I/O happens here.
struct Sink {
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
    fn open(path: PathBuf, options: AuditOptions, host: PrivateKey) -> Result<Self, AuditError> {
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
        sink.append(start)?;
        sink.sync()?;
        Ok(sink)
    }

    /// When the oldest unsealed event has waited the checkpoint interval.
    fn checkpoint_due(&self) -> Option<Instant> {
        self.unsealed_since
            .filter(|_| self.broken.is_none())
            .map(|since| since + self.options.checkpoint_interval)
    }

    /// Writes a group, fsyncs once, then answers every waiting sender. True after a Close.
    fn write_group(&mut self, jobs: Vec<Job>) -> bool {
        let mut acks = Vec::new();
        let mut closing = false;
        for job in jobs {
            match job {
                Job::Append(record) => self.guard(|sink| sink.append(record)),
                Job::Durable(record, ack) => {
                    self.guard(|sink| sink.append(record));
                    acks.push(ack);
                }
                Job::Close(ack) => {
                    self.guard(|sink| {
                        sink.append(Record::new(EventKind::Stop))?;
                        sink.checkpoint()
                    });
                    acks.push(ack);
                    closing = true;
                }
            }
        }
        if self
            .checkpoint_due()
            .is_some_and(|due| due <= Instant::now())
        {
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

    fn append(&mut self, record: Record) -> Result<(), AuditError> {
        let kind = record.event;
        let time = now();
        let line = self
            .chain
            .seal(record, time.clone())
            .map_err(|source| self.chain_error(source))?;
        self.write_line(kind, &time, &line)?;
        self.unsealed += 1;
        self.unsealed_since.get_or_insert_with(Instant::now);
        if self.unsealed >= self.options.checkpoint_every || self.size >= self.options.max_bytes {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Seals everything so far with a signed checkpoint; rotates if the file is full.
    fn checkpoint(&mut self) -> Result<(), AuditError> {
        let time = now();
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

    fn chain_error(&self, source: super::chain::ChainError) -> AuditError {
        AuditError::Chain {
            path: self.path.clone(),
            source,
        }
    }
}

/// The current time as the log writes it: RFC 3339 UTC with milliseconds.
fn now() -> String {
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

/// Where an existing log leaves off: its last line, or, when `PATH` is missing or empty (a
/// crash between rotation's rename and the first new line), the last line of `PATH.1`.
/// `None` for a new log.
fn resume_point(path: &Path) -> Result<Option<AuditChain>, AuditError> {
    if let Some(chain) = resume_from(path)? {
        return Ok(Some(chain));
    }
    let older = numbered(path, 1);
    if older.exists() {
        return resume_from(&older);
    }
    Ok(None)
}

/// The chain after the last complete line of `path`. A last line without its newline was never
/// acknowledged (the crash came before its fsync, so what it records never happened): it is
/// cut off, with a warning.
fn resume_from(path: &Path) -> Result<Option<AuditChain>, AuditError> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(AuditError::io(path)(err)),
    };
    let len = file.metadata().map_err(AuditError::io(path))?.len();
    let start = len.saturating_sub(TAIL_MAX);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(AuditError::io(path))?;
    let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let too_long = || AuditError::BadLine {
        path: path.to_owned(),
        line: count_lines(path),
        detail: format!(
            "the last line is longer than {TAIL_MAX} bytes: cannot continue the audit chain"
        ),
    };
    if complete < tail.len() {
        if start > 0 && complete == 0 {
            return Err(too_long());
        }
        let torn = (tail.len() - complete) as u64;
        tracing::warn!(
            path = %path.display(),
            "the last line of the audit log is incomplete ({torn} bytes, written during a \
             crash before it was synced): removing it"
        );
        file.set_len(len - torn)
            .and_then(|()| file.sync_all())
            .map_err(AuditError::io(path))?;
        tail.truncate(complete);
    }
    let Some(body) = tail.strip_suffix(b"\n") else {
        return Ok(None);
    };
    let last = match body.iter().rposition(|&b| b == b'\n') {
        Some(newline) => body.get(newline + 1..).unwrap_or_default(),
        None if start == 0 => body,
        None => return Err(too_long()),
    };
    AuditChain::resume(last)
        .map(Some)
        .map_err(|err| AuditError::BadLine {
            path: path.to_owned(),
            line: count_lines(path),
            detail: format!("cannot continue the audit chain from the last line: {err}"),
        })
}

/// The number of lines in `path` (for error messages; 0 if unreadable).
fn count_lines(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use rsa::pkcs8::DecodePrivateKey as _;

    use super::*;
    use crate::audit::chain::Event;
    use crate::audit::rotated_set;
    use crate::audit::verify::{Verdict, verify_files};

    fn host_key() -> PrivateKey {
        PrivateKey::from_pkcs8_pem(include_str!("../../tests/fixtures/host_rsa")).unwrap()
    }

    fn events(path: &Path) -> Vec<Event> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| Event::parse(line.as_bytes()).unwrap())
            .collect()
    }

    fn kinds(path: &Path) -> Vec<&'static str> {
        events(path)
            .iter()
            .map(|e| e.record.event.as_str())
            .collect()
    }

    fn verdict(files: &[PathBuf]) -> Verdict {
        verify_files(files, host_key().as_public_key()).unwrap()
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
        assert!(now().ends_with('Z') && now().len() == 24);
    }

    fn who() -> Who {
        Who {
            session: "00ff".into(),
            peer: "127.0.0.1:5000".into(),
            key: "SHA256:client".into(),
            name: "alice".into(),
        }
    }

    #[tokio::test]
    async fn a_session_is_logged_and_sealed_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        log.connect("127.0.0.1:5000").await;
        let session = log.session(who()).await;
        session.command("echo hi").await.unwrap();
        // The command is on disk before `command` returns.
        assert_eq!(kinds(&path).last(), Some(&"command"));
        session.exit(0, Duration::from_millis(5), 2, 3).await;
        session.disconnect(Duration::from_secs(1)).await;
        log.close().await.unwrap();
        assert_eq!(
            kinds(&path),
            [
                "start",
                "connect",
                "auth_ok",
                "command",
                "exit",
                "disconnect",
                "stop",
                "checkpoint"
            ]
        );
        let all = events(&path);
        assert!(all[0].is_genesis());
        assert_eq!(all[3].record.command.as_deref(), Some("echo hi"));
        assert_eq!(all[3].record.name.as_deref(), Some("alice"));
        assert_eq!(all[4].record.exit, Some(0));
        assert_eq!(all[4].record.duration_ms, Some(5));
        assert!(matches!(
            verdict(std::slice::from_ref(&path)),
            Verdict::Sealed { events: 8, .. }
        ));
        // After close nothing more is accepted.
        assert!(matches!(
            session.command("late").await,
            Err(AuditError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_restart_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        for _ in 0..3 {
            let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
                .await
                .unwrap();
            log.connect("127.0.0.1:1").await;
            log.close().await.unwrap();
        }
        let all = events(&path);
        assert_eq!(all.len(), 12);
        assert_eq!(all.iter().filter(|e| e.is_genesis()).count(), 1);
        assert_eq!(all.last().unwrap().seq, 12);
        assert!(matches!(
            verdict(&[path]),
            Verdict::Sealed { events: 12, .. }
        ));
    }

    #[tokio::test]
    async fn checkpoints_every_n_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let options = AuditOptions {
            checkpoint_every: 3,
            ..AuditOptions::default()
        };
        let log = AuditLog::open(&path, &options, &host_key()).await.unwrap();
        for _ in 0..5 {
            log.connect("127.0.0.1:1").await;
        }
        log.close().await.unwrap();
        assert_eq!(
            kinds(&path),
            [
                "start",
                "connect",
                "connect",
                "checkpoint",
                "connect",
                "connect",
                "connect",
                "checkpoint",
                "stop",
                "checkpoint"
            ]
        );
        assert!(matches!(verdict(&[path]), Verdict::Sealed { .. }));
    }

    #[tokio::test]
    async fn checkpoints_when_the_interval_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let options = AuditOptions {
            checkpoint_interval: Duration::from_millis(100),
            ..AuditOptions::default()
        };
        let log = AuditLog::open(&path, &options, &host_key()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while kinds(&path).last() != Some(&"checkpoint") {
            assert!(
                Instant::now() < deadline,
                "no checkpoint: {:?}",
                kinds(&path)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(kinds(&path), ["start", "checkpoint"]);
        assert!(matches!(
            verdict(std::slice::from_ref(&path)),
            Verdict::Sealed { .. }
        ));
        // Quiet: no checkpoint without new events.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(kinds(&path).len(), 2);
        log.close().await.unwrap();
    }

    #[tokio::test]
    async fn rotation_keeps_one_chain_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let options = AuditOptions {
            max_bytes: 1200,
            ..AuditOptions::default()
        };
        let log = AuditLog::open(&path, &options, &host_key()).await.unwrap();
        let session = log.session(who()).await;
        for n in 0..20 {
            session.command(&format!("echo {n}")).await.unwrap();
        }
        log.close().await.unwrap();
        let files = rotated_set(&path);
        assert!(files.len() >= 3, "{files:?}");
        for rotated in files.iter().take(files.len() - 1) {
            assert_eq!(kinds(rotated).last(), Some(&"checkpoint"), "{rotated:?}");
            assert!(std::fs::metadata(rotated).unwrap().len() >= 1200);
        }
        assert!(matches!(verdict(&files), Verdict::Sealed { events: _, .. }));
        let seqs: Vec<u64> = files
            .iter()
            .flat_map(|f| events(f))
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        log.connect("127.0.0.1:1").await;
        log.close().await.unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"time\":\"2025-").unwrap();
        drop(file);
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        log.close().await.unwrap();
        assert!(matches!(
            verdict(&[path]),
            Verdict::Sealed { events: 7, .. }
        ));
    }

    #[tokio::test]
    async fn a_crash_between_rename_and_new_file_resumes_from_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        log.close().await.unwrap();
        std::fs::rename(&path, numbered(&path, 1)).unwrap();
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        log.close().await.unwrap();
        assert!(!events(&path)[0].is_genesis());
        assert!(matches!(
            verdict(&rotated_set(&path)),
            Verdict::Sealed { events: 6, .. }
        ));
    }

    #[tokio::test]
    async fn a_log_that_does_not_end_in_an_event_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, "hello\nworld\n").unwrap();
        let err = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("audit.log:2: cannot continue the audit chain"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_disabled_log_accepts_everything() {
        let log = AuditLog::disabled();
        log.session(who()).await.command("x").await.unwrap();
        log.close().await.unwrap();
    }
}
