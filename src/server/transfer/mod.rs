//! File transfer on the server: the session's half of `seashell cp` and the REPL's
//! `put`/`get` (docs/PROTOCOL.md §6.4). The console task hands every transfer message to
//! [`Transfers::handle`], which keeps the state of an upload (received into a partial file,
//! renamed into place only after the SHA-256 check) and turns requests into [`Job`]s; the
//! output task runs each job with [`deliver`], streaming downloads with backpressure from the
//! socket. One transfer at a time, and never alongside a command (the session waits for the
//! command before it, as for Exec); `no-files` and restricted keys are refused.
//! Every transfer goes through [`log_transfer`], log-then-act as for commands: its start is
//! fsynced in the audit log before its first byte moves (a transfer whose start cannot be
//! written, because the log is out of order, is refused), and its end (done, failed or
//! refused) before TransferDone, in order with the session's other events.
//!
//! This module owns what both directions share: the public surface ([`Transfers`],
//! [`deliver`]), the requests (refused by policy, paths resolved, stat answered), the
//! replies and jobs, and the log. `upload.rs` (the console task's side: receiving a file)
//! and `download.rs` (the output task's side: streaming one) use it and never each other.
//! It dispatches to them and must never do their work: no partial file is written and no
//! file is streamed here.

mod download;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWrite;

use self::download::{DownloadState, FileDownload, TreeDownload};
use self::upload::{Plan, Upload};
use super::keepalive::Keepalive;
use super::peer::Peer;
use crate::audit::{AuditError, SessionAudit};
use crate::fileio::FileError;
use crate::fileio::source::SourceFile;
use crate::proto::{Message, PathKind};
use crate::transport::{SecureWriter, TransportError};

/// A transfer message that breaks the protocol's order: the session closes.
#[derive(Debug, thiserror::Error)]
#[error("{0} at the wrong time in a file transfer")]
pub struct OutOfOrder(&'static str);

/// Which way a file moved, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (`put`, `cp local host:remote`).
    Upload,
    /// Server to client (`get`, `cp host:remote local`).
    Download,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Download => "download",
        }
    }
}

/// The session's transfer state.
pub struct Transfers {
    peer: Arc<Peer>,
    audit: SessionAudit,
    home: PathBuf,
    upload: Upload,
    download: Option<Arc<DownloadState>>,
}

/// Something the output task must send for a transfer.
pub struct Job(JobKind);

enum JobKind {
    Reply(Reply),
    SendFile(FileDownload),
    SendTree(TreeDownload),
}

enum Reply {
    Stat(PathKind),
    PutReady {
        offset: u64,
        prefix_sha256: [u8; 32],
    },
    Done,
    Failed(String),
}

fn reply(reply: Reply) -> Option<Job> {
    Some(Job(JobKind::Reply(reply)))
}

fn failed(reason: impl std::fmt::Display) -> Option<Job> {
    reply(Reply::Failed(reason.to_string()))
}

/// Logs a failed transfer and answers TransferFailed with `reason`.
async fn fail(
    peer: &Peer,
    audit: &SessionAudit,
    direction: Direction,
    target: &Path,
    size: Option<u64>,
    reason: String,
) -> Option<Job> {
    // A failure the log cannot record is counted as lost by the log; nothing more moves.
    let _ = log_transfer(
        peer,
        audit,
        direction,
        target,
        size,
        Outcome::Failed(&reason),
    )
    .await;
    failed(reason)
}

/// Logs the start of a transfer, before its first byte moves; `Err` is the TransferFailed
/// reason of a transfer refused because the log cannot write.
async fn log_start(
    peer: &Peer,
    audit: &SessionAudit,
    direction: Direction,
    target: &Path,
    size: Option<u64>,
) -> Result<(), String> {
    log_transfer(peer, audit, direction, target, size, Outcome::Start)
        .await
        .map_err(|err| refused(target, &err))
}

/// Why a transfer was refused, or stopped, when the audit log could not record it.
fn refused(target: &Path, err: &AuditError) -> String {
    format!("{}: transfer refused: {err}", target.display())
}

impl Transfers {
    /// No transfer yet; relative paths resolve against the session's cwd, `~` against `home`.
    /// Every transfer is recorded in `audit`, the session's audit events.
    pub fn new(peer: &Peer, audit: &SessionAudit, home: &Path) -> Self {
        Self {
            peer: Arc::new(peer.clone()),
            audit: audit.clone(),
            home: home.to_owned(),
            upload: Upload::Idle,
            download: None,
        }
    }

    /// Whether a transfer is under way (an idle timeout must not cut it).
    pub fn busy(&self) -> bool {
        !self.upload.is_idle() || self.download.as_ref().is_some_and(|d| d.is_running())
    }

    /// Handles one transfer message from the client; returns what to send back, if anything.
    pub async fn handle(
        &mut self,
        msg: Message<'_>,
        cwd: &Path,
    ) -> Result<Option<Job>, OutOfOrder> {
        match msg {
            Message::Stat { .. }
            | Message::PutFile { .. }
            | Message::GetFile { .. }
            | Message::GetTree { .. }
            | Message::MakeDir { .. } => {
                if !self.upload.is_idle() {
                    return Err(OutOfOrder(msg.name()));
                }
                if let Err(denied) = self.peer.policy.check_files() {
                    let (direction, path) = request_summary(&msg);
                    let path = PathBuf::from(path);
                    let reason = denied.to_string();
                    let job = fail(&self.peer, &self.audit, direction, &path, None, reason);
                    return Ok(job.await);
                }
                Ok(self.request(msg, cwd).await)
            }
            Message::PutStart { offset } => {
                self.upload.start(offset, &self.peer, &self.audit).await
            }
            Message::FileData(data) => self.upload.data(data, &self.peer, &self.audit).await,
            Message::FileEnd { sha256 } => self.upload.end(sha256, &self.peer, &self.audit).await,
            Message::TransferFailed { reason } => Ok(self.cancel(reason).await),
            other => Err(OutOfOrder(other.name())),
        }
    }

    async fn request(&mut self, msg: Message<'_>, cwd: &Path) -> Option<Job> {
        let (direction, path) = request_summary(&msg);
        let target = match resolve(cwd, &self.home, path) {
            Ok(target) => target,
            Err(err) => {
                let (peer, audit) = (&self.peer, &self.audit);
                return fail(
                    peer,
                    audit,
                    direction,
                    Path::new(path),
                    None,
                    err.to_string(),
                )
                .await;
            }
        };
        match msg {
            Message::Stat { .. } => stat(target).await,
            Message::PutFile {
                size,
                mode,
                mtime,
                resume,
                ..
            } => {
                let plan = Plan { size, mode, mtime };
                let (peer, audit) = (&self.peer, &self.audit);
                self.upload.put(target, plan, resume, peer, audit).await
            }
            Message::GetFile {
                offset,
                prefix_sha256,
                ..
            } => self.get(target, offset, prefix_sha256).await,
            Message::GetTree { .. } => {
                let logged = log_start(&self.peer, &self.audit, direction, &target, None).await;
                if let Err(reason) = logged {
                    return failed(reason);
                }
                let state = self.new_download();
                Some(Job(JobKind::SendTree(TreeDownload {
                    root: target,
                    state,
                    peer: Arc::clone(&self.peer),
                    audit: self.audit.clone(),
                })))
            }
            Message::MakeDir { mode, .. } => upload::make_dir(target, mode).await,
            _ => failed("not a transfer request"),
        }
    }

    async fn get(&mut self, target: PathBuf, offset: u64, prefix_sha256: [u8; 32]) -> Option<Job> {
        match SourceFile::open(target.clone()).await {
            Ok(source) => {
                let (peer, audit) = (&self.peer, &self.audit);
                let size = Some(source.size());
                if let Err(reason) =
                    log_start(peer, audit, Direction::Download, &target, size).await
                {
                    return failed(reason);
                }
                let state = self.new_download();
                Some(Job(JobKind::SendFile(FileDownload {
                    source,
                    offset,
                    prefix_sha256,
                    state,
                    peer: Arc::clone(&self.peer),
                    audit: self.audit.clone(),
                })))
            }
            Err(err) => {
                fail(
                    &self.peer,
                    &self.audit,
                    Direction::Download,
                    &target,
                    None,
                    err.to_string(),
                )
                .await
            }
        }
    }

    fn new_download(&mut self) -> Arc<DownloadState> {
        let state = DownloadState::started();
        self.download = Some(Arc::clone(&state));
        state
    }

    /// The client cancels: the upload is dropped (its partial file removed unless resumable)
    /// and answered, or the running download is told to stop. A late cancel is ignored.
    async fn cancel(&mut self, reason: &str) -> Option<Job> {
        if !self.upload.is_idle() {
            return self.upload.cancel(reason, &self.peer, &self.audit).await;
        }
        if let Some(download) = &self.download {
            download.cancel();
        }
        None
    }

    /// The session ended: an upload still under way is logged as failed (its partial file
    /// goes as on a cancel: removed unless resumable).
    pub async fn end_session(&mut self) {
        self.upload.end_session(&self.peer, &self.audit).await;
    }
}

/// The direction and path a request names.
fn request_summary<'m>(msg: &Message<'m>) -> (Direction, &'m str) {
    match *msg {
        Message::PutFile { path, .. } | Message::MakeDir { path, .. } => (Direction::Upload, path),
        Message::Stat { path } | Message::GetFile { path, .. } | Message::GetTree { path } => {
            (Direction::Download, path)
        }
        _ => (Direction::Upload, ""),
    }
}

/// A client path on the server: empty or NUL-bearing paths are refused; `~` and `~/…` start
/// at the home directory, other relative paths at the session's cwd.
fn resolve(cwd: &Path, home: &Path, path: &str) -> Result<PathBuf, FileError> {
    if path.is_empty() || path.contains('\0') {
        return Err(FileError::BadPath(path.escape_debug().to_string()));
    }
    if path == "~" {
        return Ok(home.to_owned());
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return Ok(home.join(rest));
    }
    Ok(cwd.join(path))
}

async fn stat(target: PathBuf) -> Option<Job> {
    let result = tokio::fs::metadata(&target).await;
    match result {
        Ok(meta) if meta.is_dir() => reply(Reply::Stat(PathKind::Directory)),
        Ok(meta) if meta.is_file() => reply(Reply::Stat(PathKind::File)),
        Ok(_) => reply(Reply::Stat(PathKind::Other)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            reply(Reply::Stat(PathKind::Missing))
        }
        Err(err) => failed(FileError::Io {
            path: target,
            action: "inspect",
            source: err,
        }),
    }
}

/// Why a transfer the session did not finish failed.
const SESSION_ENDED: &str = "the session ended before the transfer did";

/// Where a transfer stands, for the log.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// About to start: nothing has moved yet.
    Start,
    /// The whole file moved, and this is its SHA-256.
    Done(&'a [u8; 32]),
    /// It failed (or was refused), for this reason.
    Failed(&'a str),
}

/// Records one transfer's start or end: who, which way, which file, how big, and (at its
/// end) its SHA-256 or why it failed; returns once the audit line is fsynced. `Err`: the
/// audit log could not record it, and the transfer must not go on. The single place where
/// transfers are logged (and audited).
pub async fn log_transfer(
    peer: &Peer,
    audit: &SessionAudit,
    direction: Direction,
    path: &Path,
    size: Option<u64>,
    outcome: Outcome<'_>,
) -> Result<(), AuditError> {
    let audit_outcome = match outcome {
        Outcome::Start => None,
        Outcome::Done(sha256) => Some(Ok(hex::encode(sha256))),
        Outcome::Failed(reason) => Some(Err(reason.to_owned())),
    };
    let logged = audit
        .transfer(
            direction.as_str(),
            &path.display().to_string(),
            size,
            audit_outcome,
        )
        .await;
    let size = size.map_or_else(|| "-".to_owned(), |s| s.to_string());
    match outcome {
        Outcome::Start => tracing::debug!(
            key = %peer.fingerprint,
            session = %peer.session_id,
            direction = direction.as_str(),
            path = %path.display(),
            size = %size,
            "file transfer starts"
        ),
        Outcome::Done(sha256) => tracing::info!(
            key = %peer.fingerprint,
            name = %peer.name,
            session = %peer.session_id,
            direction = direction.as_str(),
            path = %path.display(),
            size = %size,
            sha256 = %hex::encode(sha256),
            "file transfer"
        ),
        Outcome::Failed(reason) => tracing::warn!(
            key = %peer.fingerprint,
            name = %peer.name,
            session = %peer.session_id,
            direction = direction.as_str(),
            path = %path.display(),
            size = %size,
            reason = %reason,
            "file transfer failed"
        ),
    }
    logged
}

/// Sends what a job asks for. Long downloads interleave the session's keepalive Pings, so
/// the client's Pongs keep the session alive while it only listens.
pub async fn deliver<W: AsyncWrite + Unpin>(
    writer: &mut SecureWriter<W>,
    job: Job,
    keepalive: &mut Keepalive,
) -> Result<(), TransportError> {
    match job.0 {
        JobKind::Reply(answer) => send_reply(writer, answer).await,
        JobKind::SendFile(file) => file.send(writer, keepalive).await,
        JobKind::SendTree(tree) => tree.send(writer, keepalive).await,
    }
}

async fn send_reply<W: AsyncWrite + Unpin>(
    writer: &mut SecureWriter<W>,
    answer: Reply,
) -> Result<(), TransportError> {
    match answer {
        Reply::Stat(kind) => writer.send(&Message::StatResult(kind)).await,
        Reply::PutReady {
            offset,
            prefix_sha256,
        } => {
            writer
                .send(&Message::PutReady {
                    offset,
                    prefix_sha256,
                })
                .await
        }
        Reply::Done => writer.send(&Message::TransferDone).await,
        Reply::Failed(reason) => {
            writer
                .send(&Message::TransferFailed { reason: &reason })
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditLog, Who};
    use crate::server::policy::Policy;

    pub(super) async fn transfers(policy: Policy) -> Transfers {
        let peer = Peer {
            name: "test".into(),
            cert: None,
            fingerprint: "SHA256:test".into(),
            session_id: "00".into(),
            address: "127.0.0.1:1".into(),
            policy,
        };
        let who = Who {
            session: peer.session_id.clone(),
            peer: peer.address.clone(),
            key: peer.fingerprint.clone(),
            name: peer.name.clone(),
            cert: None,
        };
        let audit = AuditLog::disabled().session(who).await;
        Transfers::new(&peer, &audit, Path::new("/nonexistent-home"))
    }

    /// What a job would send, for the replies a test looks at.
    pub(super) fn answer(job: Option<Job>) -> String {
        match job.map(|job| job.0) {
            None => "none".into(),
            Some(JobKind::Reply(Reply::Stat(kind))) => format!("stat {kind:?}"),
            Some(JobKind::Reply(Reply::PutReady { offset, .. })) => format!("ready {offset}"),
            Some(JobKind::Reply(Reply::Done)) => "done".into(),
            Some(JobKind::Reply(Reply::Failed(reason))) => format!("failed {reason}"),
            Some(JobKind::SendFile(_)) => "send file".into(),
            Some(JobKind::SendTree(_)) => "send tree".into(),
        }
    }

    pub(super) fn put(path: &str, size: u64) -> Message<'_> {
        Message::PutFile {
            path,
            size,
            mode: 0o640,
            mtime: None,
            resume: false,
        }
    }

    #[tokio::test]
    async fn messages_out_of_order_are_protocol_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        let mut t = transfers(Policy::default()).await;
        assert!(t.handle(Message::FileData(b"x"), cwd).await.is_err());
        assert!(
            t.handle(Message::FileEnd { sha256: [0; 32] }, cwd)
                .await
                .is_err()
        );
        assert!(
            t.handle(Message::PutStart { offset: 0 }, cwd)
                .await
                .is_err()
        );
        t.handle(put("f", 10), cwd).await.unwrap();
        assert!(
            t.handle(Message::PutStart { offset: 3 }, cwd)
                .await
                .is_err()
        );
        let mut t = transfers(Policy::default()).await;
        assert!(t.handle(Message::Exec { line: "ls" }, cwd).await.is_err());
    }

    #[tokio::test]
    async fn no_files_keys_get_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        let (keys, _) = crate::keys::authorized::AuthorizedKeys::parse(&format!(
            "no-files {}",
            include_str!("../../../tests/fixtures/client_rsa.pub")
        ));
        let mut t = transfers(Policy::from_options(&keys.entries[0].options)).await;
        for request in [
            Message::Stat { path: "." },
            put("f", 1),
            Message::GetTree { path: "." },
        ] {
            let refused = answer(t.handle(request, cwd).await.unwrap());
            assert!(refused.contains("no-files"), "{refused}");
        }
        assert!(!cwd.join(".f.seashell-partial").exists());
    }

    #[test]
    fn client_paths_resolve_against_cwd_and_home() {
        let (cwd, home) = (Path::new("/srv/work"), Path::new("/home/u"));
        assert_eq!(
            resolve(cwd, home, "a/b").unwrap(),
            Path::new("/srv/work/a/b")
        );
        assert_eq!(resolve(cwd, home, "/etc/x").unwrap(), Path::new("/etc/x"));
        assert_eq!(resolve(cwd, home, "~").unwrap(), home);
        assert_eq!(resolve(cwd, home, "~/f").unwrap(), Path::new("/home/u/f"));
        assert!(resolve(cwd, home, "").is_err());
        assert!(resolve(cwd, home, "a\0b").is_err());
    }
}
