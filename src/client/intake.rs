//! The console reader task's part in downloads. For each FileInfo it passes on, the
//! transfer lends it the file's [`Incoming`] (sink and progress bar) through a [`Lend`], and
//! the reader task writes every FileData straight from the receive buffer into that sink,
//! with no copy and no hand-off per chunk; the FileEnd brings the file back to the transfer.
//! A file the transfer does not take, or whose write failed, has the rest of its data
//! dropped here.

use tokio::sync::oneshot;

use super::progress::FileBar;
use super::transfer::{FileInfo, Reply};
use crate::fileio::sink::FileSink;
use crate::proto::Message;

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

/// Where the reader task puts the data of the file being downloaded.
#[derive(Default)]
pub enum Intake {
    /// Between files: FileData is a protocol error.
    #[default]
    Idle,
    /// FileInfo was passed on; the transfer's answer comes with the first data.
    Asked(oneshot::Receiver<Incoming>),
    /// Writing into the file the transfer lent.
    Writing(Incoming),
    /// Dropping the data of a file the transfer did not take or whose write failed.
    Dropping,
}

impl Intake {
    /// Handles a transfer message from the server: `Ok(Some(reply))` is passed on to the
    /// transfer, `Ok(None)` was data written (or dropped) here, and `Err` names a message
    /// that is no transfer message or comes out of order.
    pub async fn take(&mut self, msg: &Message<'_>) -> Result<Option<Reply>, &'static str> {
        match *msg {
            Message::FileInfo {
                path,
                size,
                mode,
                mtime,
                offset,
            } => {
                let (lend, answer) = oneshot::channel();
                *self = Self::Asked(answer);
                let info = FileInfo {
                    path: path.to_owned(),
                    size,
                    mode,
                    mtime,
                    offset,
                };
                Ok(Some(Reply::FileInfo(info, Lend(lend))))
            }
            Message::FileData(data) => self.write(data).await,
            Message::FileEnd { sha256 } => {
                self.answered().await;
                let file = match std::mem::take(self) {
                    Self::Writing(incoming) => Some(incoming),
                    _ => None,
                };
                Ok(Some(Reply::End { sha256, file }))
            }
            _ => {
                *self = Self::Idle;
                Reply::from_message(msg).map(Some).ok_or(msg.name())
            }
        }
    }

    async fn write(&mut self, data: &[u8]) -> Result<Option<Reply>, &'static str> {
        self.answered().await;
        match self {
            Self::Idle | Self::Asked(_) => Err("FileData"),
            Self::Dropping => Ok(None),
            Self::Writing(incoming) => match incoming.sink.write(data).await {
                Ok(()) => {
                    incoming.bar.advance(data.len() as u64);
                    Ok(None)
                }
                Err(err) => {
                    *self = Self::Dropping;
                    Ok(Some(Reply::WriteFailed(err)))
                }
            },
        }
    }

    /// Waits for the transfer's answer to the last FileInfo, if it is still owed.
    async fn answered(&mut self) {
        if let Self::Asked(answer) = self {
            *self = match answer.await {
                Ok(incoming) => Self::Writing(incoming),
                Err(_) => Self::Dropping,
            };
        }
    }
}
