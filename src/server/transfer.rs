//! File transfer on the server: the session's half of `seashell cp` and the REPL's
//! `put`/`get` (docs/PROTOCOL.md §6.4). The console task hands every transfer message to
//! [`Transfers::handle`], which keeps the state of an upload (received into a partial file,
//! renamed into place only after the SHA-256 check) and turns requests into [`Job`]s; the
//! output task runs each job with [`deliver`], streaming downloads with backpressure from the
//! socket. One transfer at a time, and never alongside a command (the session waits for the
//! command before it, as for Exec); `no-files` and restricted keys are refused.
//! Every transfer, refused, failed or done, goes through [`log_transfer`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::AsyncWrite;

use super::keepalive::Keepalive;
use super::peer::Peer;
use crate::audit::SessionAudit;
use crate::fileio::partial::{Expected, PartialFile, Received};
use crate::fileio::sink::FileSink;
use crate::fileio::source::{Piece, SourceFile};
use crate::fileio::tree::{TreeEntry, TreeWalk, make_dir};
use crate::fileio::{FileError, sha256_of_nothing};
use crate::proto::{DataKind, Message, PathKind};
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

/// Shared between the console (which may cancel) and the output task (which streams).
#[derive(Default)]
struct DownloadState {
    cancelled: AtomicBool,
    running: AtomicBool,
}

enum Upload {
    Idle,
    /// PutReady sent; waiting for PutStart (or a cancel).
    Ready(Box<Ready>),
    /// Receiving FileData until FileEnd (or a cancel).
    Receiving(Box<Receiving>),
    /// Failed and answered; dropping data until the client's FileEnd or TransferFailed.
    Discarding,
}

struct Ready {
    partial: PartialFile,
    received: Received,
    plan: Plan,
}

struct Receiving {
    partial: PartialFile,
    sink: FileSink,
    plan: Plan,
}

/// What PutFile announced.
#[derive(Clone, Copy)]
struct Plan {
    size: u64,
    mode: u32,
    mtime: Option<i64>,
}

/// Something the output task must send for a transfer.
pub struct Job(JobKind);

enum JobKind {
    Reply(Reply),
    SendFile {
        source: SourceFile,
        offset: u64,
        prefix_sha256: [u8; 32],
        state: Arc<DownloadState>,
        peer: Arc<Peer>,
        audit: SessionAudit,
    },
    SendTree {
        root: PathBuf,
        state: Arc<DownloadState>,
        peer: Arc<Peer>,
        audit: SessionAudit,
    },
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
        !matches!(self.upload, Upload::Idle)
            || self
                .download
                .as_ref()
                .is_some_and(|d| d.running.load(Ordering::Acquire))
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
                if !matches!(self.upload, Upload::Idle) {
                    return Err(OutOfOrder(msg.name()));
                }
                if let Err(denied) = self.peer.policy.check_files() {
                    let (direction, path) = request_summary(&msg);
                    let path = PathBuf::from(path);
                    log_transfer(
                        &self.peer,
                        &self.audit,
                        direction,
                        &path,
                        None,
                        Err(&denied.to_string()),
                    );
                    return Ok(failed(denied));
                }
                Ok(self.request(msg, cwd).await)
            }
            Message::PutStart { offset } => self.start(offset).await,
            Message::FileData(data) => self.data(data).await,
            Message::FileEnd { sha256 } => self.end(sha256).await,
            Message::TransferFailed { reason } => Ok(self.cancel(reason)),
            other => Err(OutOfOrder(other.name())),
        }
    }

    async fn request(&mut self, msg: Message<'_>, cwd: &Path) -> Option<Job> {
        let (direction, path) = request_summary(&msg);
        let target = match resolve(cwd, &self.home, path) {
            Ok(target) => target,
            Err(err) => {
                log_transfer(
                    &self.peer,
                    &self.audit,
                    direction,
                    Path::new(path),
                    None,
                    Err(&err.to_string()),
                );
                return failed(err);
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
            } => self.put(target, Plan { size, mode, mtime }, resume).await,
            Message::GetFile {
                offset,
                prefix_sha256,
                ..
            } => self.get(target, offset, prefix_sha256).await,
            Message::GetTree { .. } => {
                let state = self.new_download();
                Some(Job(JobKind::SendTree {
                    root: target,
                    state,
                    peer: Arc::clone(&self.peer),
                    audit: self.audit.clone(),
                }))
            }
            Message::MakeDir { mode, .. } => match make_dir(target, mode).await {
                Ok(()) => reply(Reply::Done),
                Err(err) => failed(err),
            },
            _ => failed("not a transfer request"),
        }
    }

    async fn put(&mut self, target: PathBuf, plan: Plan, resume: bool) -> Option<Job> {
        let opened = match PartialFile::open(target.clone(), resume).await {
            Ok((mut partial, received)) if received.len() > plan.size => {
                // Longer than the file: cannot be a prefix of it.
                partial.restart().await.map(|received| (partial, received))
            }
            other => other,
        };
        match opened {
            Ok((partial, received)) => {
                let answer = Reply::PutReady {
                    offset: received.len(),
                    prefix_sha256: received.prefix_sha256(),
                };
                self.upload = Upload::Ready(Box::new(Ready {
                    partial,
                    received,
                    plan,
                }));
                reply(answer)
            }
            Err(err) => self.fail(Direction::Upload, &target, Some(plan.size), err.to_string()),
        }
    }

    async fn get(&mut self, target: PathBuf, offset: u64, prefix_sha256: [u8; 32]) -> Option<Job> {
        match SourceFile::open(target.clone()).await {
            Ok(source) => {
                let state = self.new_download();
                Some(Job(JobKind::SendFile {
                    source,
                    offset,
                    prefix_sha256,
                    state,
                    peer: Arc::clone(&self.peer),
                    audit: self.audit.clone(),
                }))
            }
            Err(err) => self.fail(Direction::Download, &target, None, err.to_string()),
        }
    }

    fn new_download(&mut self) -> Arc<DownloadState> {
        let state = Arc::new(DownloadState::default());
        state.running.store(true, Ordering::Release);
        self.download = Some(Arc::clone(&state));
        state
    }

    async fn start(&mut self, offset: u64) -> Result<Option<Job>, OutOfOrder> {
        let Upload::Ready(ready) = std::mem::replace(&mut self.upload, Upload::Idle) else {
            return Err(OutOfOrder("PutStart"));
        };
        let Ready {
            mut partial,
            mut received,
            plan,
        } = *ready;
        if offset != 0 && offset != received.len() {
            return Err(OutOfOrder("PutStart"));
        }
        if offset == 0 && !received.is_empty() {
            match partial.restart().await {
                Ok(empty) => received = empty,
                Err(err) => return Ok(self.fail_upload(partial.target(), plan, err)),
            }
        }
        match partial.sink(received, plan.size) {
            Ok(sink) => {
                self.upload = Upload::Receiving(Box::new(Receiving {
                    partial,
                    sink,
                    plan,
                }));
                Ok(None)
            }
            Err(err) => Ok(self.fail_upload(partial.target(), plan, err)),
        }
    }

    async fn data(&mut self, data: &[u8]) -> Result<Option<Job>, OutOfOrder> {
        match &mut self.upload {
            Upload::Receiving(receiving) => match receiving.sink.write(data).await {
                Ok(()) => Ok(None),
                Err(err) => {
                    let (target, plan) = (receiving.partial.target().to_owned(), receiving.plan);
                    Ok(self.fail_upload(&target, plan, err))
                }
            },
            Upload::Discarding => Ok(None),
            Upload::Idle | Upload::Ready(_) => Err(OutOfOrder("FileData")),
        }
    }

    async fn end(&mut self, sha256: [u8; 32]) -> Result<Option<Job>, OutOfOrder> {
        match std::mem::replace(&mut self.upload, Upload::Idle) {
            Upload::Receiving(receiving) => {
                let Receiving {
                    partial,
                    sink,
                    plan,
                } = *receiving;
                let target = partial.target().to_owned();
                let expected = Expected {
                    size: plan.size,
                    sha256,
                    mode: plan.mode,
                    mtime: plan.mtime,
                };
                Ok(match partial.commit(sink, expected).await {
                    Ok(()) => {
                        log_transfer(
                            &self.peer,
                            &self.audit,
                            Direction::Upload,
                            &target,
                            Some(plan.size),
                            Ok(&sha256),
                        );
                        reply(Reply::Done)
                    }
                    Err(err) => {
                        self.fail(Direction::Upload, &target, Some(plan.size), err.to_string())
                    }
                })
            }
            Upload::Discarding => Ok(None),
            Upload::Idle | Upload::Ready(_) => Err(OutOfOrder("FileEnd")),
        }
    }

    /// The client cancels: the upload is dropped (its partial file removed unless resumable)
    /// and answered, or the running download is told to stop. A late cancel is ignored.
    fn cancel(&mut self, reason: &str) -> Option<Job> {
        match std::mem::replace(&mut self.upload, Upload::Idle) {
            Upload::Ready(ready) => {
                self.cancelled_upload(ready.partial.target(), ready.plan, reason)
            }
            Upload::Receiving(receiving) => {
                self.cancelled_upload(receiving.partial.target(), receiving.plan, reason)
            }
            Upload::Discarding => None,
            Upload::Idle => {
                if let Some(download) = &self.download {
                    download.cancelled.store(true, Ordering::Release);
                }
                None
            }
        }
    }

    /// The session ended: an upload still under way is logged as failed (its partial file
    /// goes as on a cancel: removed unless resumable).
    pub fn end_session(&mut self) {
        let (target, plan) = match std::mem::replace(&mut self.upload, Upload::Idle) {
            Upload::Ready(ready) => (ready.partial.target().to_owned(), ready.plan),
            Upload::Receiving(receiving) => (receiving.partial.target().to_owned(), receiving.plan),
            Upload::Discarding | Upload::Idle => return,
        };
        log_transfer(
            &self.peer,
            &self.audit,
            Direction::Upload,
            &target,
            Some(plan.size),
            Err(SESSION_ENDED),
        );
    }

    /// Logs a failed transfer and answers TransferFailed with `reason`.
    fn fail(
        &self,
        direction: Direction,
        target: &Path,
        size: Option<u64>,
        reason: String,
    ) -> Option<Job> {
        log_transfer(
            &self.peer,
            &self.audit,
            direction,
            target,
            size,
            Err(&reason),
        );
        failed(reason)
    }

    fn cancelled_upload(&self, target: &Path, plan: Plan, reason: &str) -> Option<Job> {
        self.fail(
            Direction::Upload,
            target,
            Some(plan.size),
            format!("{}: cancelled by the client: {reason}", target.display()),
        )
    }

    /// Answers a failed upload now and drops the client's data until it ends the file.
    fn fail_upload(&mut self, target: &Path, plan: Plan, err: FileError) -> Option<Job> {
        self.upload = Upload::Discarding;
        self.fail(Direction::Upload, target, Some(plan.size), err.to_string())
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

/// Records one transfer: who, which way, which file, how big, and its SHA-256 or why it
/// failed. The single place where transfers are logged (and audited).
pub fn log_transfer(
    peer: &Peer,
    audit: &SessionAudit,
    direction: Direction,
    path: &Path,
    size: Option<u64>,
    outcome: Result<&[u8; 32], &str>,
) {
    let (audit, audit_path, audit_outcome) = (
        audit.clone(),
        path.display().to_string(),
        outcome.map(super::hex_id).map_err(str::to_owned),
    );
    tokio::spawn(async move {
        audit
            .transfer(direction.as_str(), &audit_path, size, audit_outcome)
            .await;
    });
    let size = size.map_or_else(|| "-".to_owned(), |s| s.to_string());
    match outcome {
        Ok(sha256) => tracing::info!(
            key = %peer.fingerprint,
            name = %peer.name,
            session = %peer.session_id,
            direction = direction.as_str(),
            path = %path.display(),
            size = %size,
            sha256 = %super::hex_id(sha256),
            "file transfer"
        ),
        Err(reason) => tracing::warn!(
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
        JobKind::SendFile {
            source,
            offset,
            prefix_sha256,
            state,
            peer,
            audit,
        } => {
            let path = source.path().to_owned();
            let size = source.size();
            let sent =
                send_file(writer, source, offset, prefix_sha256, "", &state, keepalive).await;
            state.running.store(false, Ordering::Release);
            finish_download(writer, &peer, &audit, &path, Some(size), sent).await
        }
        JobKind::SendTree {
            root,
            state,
            peer,
            audit,
        } => {
            let sent = send_tree(writer, &root, &state, &peer, &audit, keepalive).await;
            state.running.store(false, Ordering::Release);
            finish_download(writer, &peer, &audit, &root, None, sent).await
        }
    }
}

/// How a download ended, when the connection outlived it (a dead connection is the
/// [`TransportError`] beside it).
enum Sent {
    /// The whole file went out, and this was its SHA-256.
    File([u8; 32]),
    /// The whole tree went out (each of its files was logged as it went).
    Tree,
    /// It stopped short, on a file error or the client's cancel: the reason for
    /// TransferFailed.
    Failed(String),
}

/// Ends a download: logs it (a file's SHA-256; a failure's reason; or that the session ended
/// under it, the `Err`) and answers TransferDone or TransferFailed. A tree's files were
/// logged one by one as they went, so its success ([`Sent::Tree`]) adds no event.
async fn finish_download<W: AsyncWrite + Unpin>(
    writer: &mut SecureWriter<W>,
    peer: &Peer,
    audit: &SessionAudit,
    path: &Path,
    size: Option<u64>,
    sent: Result<Sent, TransportError>,
) -> Result<(), TransportError> {
    let sent = sent.inspect_err(|_| {
        log_transfer(
            peer,
            audit,
            Direction::Download,
            path,
            size,
            Err(SESSION_ENDED),
        );
    })?;
    let answer = match sent {
        Sent::File(sha256) => {
            log_transfer(peer, audit, Direction::Download, path, size, Ok(&sha256));
            Reply::Done
        }
        Sent::Tree => Reply::Done,
        Sent::Failed(reason) => {
            log_transfer(peer, audit, Direction::Download, path, size, Err(&reason));
            Reply::Failed(reason)
        }
    };
    send_reply(writer, answer).await
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

/// Streams one file: FileInfo, FileData…, FileEnd. Ends in [`Sent::File`], or in
/// [`Sent::Failed`] on a file error or a cancel; the `Err` is a dead connection.
async fn send_file<W: AsyncWrite + Unpin>(
    writer: &mut SecureWriter<W>,
    source: SourceFile,
    offset: u64,
    prefix_sha256: [u8; 32],
    rel: &str,
    state: &DownloadState,
    keepalive: &mut Keepalive,
) -> Result<Sent, TransportError> {
    let (size, mode, mtime) = (source.size(), source.mode(), source.mtime());
    let mut stream = source.stream(offset, prefix_sha256);
    loop {
        if state.cancelled.load(Ordering::Acquire) {
            return Ok(Sent::Failed("cancelled by the client".to_owned()));
        }
        match stream.next().await {
            Some(Ok(Piece::Start(start))) => {
                writer
                    .send(&Message::FileInfo {
                        path: rel,
                        size,
                        mode,
                        mtime,
                        offset: start,
                    })
                    .await?;
            }
            Some(Ok(Piece::Data(mut chunk))) => {
                keepalive.send_if_due(writer).await?;
                writer.send_chunk(DataKind::FileData, &mut chunk).await?;
            }
            Some(Ok(Piece::End(sha256))) => {
                writer.send(&Message::FileEnd { sha256 }).await?;
                return Ok(Sent::File(sha256));
            }
            Some(Err(err)) => return Ok(Sent::Failed(err.to_string())),
            None => return Ok(Sent::Failed("the file reader stopped".to_owned())),
        }
    }
}

/// Streams a tree: MakeDir for each directory (the root as `""`), then each file with its
/// path relative to the root. The first error ends the tree; [`Sent::Tree`] if there was none.
async fn send_tree<W: AsyncWrite + Unpin>(
    writer: &mut SecureWriter<W>,
    root: &Path,
    state: &DownloadState,
    peer: &Peer,
    audit: &SessionAudit,
    keepalive: &mut Keepalive,
) -> Result<Sent, TransportError> {
    let mut walk = TreeWalk::start(root.to_owned());
    while let Some(entry) = walk.next().await {
        if state.cancelled.load(Ordering::Acquire) {
            return Ok(Sent::Failed("cancelled by the client".to_owned()));
        }
        match entry {
            Ok(TreeEntry::Dir { rel, mode }) => {
                writer.send(&Message::MakeDir { path: &rel, mode }).await?;
            }
            Ok(TreeEntry::File { rel, path }) => {
                let source = match SourceFile::open(path).await {
                    Ok(source) => source,
                    Err(err) => return Ok(Sent::Failed(err.to_string())),
                };
                let (path, size) = (source.path().to_owned(), source.size());
                let nothing = sha256_of_nothing();
                match send_file(writer, source, 0, nothing, &rel, state, keepalive).await? {
                    Sent::File(sha256) => {
                        log_transfer(
                            peer,
                            audit,
                            Direction::Download,
                            &path,
                            Some(size),
                            Ok(&sha256),
                        );
                    }
                    failed => return Ok(failed),
                }
            }
            Ok(TreeEntry::Skipped { rel, kind }) => {
                tracing::debug!(root = %root.display(), %rel, "tree download skips a {kind}");
            }
            Err(err) => return Ok(Sent::Failed(err.to_string())),
        }
    }
    Ok(Sent::Tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditLog, Who};
    use crate::server::policy::Policy;
    use sha2::{Digest, Sha256};

    async fn transfers(policy: Policy) -> Transfers {
        let peer = Peer {
            name: "test".into(),
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
        };
        let audit = AuditLog::disabled().session(who).await;
        Transfers::new(&peer, &audit, Path::new("/nonexistent-home"))
    }

    /// What a job would send, for the replies a test looks at.
    fn answer(job: Option<Job>) -> String {
        match job.map(|job| job.0) {
            None => "none".into(),
            Some(JobKind::Reply(Reply::Stat(kind))) => format!("stat {kind:?}"),
            Some(JobKind::Reply(Reply::PutReady { offset, .. })) => format!("ready {offset}"),
            Some(JobKind::Reply(Reply::Done)) => "done".into(),
            Some(JobKind::Reply(Reply::Failed(reason))) => format!("failed {reason}"),
            Some(JobKind::SendFile { .. }) => "send file".into(),
            Some(JobKind::SendTree { .. }) => "send tree".into(),
        }
    }

    fn put(path: &str, size: u64) -> Message<'_> {
        Message::PutFile {
            path,
            size,
            mode: 0o640,
            mtime: None,
            resume: false,
        }
    }

    #[tokio::test]
    async fn an_upload_is_renamed_only_after_its_hash_checks_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = transfers(Policy::default()).await;
        let cwd = dir.path();
        assert_eq!(answer(t.handle(put("f", 5), cwd).await.unwrap()), "ready 0");
        assert!(t.busy());
        assert!(
            t.handle(Message::Stat { path: "f" }, cwd).await.is_err(),
            "one at a time"
        );
        assert_eq!(
            answer(
                t.handle(Message::PutStart { offset: 0 }, cwd)
                    .await
                    .unwrap()
            ),
            "none"
        );
        t.handle(Message::FileData(b"hello"), cwd).await.unwrap();
        let sha256 = Sha256::digest(b"hello").into();
        let done = t.handle(Message::FileEnd { sha256 }, cwd).await.unwrap();
        assert_eq!(answer(done), "done");
        assert_eq!(std::fs::read(cwd.join("f")).unwrap(), b"hello");
        assert!(!t.busy());

        assert_eq!(answer(t.handle(put("g", 5), cwd).await.unwrap()), "ready 0");
        t.handle(Message::PutStart { offset: 0 }, cwd)
            .await
            .unwrap();
        t.handle(Message::FileData(b"hellO"), cwd).await.unwrap();
        let failed = answer(t.handle(Message::FileEnd { sha256 }, cwd).await.unwrap());
        assert!(failed.contains("SHA-256 mismatch"), "{failed}");
        assert!(!cwd.join("g").exists() && !cwd.join(".g.seashell-partial").exists());
    }

    #[tokio::test]
    async fn a_failed_upload_is_answered_once_and_its_data_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = transfers(Policy::default()).await;
        let cwd = dir.path();
        t.handle(put("f", 2), cwd).await.unwrap();
        t.handle(Message::PutStart { offset: 0 }, cwd)
            .await
            .unwrap();
        let failed = answer(t.handle(Message::FileData(b"too long"), cwd).await.unwrap());
        assert!(failed.contains("more data"), "{failed}");
        assert!(!cwd.join(".f.seashell-partial").exists());
        let more = t.handle(Message::FileData(b"x"), cwd).await.unwrap();
        assert_eq!(answer(more), "none");
        let end = t
            .handle(Message::FileEnd { sha256: [0; 32] }, cwd)
            .await
            .unwrap();
        assert_eq!(answer(end), "none", "already answered");
        assert!(!t.busy());
        let next = t.handle(Message::Stat { path: "." }, cwd).await.unwrap();
        assert_eq!(answer(next), "stat Directory");
    }

    #[tokio::test]
    async fn a_cancelled_upload_is_removed_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = transfers(Policy::default()).await;
        let cwd = dir.path();
        t.handle(put("f", 10), cwd).await.unwrap();
        assert!(cwd.join(".f.seashell-partial").exists());
        let cancel = Message::TransferFailed { reason: "bye" };
        let failed = answer(t.handle(cancel, cwd).await.unwrap());
        assert!(failed.contains("cancelled by the client: bye"), "{failed}");
        assert!(!cwd.join(".f.seashell-partial").exists());
        assert_eq!(
            answer(t.handle(cancel, cwd).await.unwrap()),
            "none",
            "late cancel"
        );
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
            include_str!("../../tests/fixtures/client_rsa.pub")
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
