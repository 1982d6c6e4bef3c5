//! The file-transfer messages of a session as the client's tasks pass them around, owned:
//! a [`Request`] goes from the transfer to the console's writer task, which seals it (file
//! data where it was read), and a [`Reply`] comes from the console's reader task to the
//! transfer. A download's FileInfo carries a [`Lend`], through which the transfer hands the
//! reader task the file's [`Incoming`] (sink and bar) and gets it back with the FileEnd. The
//! wire forms are [`Message`]s (docs/PROTOCOL.md §6.4). These are the types both tasks
//! share; neither task's logic lives here.

use tokio::io::AsyncWrite;
use tokio::sync::oneshot;

use super::progress::FileBar;
use crate::fileio::FileError;
use crate::fileio::sink::FileSink;
use crate::framepool::FrameChunk;
use crate::proto::{DataKind, Message, OwnedMessage, PathKind};
use crate::transport::{SecureWriter, TransportError};

/// A transfer message the client sends (owned, for the writer task).
#[derive(Debug)]
pub enum Request {
    /// Any transfer message but an upload's data, as it goes on the wire.
    Message(OwnedMessage),
    /// Upload data (any length: sent as frames of at most `MAX_CHUNK`), sealed where it was
    /// read.
    Data(FrameChunk),
}

impl Request {
    /// Sends it as one frame (data sealed where it was read).
    pub async fn send<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut SecureWriter<W>,
    ) -> Result<(), TransportError> {
        match self {
            Self::Data(chunk) => writer.send_chunk(DataKind::FileData, chunk).await,
            Self::Message(msg) => writer.send(&msg.as_message()).await,
        }
    }

    /// Whether the server answers it with exactly one final reply.
    pub(super) fn expects_final(&self) -> bool {
        matches!(
            self,
            Self::Message(
                OwnedMessage::Stat { .. }
                    | OwnedMessage::PutFile { .. }
                    | OwnedMessage::GetFile { .. }
                    | OwnedMessage::GetTree { .. }
                    | OwnedMessage::MakeDir { .. }
            )
        )
    }
}

/// A file the server is about to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Relative path in a tree; empty for a single file.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Mode bits.
    pub mode: u32,
    /// Modification time.
    pub mtime: i64,
    /// Where its data starts.
    pub offset: u64,
}

/// A file being downloaded: where its data goes and the bar that shows it.
pub struct Incoming {
    /// The sink the data is written into.
    pub sink: FileSink,
    /// The file's progress bar.
    pub bar: FileBar,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Incoming")
    }
}

/// The transfer's answer to a FileInfo: [`Lend::lend`] the file, or drop this to have its
/// data dropped. The reader task reads nothing more from the server until it is answered.
pub struct Lend(oneshot::Sender<Incoming>);

impl Lend {
    /// A lend and the receiver on which the reader task awaits the answer.
    pub(super) fn channel() -> (Self, oneshot::Receiver<Incoming>) {
        let (sender, answer) = oneshot::channel();
        (Self(sender), answer)
    }

    /// Has the reader task write the file's data into `incoming`.
    pub fn lend(self, incoming: Incoming) {
        // A reader task that is gone has ended the session; the next reply says so.
        let _ = self.0.send(incoming);
    }
}

impl std::fmt::Debug for Lend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lend")
    }
}

/// A transfer message from the server (owned, from the reader task).
#[derive(Debug)]
pub enum Reply {
    /// The answer to Stat.
    Stat(PathKind),
    /// Ready for an upload's data.
    PutReady {
        /// Bytes the server already holds.
        offset: u64,
        /// Their SHA-256.
        prefix_sha256: [u8; 32],
    },
    /// A file follows: lend the console's reader task its [`Incoming`], or drop the
    /// [`Lend`] to have its data dropped.
    FileInfo(FileInfo, Lend),
    /// End of a downloaded file, with the file lent for it (`None` if it was not taken or
    /// its write failed).
    End {
        /// SHA-256 of the whole file, as the server read it.
        sha256: [u8; 32],
        /// The file the data went into.
        file: Option<Incoming>,
    },
    /// Writing the downloaded data failed; the rest of the file's data is dropped.
    WriteFailed(FileError),
    /// A directory of a downloaded tree.
    MakeDir {
        /// Relative path in the tree.
        path: String,
        /// Mode bits.
        mode: u32,
    },
    /// The request succeeded.
    Done,
    /// The request failed, with the server's reason.
    Failed(String),
}

impl Reply {
    /// The reply a server message carries, if it is a transfer message other than a file's
    /// FileInfo, FileData and FileEnd (which [`super::intake::Intake`] handles).
    pub(super) fn from_message(msg: &Message<'_>) -> Option<Self> {
        Some(match *msg {
            Message::StatResult(kind) => Self::Stat(kind),
            Message::PutReady {
                offset,
                prefix_sha256,
            } => Self::PutReady {
                offset,
                prefix_sha256,
            },
            Message::MakeDir { path, mode } => Self::MakeDir {
                path: path.to_owned(),
                mode,
            },
            Message::TransferDone => Self::Done,
            Message::TransferFailed { reason } => Self::Failed(reason.to_owned()),
            _ => return None,
        })
    }

    /// Whether it ends a request.
    pub(super) fn is_final(&self) -> bool {
        matches!(self, Self::Stat(_) | Self::Done | Self::Failed(_))
    }

    /// The name of the message it came from.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Stat(_) => "StatResult",
            Self::PutReady { .. } => "PutReady",
            Self::FileInfo(..) => "FileInfo",
            Self::End { .. } => "FileEnd",
            Self::WriteFailed(_) => "FileData",
            Self::MakeDir { .. } => "MakeDir",
            Self::Done => "TransferDone",
            Self::Failed(_) => "TransferFailed",
        }
    }
}
