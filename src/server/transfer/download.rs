//! The download on the server, the output task's side of a transfer: streams a file
//! (FileInfo, FileData…, FileEnd, from the offset the client resumes at) or a tree (MakeDir
//! for each directory, then each file) with backpressure from the socket, stops at the
//! client's cancel, and ends each download in [`log_transfer`] (its end fsynced in the audit
//! log, a tree's every file too) and then TransferDone or TransferFailed (docs/PROTOCOL.md
//! §6.4); its start was logged before the job was made. It never reads client messages (the console
//! task decides what to send and may cancel) and knows nothing of uploads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::AsyncWrite;

use super::{Direction, Outcome, Reply, SESSION_ENDED, log_transfer, refused, send_reply};
use crate::audit::SessionAudit;
use crate::fileio::sha256_of_nothing;
use crate::fileio::source::{Piece, SourceFile};
use crate::fileio::tree::{TreeEntry, TreeWalk};
use crate::proto::{DataKind, Message};
use crate::server::keepalive::Keepalive;
use crate::server::peer::Peer;
use crate::transport::{SecureWriter, TransportError};

/// Shared between the console (which may cancel) and the output task (which streams).
#[derive(Default)]
pub(super) struct DownloadState {
    cancelled: AtomicBool,
    running: AtomicBool,
}

impl DownloadState {
    /// A download about to be sent: running, not cancelled.
    pub(super) fn started() -> Arc<Self> {
        let state = Arc::new(Self::default());
        state.running.store(true, Ordering::Release);
        state
    }

    /// Whether the output task is still sending it.
    pub(super) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The client cancelled: the stream stops before its next piece.
    pub(super) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn finished(&self) {
        self.running.store(false, Ordering::Release);
    }
}

/// GetFile: one file to send, from `offset` if the client's first `offset` bytes hash to
/// `prefix_sha256` (from the start if not).
pub(super) struct FileDownload {
    pub(super) source: SourceFile,
    pub(super) offset: u64,
    pub(super) prefix_sha256: [u8; 32],
    pub(super) state: Arc<DownloadState>,
    pub(super) peer: Arc<Peer>,
    pub(super) audit: SessionAudit,
}

impl FileDownload {
    /// Sends the file, then TransferDone or TransferFailed.
    pub(super) async fn send<W: AsyncWrite + Unpin>(
        self,
        writer: &mut SecureWriter<W>,
        keepalive: &mut Keepalive,
    ) -> Result<(), TransportError> {
        let Self {
            source,
            offset,
            prefix_sha256,
            state,
            peer,
            audit,
        } = self;
        let path = source.path().to_owned();
        let size = source.size();
        let sent = send_file(writer, source, offset, prefix_sha256, "", &state, keepalive).await;
        state.finished();
        finish_download(writer, &peer, &audit, &path, Some(size), sent).await
    }
}

/// GetTree: a directory to send with everything in it.
pub(super) struct TreeDownload {
    pub(super) root: PathBuf,
    pub(super) state: Arc<DownloadState>,
    pub(super) peer: Arc<Peer>,
    pub(super) audit: SessionAudit,
}

impl TreeDownload {
    /// Sends the tree, then TransferDone or TransferFailed.
    pub(super) async fn send<W: AsyncWrite + Unpin>(
        self,
        writer: &mut SecureWriter<W>,
        keepalive: &mut Keepalive,
    ) -> Result<(), TransportError> {
        let Self {
            root,
            state,
            peer,
            audit,
        } = self;
        let sent = send_tree(writer, &root, &state, &peer, &audit, keepalive).await;
        state.finished();
        finish_download(writer, &peer, &audit, &root, None, sent).await
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
    let sent = match sent {
        Ok(sent) => sent,
        Err(err) => {
            let ended = Outcome::Failed(SESSION_ENDED);
            // A failure the log cannot record is counted as lost by the log.
            let _ = log_transfer(peer, audit, Direction::Download, path, size, ended).await;
            return Err(err);
        }
    };
    let answer = match sent {
        Sent::File(sha256) => {
            let done = Outcome::Done(&sha256);
            match log_transfer(peer, audit, Direction::Download, path, size, done).await {
                Ok(()) => Reply::Done,
                Err(err) => Reply::Failed(refused(path, &err)),
            }
        }
        Sent::Tree => Reply::Done,
        Sent::Failed(reason) => {
            let failed = Outcome::Failed(&reason);
            let _ = log_transfer(peer, audit, Direction::Download, path, size, failed).await;
            Reply::Failed(reason)
        }
    };
    send_reply(writer, answer).await
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
        if state.is_cancelled() {
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
        if state.is_cancelled() {
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
                        let done = Outcome::Done(&sha256);
                        let size = Some(size);
                        let logged =
                            log_transfer(peer, audit, Direction::Download, &path, size, done).await;
                        if let Err(err) = logged {
                            return Ok(Sent::Failed(refused(&path, &err)));
                        }
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
