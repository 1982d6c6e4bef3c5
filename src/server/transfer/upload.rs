//! The upload on the server, the console task's side of a transfer: PutFile, PutStart,
//! FileData and FileEnd, received into a partial file that is renamed into place only once
//! its size and SHA-256 check out (docs/PROTOCOL.md §6.4), and MakeDir, a tree upload's
//! directories. It answers with [`Job`]s for the output task; each upload's start is in the
//! audit log before its partial file is even created, and its end before TransferDone
//! ([`log_transfer`]). It never writes to the connection and knows nothing of downloads.

use std::path::{Path, PathBuf};

use super::{
    Direction, Job, OutOfOrder, Outcome, Reply, SESSION_ENDED, fail, failed, log_start,
    log_transfer, refused, reply,
};
use crate::audit::SessionAudit;
use crate::fileio::FileError;
use crate::fileio::partial::{Expected, PartialFile, Received};
use crate::fileio::sink::FileSink;
use crate::fileio::tree;
use crate::server::peer::Peer;

/// Where the session's upload stands.
#[derive(Default)]
pub(super) enum Upload {
    #[default]
    Idle,
    /// PutReady sent; waiting for PutStart (or a cancel).
    Ready(Box<Ready>),
    /// Receiving FileData until FileEnd (or a cancel).
    Receiving(Box<Receiving>),
    /// Failed and answered; dropping data until the client's FileEnd or TransferFailed.
    Discarding,
}

pub(super) struct Ready {
    partial: PartialFile,
    received: Received,
    plan: Plan,
}

pub(super) struct Receiving {
    partial: PartialFile,
    sink: FileSink,
    plan: Plan,
}

/// What PutFile announced.
#[derive(Clone, Copy)]
pub(super) struct Plan {
    pub(super) size: u64,
    pub(super) mode: u32,
    pub(super) mtime: Option<i64>,
}

impl Upload {
    /// Whether no upload is under way.
    pub(super) fn is_idle(&self) -> bool {
        matches!(self, Self::Idle)
    }

    /// PutFile: logs the start (refused if the audit log cannot), opens the partial file
    /// (kept, if `resume`, when it can be a prefix of the file) and answers PutReady with how
    /// much of it is there.
    pub(super) async fn put(
        &mut self,
        target: PathBuf,
        plan: Plan,
        resume: bool,
        peer: &Peer,
        audit: &SessionAudit,
    ) -> Option<Job> {
        let size = Some(plan.size);
        if let Err(reason) = log_start(peer, audit, Direction::Upload, &target, size).await {
            return failed(reason);
        }
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
                *self = Self::Ready(Box::new(Ready {
                    partial,
                    received,
                    plan,
                }));
                reply(answer)
            }
            Err(err) => failed_upload(peer, audit, &target, plan, err.to_string()).await,
        }
    }

    /// PutStart: the client sends from `offset`, 0 or the length PutReady offered.
    pub(super) async fn start(
        &mut self,
        offset: u64,
        peer: &Peer,
        audit: &SessionAudit,
    ) -> Result<Option<Job>, OutOfOrder> {
        let Self::Ready(ready) = std::mem::take(self) else {
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
                Err(err) => {
                    let target = partial.target().to_owned();
                    return Ok(self.discard(&target, plan, err, peer, audit).await);
                }
            }
        }
        match partial.sink(received, plan.size) {
            Ok(sink) => {
                *self = Self::Receiving(Box::new(Receiving {
                    partial,
                    sink,
                    plan,
                }));
                Ok(None)
            }
            Err(err) => {
                let target = partial.target().to_owned();
                Ok(self.discard(&target, plan, err, peer, audit).await)
            }
        }
    }

    /// FileData: the next bytes of the file.
    pub(super) async fn data(
        &mut self,
        data: &[u8],
        peer: &Peer,
        audit: &SessionAudit,
    ) -> Result<Option<Job>, OutOfOrder> {
        match self {
            Self::Receiving(receiving) => match receiving.sink.write(data).await {
                Ok(()) => Ok(None),
                Err(err) => {
                    let (target, plan) = (receiving.partial.target().to_owned(), receiving.plan);
                    Ok(self.discard(&target, plan, err, peer, audit).await)
                }
            },
            Self::Discarding => Ok(None),
            Self::Idle | Self::Ready(_) => Err(OutOfOrder("FileData")),
        }
    }

    /// FileEnd: the file is renamed into place if its size and `sha256` check out.
    pub(super) async fn end(
        &mut self,
        sha256: [u8; 32],
        peer: &Peer,
        audit: &SessionAudit,
    ) -> Result<Option<Job>, OutOfOrder> {
        match std::mem::take(self) {
            Self::Receiving(receiving) => {
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
                        let size = Some(plan.size);
                        let done = Outcome::Done(&sha256);
                        match log_transfer(peer, audit, Direction::Upload, &target, size, done)
                            .await
                        {
                            Ok(()) => reply(Reply::Done),
                            Err(err) => failed(refused(&target, &err)),
                        }
                    }
                    Err(err) => failed_upload(peer, audit, &target, plan, err.to_string()).await,
                })
            }
            Self::Discarding => Ok(None),
            Self::Idle | Self::Ready(_) => Err(OutOfOrder("FileEnd")),
        }
    }

    /// The client cancels: the upload is dropped (its partial file removed unless resumable)
    /// and answered. A late cancel is ignored.
    pub(super) async fn cancel(
        &mut self,
        reason: &str,
        peer: &Peer,
        audit: &SessionAudit,
    ) -> Option<Job> {
        match std::mem::take(self) {
            Self::Ready(ready) => {
                cancelled(peer, audit, ready.partial.target(), ready.plan, reason).await
            }
            Self::Receiving(receiving) => {
                let (target, plan) = (receiving.partial.target(), receiving.plan);
                cancelled(peer, audit, target, plan, reason).await
            }
            Self::Discarding | Self::Idle => None,
        }
    }

    /// The session ended: an upload still under way is logged as failed (its partial file
    /// goes as on a cancel: removed unless resumable).
    pub(super) async fn end_session(&mut self, peer: &Peer, audit: &SessionAudit) {
        let (target, plan) = match std::mem::take(self) {
            Self::Ready(ready) => (ready.partial.target().to_owned(), ready.plan),
            Self::Receiving(receiving) => (receiving.partial.target().to_owned(), receiving.plan),
            Self::Discarding | Self::Idle => return,
        };
        let ended = Outcome::Failed(SESSION_ENDED);
        let size = Some(plan.size);
        // A failure the log cannot record is counted as lost by the log.
        let _ = log_transfer(peer, audit, Direction::Upload, &target, size, ended).await;
    }

    /// Answers a failed upload now and drops the client's data until it ends the file.
    async fn discard(
        &mut self,
        target: &Path,
        plan: Plan,
        err: FileError,
        peer: &Peer,
        audit: &SessionAudit,
    ) -> Option<Job> {
        *self = Self::Discarding;
        failed_upload(peer, audit, target, plan, err.to_string()).await
    }
}

/// Logs and answers an upload the client cancelled.
async fn cancelled(
    peer: &Peer,
    audit: &SessionAudit,
    target: &Path,
    plan: Plan,
    reason: &str,
) -> Option<Job> {
    let reason = format!("{}: cancelled by the client: {reason}", target.display());
    failed_upload(peer, audit, target, plan, reason).await
}

/// Logs a failed upload and answers TransferFailed with `reason`.
async fn failed_upload(
    peer: &Peer,
    audit: &SessionAudit,
    target: &Path,
    plan: Plan,
    reason: String,
) -> Option<Job> {
    fail(
        peer,
        audit,
        Direction::Upload,
        target,
        Some(plan.size),
        reason,
    )
    .await
}

/// MakeDir: one directory of a tree upload.
pub(super) async fn make_dir(target: PathBuf, mode: u32) -> Option<Job> {
    match tree::make_dir(target, mode).await {
        Ok(()) => reply(Reply::Done),
        Err(err) => failed(err),
    }
}

#[cfg(test)]
mod tests {
    use crate::crypto;

    use crate::proto::Message;
    use crate::server::policy::Policy;
    use crate::server::transfer::tests::{answer, put, transfers};

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
        let sha256 = crypto::sha256(b"hello");
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
}
