//! The server's handle on the audit log: [`AuditLog`] (cheap to clone, shared by every
//! connection) and [`SessionAudit`] (one session's events, each carrying who it is about).
//! "Log, then act": [`AuditLog::record_durable`] returns only once the line is written and
//! fsynced, and the server awaits it before a command starts. The handle only builds records
//! and queues them, through a bounded channel, to the one writer task in `sink`, which owns
//! the file; on start the log continues the chain from the last line already on disk
//! (`resume`). Failed authentications are not written one by one but counted (`failures`)
//! and summarised at most once an interval, so strangers cannot make the log grow at a rate
//! they choose. The handle never touches the file itself. After a write error the writer
//! refuses everything until it can write again (a command run unrecorded is worse than a
//! command refused), then continues the chain by itself, with a `lost` event saying what it
//! could not write.

mod failures;
mod resume;
mod sink;

use std::path::Path;
use std::time::Duration;

use crate::crypto::PrivateKey;
use tokio::sync::{mpsc, oneshot};

pub use self::sink::AuditOptions;
use self::sink::{Job, Sink, Write, write_jobs};
use super::AuditError;
use super::chain::{CertIdentity, EventKind, Record, RefusedKey};

/// Records waiting for the writer before senders wait.
const QUEUE: usize = 1024;

/// Who a session's events are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The session id (hex).
    pub session: String,
    /// The client's address.
    pub peer: String,
    /// The client key's fingerprint.
    pub key: String,
    /// The client key's comment in authorized_keys, or its certificate's name.
    pub name: String,
    /// The certificate that admitted the client, if one did.
    pub cert: Option<CertIdentity>,
}

impl Who {
    fn record(&self, event: EventKind) -> Record {
        let mut record = Record::new(event);
        record.session = Some(self.session.clone());
        record.peer = Some(self.peer.clone());
        record.key = Some(self.key.clone());
        record.name = Some(self.name.clone());
        if let Some(cert) = &self.cert {
            record.cert_name = Some(cert.cert_name.clone());
            record.cert_serial = Some(cert.cert_serial);
            record.ca = Some(cert.ca.clone());
        }
        record
    }
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
        let now = tokio::time::Instant::now().into_std();
        let sink = tokio::task::spawn_blocking(move || Sink::open(path, options, host, now))
            .await
            .map_err(|_| AuditError::Closed)??;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_jobs(sink, rx));
        Ok(Self { jobs: Some(tx) })
    }

    /// Queues `record`; a failure to write it is logged by the writer.
    pub async fn record(&self, record: Record) {
        self.queue(Job::Write(Write::Append(record))).await;
    }

    async fn queue(&self, job: Job) {
        if let Some(jobs) = &self.jobs
            && jobs.send(job).await.is_err()
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
        jobs.send(Job::Write(Write::Durable(record, ack)))
            .await
            .map_err(|_| AuditError::Closed)?;
        done.await.map_err(|_| AuditError::Closed)?
    }

    /// Clean shutdown: writes the summary of failed authentications not yet written, `stop`
    /// and the final seal (a checkpoint marked `final`), fsyncs, and ends the writer.
    pub async fn close(&self) -> Result<(), AuditError> {
        let Some(jobs) = &self.jobs else {
            return Ok(());
        };
        let (ack, done) = oneshot::channel();
        jobs.send(Job::Write(Write::Close(ack)))
            .await
            .map_err(|_| AuditError::Closed)?;
        done.await.map_err(|_| AuditError::Closed)?
    }

    /// A failed authentication from `source` (an IPv4 address, or an IPv6 /64 like
    /// `2001:db8:1:2::/64`); `refused` only when the client proved possession of an
    /// authorized key that its options refused.
    ///
    /// Counted, not written: at most one `auth_fail` summary is written per
    /// [`AuditOptions::failure_interval`], and a last one at [`AuditLog::close`].
    pub async fn auth_failure(&self, source: &str, refused: Option<RefusedKey>) {
        self.queue(Job::AuthFailure(source.to_owned(), refused))
            .await;
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
    pub async fn command(&self, line: &str, pty: bool) -> Result<(), AuditError> {
        let mut record = self.who.record(EventKind::Command);
        record.command = Some(line.to_owned());
        record.pty = Some(pty);
        self.log.record_durable(record).await
    }

    /// Records a line the key's policy refused, and the rule that refused it.
    pub async fn denied(&self, line: &str, rule: &str) {
        let mut record = self.who.record(EventKind::Denied);
        record.command = Some(line.to_owned());
        record.rule = Some(rule.to_owned());
        self.log.record(record).await;
    }

    /// Records a file transfer, returning once it is on disk (fsynced): direction, server path
    /// and size, then `outcome`: `None` for its start (written before its first byte moves:
    /// the transfer may go ahead only after this returned `Ok`), or its end, the SHA-256 of a
    /// completed file or the reason it failed (in `rule`).
    pub async fn transfer(
        &self,
        direction: &str,
        path: &str,
        size: Option<u64>,
        outcome: Option<Result<String, String>>,
    ) -> Result<(), AuditError> {
        let mut record = self.who.record(EventKind::Transfer);
        record.direction = Some(direction.to_owned());
        record.path = Some(path.to_owned());
        match direction {
            "upload" => record.bytes_in = size,
            _ => record.bytes_out = size,
        }
        match outcome {
            None => {}
            Some(Ok(sha256)) => record.sha256 = Some(sha256),
            Some(Err(reason)) => record.rule = Some(reason),
        }
        self.log.record_durable(record).await
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

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write as _;
    use std::path::PathBuf;
    use std::time::Instant;

    use super::*;
    use crate::audit::chain::Event;
    use crate::audit::verify::{Ending, Verdict, verify_files};
    use crate::audit::{numbered, rotated_set};

    fn host_key() -> PrivateKey {
        crate::keys::private::from_pem(include_str!("../../tests/fixtures/host_rsa")).unwrap()
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
        verify_files(files, host_key().public_key()).unwrap()
    }

    /// Waits, on tokio's clock (paused in these tests: no real time passes), until the kinds
    /// of the log's events satisfy `done` (a line still being written is left out).
    async fn wait_until(path: &Path, done: impl Fn(&[&'static str]) -> bool) {
        let complete = || -> Vec<&'static str> {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .filter_map(|line| Event::parse(line.as_bytes()).ok())
                .map(|e| e.record.event.as_str())
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&complete()) {
            assert!(Instant::now() < deadline, "gave up: {:?}", complete());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn who() -> Who {
        Who {
            session: "00ff".into(),
            peer: "127.0.0.1:5000".into(),
            key: "SHA256:client".into(),
            name: "alice".into(),
            cert: None,
        }
    }

    #[tokio::test]
    async fn a_session_is_logged_and_sealed_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        let session = log.session(who()).await;
        session.command("echo hi", false).await.unwrap();
        // The command is on disk before `command` returns.
        assert_eq!(kinds(&path).last(), Some(&"command"));
        session.exit(0, Duration::from_millis(5), 2, 3).await;
        session.disconnect(Duration::from_secs(1)).await;
        log.close().await.unwrap();
        assert_eq!(
            kinds(&path),
            [
                "start",
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
        assert_eq!(all[2].record.command.as_deref(), Some("echo hi"));
        assert_eq!(all[2].record.name.as_deref(), Some("alice"));
        assert_eq!(all[3].record.exit, Some(0));
        assert_eq!(all[3].record.duration_ms, Some(5));
        assert!(matches!(
            verdict(std::slice::from_ref(&path)),
            Verdict::Sealed { events: 7, .. }
        ));
        assert_eq!(all[6].record.seal, Some(crate::audit::Seal::Final));
        // After close nothing more is accepted.
        assert!(matches!(
            session.command("late", false).await,
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
            log.session(who()).await;
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
            log.session(who()).await;
        }
        log.close().await.unwrap();
        assert_eq!(
            kinds(&path),
            [
                "start",
                "auth_ok",
                "auth_ok",
                "checkpoint",
                "auth_ok",
                "auth_ok",
                "auth_ok",
                "checkpoint",
                "stop",
                "checkpoint"
            ]
        );
        assert!(matches!(verdict(&[path]), Verdict::Sealed { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn checkpoints_when_the_interval_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let options = AuditOptions {
            checkpoint_interval: Duration::from_secs(60),
            ..AuditOptions::default()
        };
        let log = AuditLog::open(&path, &options, &host_key()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(kinds(&path), ["start"]);
        // Due a minute after the oldest unsealed event (`start`), not after the latest.
        log.session(who()).await.disconnect(Duration::ZERO).await;
        wait_until(&path, |kinds| kinds.last() == Some(&"checkpoint")).await;
        assert_eq!(
            kinds(&path),
            ["start", "auth_ok", "disconnect", "checkpoint"]
        );
        // Sealed up to here, but a running server's log is never OK: only the final seal is.
        assert!(matches!(
            verdict(std::slice::from_ref(&path)),
            Verdict::Unsealed {
                after: 0,
                ending: Ending::Checkpoint,
                ..
            }
        ));
        // Quiet: no checkpoint without new events.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(kinds(&path).len(), 4);
        log.close().await.unwrap();
    }

    /// A log of `commands` commands that rotated at 1,200 bytes, closed cleanly: its
    /// directory, its path and its files.
    async fn rotated_log(commands: usize) -> (tempfile::TempDir, PathBuf, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let options = AuditOptions {
            max_bytes: 1200,
            ..AuditOptions::default()
        };
        let log = AuditLog::open(&path, &options, &host_key()).await.unwrap();
        let session = log.session(who()).await;
        for n in 0..commands {
            session.command(&format!("echo {n}"), false).await.unwrap();
        }
        log.close().await.unwrap();
        let files = rotated_set(&path);
        (dir, path, files)
    }

    #[tokio::test]
    async fn rotation_keeps_one_chain_across_files() {
        let (_dir, _path, files) = rotated_log(20).await;
        assert!(files.len() >= 3, "{files:?}");
        for rotated in files.iter().take(files.len() - 1) {
            assert_eq!(kinds(rotated).last(), Some(&"checkpoint"), "{rotated:?}");
            assert!(std::fs::metadata(rotated).unwrap().len() >= 1200);
        }
        assert!(matches!(
            verdict(&files),
            Verdict::Sealed { suffix: None, .. }
        ));
        let seqs: Vec<u64> = files
            .iter()
            .flat_map(|f| events(f))
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        // Each file after the first begins by naming the one before it and its length.
        for pair in files.windows(2) {
            let first = events(&pair[1]).remove(0);
            assert_eq!(first.record.event, EventKind::Rotate, "{:?}", pair[1]);
            assert_eq!(first.record.file.as_deref(), Some("audit.log.1"));
            assert_eq!(first.record.lines, Some(events(&pair[0]).len() as u64));
            let before = std::fs::read_to_string(&pair[0]).unwrap();
            let last = before.lines().last().unwrap();
            assert_eq!(first.prev, crate::audit::chain::line_hash(last.as_bytes()));
        }
        // Without its oldest file the set still verifies, and says where it begins.
        let newer = &files[1..];
        let Verdict::Sealed {
            suffix: Some(suffix),
            ..
        } = verdict(newer)
        else {
            panic!("{:?}", verdict(newer));
        };
        assert_eq!(suffix.at.file, files[1]);
        assert_eq!(suffix.seq, events(&files[0]).len() as u64 + 1);
    }

    #[tokio::test]
    async fn a_missing_or_emptied_rotated_file_is_named() {
        let (_dir, path, files) = rotated_log(30).await;
        assert!(files.len() >= 4, "{files:?}");
        let middle = files[1].clone();

        // Emptied in the middle: the next file is the break, and the empty file is named.
        let kept = std::fs::read(&middle).unwrap();
        std::fs::write(&middle, "").unwrap();
        let Verdict::Broken(found) = verdict(&rotated_set(&path)) else {
            panic!("emptied middle file passed");
        };
        assert_eq!((&found.at.file, found.at.line), (&files[2], 1));
        assert!(
            found.detail.contains("rotated file missing or emptied")
                && found
                    .detail
                    .contains(&format!("{} is empty", middle.display())),
            "{}",
            found.detail
        );

        // Missing in the middle: the set still reaches the older files, and the hole shows.
        std::fs::remove_file(&middle).unwrap();
        let set = rotated_set(&path);
        assert_eq!(set.len(), files.len() - 1, "{set:?}");
        let Verdict::Broken(found) = verdict(&set) else {
            panic!("missing middle file passed");
        };
        assert_eq!((&found.at.file, found.at.line), (&files[2], 1));
        std::fs::write(&middle, kept).unwrap();

        // The newest file missing: the set ends in a rotation's checkpoint.
        std::fs::remove_file(&path).unwrap();
        let set = rotated_set(&path);
        assert_eq!(set.last(), files.get(files.len() - 2));
        let found = verdict(&set);
        assert!(
            matches!(
                found,
                Verdict::Unsealed {
                    ending: Ending::Rotation,
                    ..
                }
            ),
            "{found:?}"
        );
        assert!(
            found
                .to_string()
                .contains("the newest file is missing or empty"),
            "{found}"
        );
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        log.session(who()).await;
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
        assert_eq!(kinds(&path)[..2], ["rotate", "start"]);
        assert!(matches!(
            verdict(&rotated_set(&path)),
            Verdict::Sealed { events: 7, .. }
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

    fn refused(name: &str) -> RefusedKey {
        RefusedKey {
            name: name.into(),
            key: format!("SHA256:{name}"),
            rule: "from=: 10.0.0.9 is not an allowed source address for this key".into(),
            reason: None,
            cert: None,
        }
    }

    /// The `auth_fail` events of the log at `path`.
    fn summaries(path: &Path) -> Vec<Record> {
        events(path)
            .into_iter()
            .map(|e| e.record)
            .filter(|r| r.event == EventKind::AuthFail)
            .collect()
    }

    fn sources(summary: &Record) -> Vec<(&str, u64)> {
        summary
            .sources
            .iter()
            .flatten()
            .map(|s| (s.source.as_str(), s.failures))
            .collect()
    }

    #[tokio::test]
    async fn failed_authentications_are_one_summary_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        for n in 0..30 {
            let refused = (n % 2 == 0).then(|| refused("alice"));
            log.auth_failure("10.0.0.9", refused).await;
        }
        for _ in 0..5 {
            log.auth_failure("10.0.0.7", None).await;
        }
        log.auth_failure("2001:db8:1:2::/64", None).await;
        log.auth_failure("2001:db8:1:2::/64", None).await;
        log.close().await.unwrap();
        assert_eq!(kinds(&path), ["start", "auth_fail", "stop", "checkpoint"]);
        let [summary] = summaries(&path).try_into().unwrap();
        assert_eq!(summary.failures, Some(37));
        assert_eq!(
            sources(&summary),
            [("10.0.0.9", 30), ("10.0.0.7", 5), ("2001:db8:1:2::/64", 2)]
        );
        let first = summary.sources.as_ref().unwrap().first().unwrap();
        assert_eq!(first.refused, [refused("alice")]);
        assert_eq!(summary.unlisted, None);
        assert!(summary.duration_ms.is_some());
        assert!(matches!(
            verdict(&[path]),
            Verdict::Sealed { events: 4, .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_one_failure_summary_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        let session = log.session(who()).await;
        for _ in 0..3 {
            log.auth_failure("10.0.0.1", None).await;
        }
        // A durable command: the writer has taken every job queued before it.
        session.command("barrier 1", false).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        log.auth_failure("10.0.0.2", None).await;
        log.auth_failure("10.0.0.2", None).await;
        session.command("barrier 2", false).await.unwrap();
        assert_eq!(summaries(&path), []);

        tokio::time::sleep(Duration::from_secs(30)).await;
        wait_until(&path, |kinds| kinds.contains(&"auth_fail")).await;
        let [first] = summaries(&path).try_into().unwrap();
        assert_eq!(first.failures, Some(5));
        assert_eq!(first.duration_ms, Some(60_000));
        assert_eq!(sources(&first), [("10.0.0.1", 3), ("10.0.0.2", 2)]);

        // The next interval starts with its first failure.
        log.auth_failure("10.0.0.3", None).await;
        session.command("barrier 3", false).await.unwrap();
        tokio::time::sleep(Duration::from_secs(59)).await;
        session.command("barrier 4", false).await.unwrap();
        assert_eq!(summaries(&path).len(), 1);
        // Close writes what is left, before `stop`.
        log.close().await.unwrap();
        let [_, last] = summaries(&path).try_into().unwrap();
        assert_eq!(last.failures, Some(1));
        assert!(
            (59_000..60_000).contains(&last.duration_ms.unwrap()),
            "{last:?}"
        );
        let kinds = kinds(&path);
        assert_eq!(
            kinds[kinds.len() - 3..],
            ["auth_fail", "stop", "checkpoint"]
        );
        assert!(matches!(verdict(&[path]), Verdict::Sealed { .. }));
    }

    /// A small tmpfs mounted on a temporary directory (tests run as root), unmounted on drop.
    pub(super) struct Tmpfs {
        dir: tempfile::TempDir,
    }

    impl Tmpfs {
        /// Mounts one with `options` (`size=256k`...); `None`, with a message saying why the
        /// test does not run, where mounting is not permitted.
        pub(super) fn mount(options: &str) -> Option<Self> {
            let dir = tempfile::tempdir().unwrap();
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "tmpfs"])
                .arg(dir.path())
                .output()
                .unwrap();
            if mounted.status.success() {
                return Some(Self { dir });
            }
            let why = String::from_utf8_lossy(&mounted.stderr);
            let refused = ["ermission denied", "only root", "must be superuser"];
            assert!(
                refused.iter().any(|r| why.contains(r)),
                "mount -t tmpfs failed: {why}"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs here (this test needs root): {why}");
            None
        }

        pub(super) fn path(&self) -> &Path {
            self.dir.path()
        }

        /// Fills the disk with `name` until it is full.
        pub(super) fn fill(&self, name: &str) -> PathBuf {
            let path = self.path().join(name);
            let mut file = std::fs::File::create(&path).unwrap();
            let block = [0u8; 4096];
            while file.write_all(&block).is_ok() {}
            path
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }

    fn lost_events(files: &[PathBuf]) -> Vec<Record> {
        files
            .iter()
            .flat_map(|file| events(file))
            .map(|e| e.record)
            .filter(|r| r.event == EventKind::Lost)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_disk_refuses_commands_and_the_log_goes_on_once_space_is_back() {
        let Some(disk) = Tmpfs::mount("size=256k") else {
            return;
        };
        let path = disk.path().join("audit.log");
        let log = AuditLog::open(&path, &AuditOptions::default(), &host_key())
            .await
            .unwrap();
        let session = log.session(who()).await;
        session.command("echo before", false).await.unwrap();
        let filler = disk.fill("filler");
        // Longer than a page: it cannot fit in what is left of the log's last one.
        let long = format!(": {}", "x".repeat(10_000));
        let err = session.command(&long, false).await.unwrap_err();
        assert!(matches!(err, AuditError::Broken { .. }), "{err}");
        assert!(err.to_string().contains("No space left on device"), "{err}");
        session.exit(0, Duration::ZERO, 0, 0).await;
        std::fs::remove_file(&filler).unwrap();
        // Space is back, but the retry is not due yet (no time has passed on this clock).
        assert!(session.command("too early", false).await.is_err());
        // Due: the writer writes again by itself, without waiting for a job.
        tokio::time::sleep(sink::RETRY_EVERY).await;
        wait_until(&path, |kinds| kinds.contains(&"lost")).await;
        session.command("echo after", false).await.unwrap();
        log.close().await.unwrap();

        assert_eq!(
            kinds(&path),
            [
                "start",
                "auth_ok",
                "command",
                "lost",
                "checkpoint",
                "command",
                "stop",
                "checkpoint"
            ]
        );
        let [lost] = lost_events(std::slice::from_ref(&path)).try_into().unwrap();
        // The long command, its exit, and the command that came too early.
        assert_eq!(lost.lost, Some(3));
        assert_eq!(lost.duration_ms, Some(2_000));
        assert!(
            lost.rule
                .as_deref()
                .unwrap()
                .contains("No space left on device")
        );
        assert!(!std::fs::read_to_string(&path).unwrap().contains("xxxx"));
        assert!(matches!(
            verdict(&[path]),
            Verdict::Sealed { events: 8, .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_that_cannot_create_the_new_file_recovers_in_it_later() {
        // Room for the log and two more files, both taken.
        let Some(disk) = Tmpfs::mount("size=1m,nr_inodes=4") else {
            return;
        };
        let path = disk.path().join("audit.log");
        let options = AuditOptions {
            max_bytes: 1500,
            ..AuditOptions::default()
        };
        let log = AuditLog::open(&path, &options, &host_key()).await.unwrap();
        let session = log.session(who()).await;
        let taken = ["taken.1", "taken.2"].map(|name| disk.path().join(name));
        for file in &taken {
            std::fs::write(file, "").unwrap();
        }
        let mut ran = 0;
        while session.command(&format!("echo {ran}"), false).await.is_ok() {
            ran += 1;
            assert!(ran < 100, "never rotated");
        }
        // The rotation renamed the log, then could not create the new one.
        assert!(!path.exists());
        assert_eq!(kinds(&numbered(&path, 1)).last(), Some(&"checkpoint"));
        assert!(session.command("refused", false).await.is_err());

        for file in &taken {
            std::fs::remove_file(file).unwrap();
        }
        tokio::time::sleep(sink::RETRY_EVERY).await;
        session.command("echo after", false).await.unwrap();
        log.close().await.unwrap();
        // The log went on in the new file (which has filled up and rotated again since).
        let files = rotated_set(&path);
        let resumed = files
            .iter()
            .position(|file| kinds(file).get(1) == Some(&"lost"))
            .unwrap();
        assert_eq!(resumed, 1, "{files:?}");
        let after: Vec<&str> = files[resumed..].iter().flat_map(|f| kinds(f)).collect();
        assert_eq!(
            after[..4],
            ["rotate", "lost", "checkpoint", "command"],
            "{after:?}"
        );
        // `stop` may have filled the file: then the final seal is in a new one.
        assert!(after.contains(&"stop"), "{after:?}");
        assert_eq!(after.last(), Some(&"checkpoint"));
        let [lost] = lost_events(&files).try_into().unwrap();
        assert_eq!(lost.lost, Some(1));
        assert!(matches!(verdict(&files), Verdict::Sealed { .. }));
    }

    #[tokio::test]
    async fn a_disabled_log_accepts_everything() {
        let log = AuditLog::disabled();
        log.auth_failure("10.0.0.1", Some(refused("alice"))).await;
        log.session(who()).await.command("x", false).await.unwrap();
        log.close().await.unwrap();
    }
}
