//! The console reader task's part in downloads. For each FileInfo it passes on, the
//! transfer lends it the file's [`Incoming`] (sink and progress bar) through a [`Lend`], and
//! the reader task writes every FileData straight from the receive buffer into that sink,
//! with no copy and no hand-off per chunk; the FileEnd brings the file back to the transfer.
//! A file the transfer does not take, or whose write failed, has the rest of its data
//! dropped here.

use tokio::sync::oneshot;

use super::transfer_msg::{FileInfo, Incoming, Lend, Reply};
use crate::proto::Message;

/// Where the reader task puts the data of the file being downloaded.
#[derive(Default)]
pub enum Intake {
    /// Between files: FileData and FileEnd are protocol errors.
    #[default]
    Idle,
    /// FileInfo was passed on; the transfer's answer is awaited when the file's first data,
    /// or its end, arrives.
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
                let (lend, answer) = Lend::channel();
                *self = Self::Asked(answer);
                let info = FileInfo {
                    path: path.to_owned(),
                    size,
                    mode,
                    mtime,
                    offset,
                };
                Ok(Some(Reply::FileInfo(info, lend)))
            }
            Message::FileData(data) => self.write(data).await,
            Message::FileEnd { sha256 } => {
                self.answered().await;
                let file = match std::mem::take(self) {
                    Self::Idle | Self::Asked(_) => return Err("FileEnd"),
                    Self::Writing(incoming) => Some(incoming),
                    Self::Dropping => None,
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

#[cfg(test)]
mod tests {
    use crate::crypto;

    use super::*;
    use crate::client::progress::Progress;
    use crate::fileio::FileError;
    use crate::fileio::partial::{Expected, PartialFile};

    fn file_info(size: u64) -> Message<'static> {
        Message::FileInfo {
            path: "",
            size,
            mode: 0o640,
            mtime: 0,
            offset: 0,
        }
    }

    async fn take(intake: &mut Intake, msg: Message<'_>) -> Result<Option<Reply>, &'static str> {
        intake.take(&msg).await
    }

    /// Passes a FileInfo on and lends a fresh partial file for `target` in answer.
    async fn lend(intake: &mut Intake, target: &std::path::Path, size: u64) -> PartialFile {
        let Ok(Some(Reply::FileInfo(info, lend))) = take(intake, file_info(size)).await else {
            panic!("no FileInfo reply")
        };
        assert_eq!(info.size, size);
        let (partial, received) = PartialFile::open(target.to_owned(), false).await.unwrap();
        let sink = partial.sink(received, size).unwrap();
        let bar = Progress::on_stderr().file("f", size, 0);
        lend.lend(Incoming { sink, bar });
        partial
    }

    /// More data is dropped without a reply, and the end comes without a file.
    async fn the_rest_is_dropped(intake: &mut Intake) {
        assert!(matches!(
            take(intake, Message::FileData(b"abc")).await,
            Ok(None)
        ));
        let end = take(intake, Message::FileEnd { sha256: [0; 32] }).await;
        assert!(
            matches!(end, Ok(Some(Reply::End { file: None, .. }))),
            "{end:?}"
        );
    }

    #[tokio::test]
    async fn a_lent_file_gets_the_data_and_comes_back_with_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let mut intake = Intake::default();
        let partial = lend(&mut intake, &target, 11).await;
        for data in [&b"hello "[..], b"world"] {
            assert!(matches!(
                take(&mut intake, Message::FileData(data)).await,
                Ok(None)
            ));
        }
        let sha256: [u8; 32] = crypto::sha256(b"hello world");
        let Ok(Some(Reply::End {
            sha256: got,
            file: Some(file),
        })) = take(&mut intake, Message::FileEnd { sha256 }).await
        else {
            panic!("no FileEnd with the file")
        };
        assert_eq!(got, sha256);
        let expected = Expected {
            size: 11,
            sha256,
            mode: 0o640,
            mtime: None,
        };
        partial.commit(file.sink, expected).await.unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello world");
        assert!(matches!(intake, Intake::Idle));
    }

    #[tokio::test]
    async fn the_data_of_a_file_not_taken_is_dropped() {
        let mut intake = Intake::default();
        let Ok(Some(Reply::FileInfo(_, lend))) = take(&mut intake, file_info(3)).await else {
            panic!("no FileInfo reply")
        };
        drop(lend);
        the_rest_is_dropped(&mut intake).await;
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_once_and_the_rest_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut intake = Intake::default();
        let _partial = lend(&mut intake, &dir.path().join("f"), 3).await;
        let failed = take(&mut intake, Message::FileData(b"too long")).await;
        assert!(
            matches!(
                failed,
                Ok(Some(Reply::WriteFailed(FileError::TooMuchData(_))))
            ),
            "{failed:?}"
        );
        the_rest_is_dropped(&mut intake).await;
    }

    #[tokio::test]
    async fn data_or_an_end_outside_a_file_is_a_protocol_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut intake = Intake::default();
        assert_eq!(
            take(&mut intake, Message::FileData(b"x")).await.err(),
            Some("FileData")
        );
        let end = take(&mut intake, Message::FileEnd { sha256: [0; 32] }).await;
        assert_eq!(end.err(), Some("FileEnd"));

        let _partial = lend(&mut intake, &dir.path().join("f"), 3).await;
        let failed = take(&mut intake, Message::TransferFailed { reason: "gone" }).await;
        assert!(matches!(failed, Ok(Some(Reply::Failed(_)))), "{failed:?}");
        assert_eq!(
            take(&mut intake, Message::FileData(b"x")).await.err(),
            Some("FileData")
        );
        assert_eq!(
            take(&mut intake, Message::Exec { line: "ls" }).await.err(),
            Some("Exec")
        );
    }
}
