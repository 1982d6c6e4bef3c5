//! Sending one file: a reader thread reads exactly the size seen at open straight into
//! frame buffers ([`FramePool`]), hashing as it goes, and hands them over a bounded channel
//! to be sealed where they lie. To resume, it
//! first hashes the bytes the receiver says it holds and starts after them only if their
//! SHA-256 matches; otherwise it starts over from byte 0.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::crypto::Sha256;
use tokio::sync::mpsc;

use super::{BLOCK, FileError, blocking, mode_bits, mtime_secs};
use crate::framepool::{FrameChunk, FramePool};
use crate::proto::record::MAX_CHUNK;

/// How many frames the reader thread may read ahead of the network (1 MiB).
const FRAMES_IN_FLIGHT: usize = 16;

/// A regular file opened for sending, with what was seen at open.
pub struct SourceFile {
    path: PathBuf,
    file: File,
    size: u64,
    mode: u32,
    mtime: i64,
}

/// One step of a [`FileStream`].
#[derive(Debug)]
pub enum Piece {
    /// First: where the data starts (the resume offset if the prefix matched, else 0).
    Start(u64),
    /// The next bytes (at most one frame's; never empty).
    Data(FrameChunk),
    /// Last: SHA-256 of the whole file, from byte 0.
    End([u8; 32]),
}

/// The chunks of a file being sent.
pub struct FileStream {
    pieces: mpsc::Receiver<Result<Piece, FileError>>,
}

impl SourceFile {
    /// Opens `path` (following a symlink) and checks that it is a regular file. The open is
    /// non-blocking so a FIFO cannot hang it.
    pub async fn open(path: PathBuf) -> Result<Self, FileError> {
        blocking(move || {
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                .open(&path)
                .map_err(|err| FileError::io(&path, "open", err))?;
            let meta = file
                .metadata()
                .map_err(|err| FileError::io(&path, "inspect", err))?;
            if meta.is_dir() {
                return Err(FileError::IsDirectory(path));
            }
            if !meta.is_file() {
                return Err(FileError::NotRegular(path));
            }
            Ok(Self {
                size: meta.len(),
                mode: mode_bits(&meta),
                mtime: mtime_secs(&meta),
                path,
                file,
            })
        })
        .await
    }

    /// The path it was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size at open: exactly this many bytes are sent.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its mode bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// Its modification time, in seconds since the Unix epoch.
    pub fn mtime(&self) -> i64 {
        self.mtime
    }

    /// Starts the reader thread. The receiver holds `offset` bytes hashing to
    /// `prefix_sha256` (0 and the hash of nothing for a fresh transfer).
    pub fn stream(self, offset: u64, prefix_sha256: [u8; 32]) -> FileStream {
        let (tx, pieces) = mpsc::channel(FRAMES_IN_FLIGHT);
        tokio::task::spawn_blocking(move || {
            let mut source = self;
            if let Err(err) = source.produce(offset, prefix_sha256, &tx) {
                let _ = tx.blocking_send(Err(err));
            }
        });
        FileStream { pieces }
    }

    /// Sends Start, the data and End; stops quietly when the consumer is gone.
    fn produce(
        &mut self,
        offset: u64,
        prefix_sha256: [u8; 32],
        tx: &mpsc::Sender<Result<Piece, FileError>>,
    ) -> Result<(), FileError> {
        let (start, mut hasher) = self.resume_point(offset, prefix_sha256)?;
        if tx.blocking_send(Ok(Piece::Start(start))).is_err() {
            return Ok(());
        }
        let pool = FramePool::new();
        let mut remaining = self.size - start;
        while remaining > 0 {
            let want = usize::try_from(remaining).map_or(MAX_CHUNK, |r| r.min(MAX_CHUNK));
            let mut frame = pool.take();
            let data = frame.payload_mut().get_mut(..want).unwrap_or_default();
            self.fill(data)?;
            hasher.update(&*data);
            remaining -= want as u64;
            if tx
                .blocking_send(Ok(Piece::Data(pool.chunk(frame, want))))
                .is_err()
            {
                return Ok(());
            }
        }
        let _ = tx.blocking_send(Ok(Piece::End(hasher.finish())));
        Ok(())
    }

    /// Where to start, and the hash of the bytes before it.
    fn resume_point(
        &mut self,
        offset: u64,
        prefix_sha256: [u8; 32],
    ) -> Result<(u64, Sha256), FileError> {
        let mut hasher = Sha256::new();
        if offset == 0 || offset > self.size {
            return Ok((0, hasher));
        }
        let mut buf = vec![0u8; BLOCK];
        let mut left = offset;
        while left > 0 {
            let want = usize::try_from(left).map_or(BLOCK, |l| l.min(BLOCK));
            let chunk = buf.get_mut(..want).unwrap_or_default();
            self.fill(chunk)?;
            hasher.update(&*chunk);
            left -= want as u64;
        }
        if hasher.clone().finish() == prefix_sha256 {
            return Ok((offset, hasher));
        }
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|err| FileError::io(&self.path, "read", err))?;
        Ok((0, Sha256::new()))
    }

    /// Fills `buf` completely; an early end of file means the file shrank.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), FileError> {
        let mut filled = 0;
        while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
            match self.file.read(rest) {
                Ok(0) => return Err(FileError::Shrank(self.path.clone())),
                Ok(n) => filled += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(FileError::io(&self.path, "read", err)),
            }
        }
        Ok(())
    }
}

impl FileStream {
    /// The next piece; `None` after End or an error.
    pub async fn next(&mut self) -> Option<Result<Piece, FileError>> {
        self.pieces.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto;

    async fn collect(
        source: SourceFile,
        offset: u64,
        prefix: [u8; 32],
    ) -> (u64, Vec<u8>, [u8; 32]) {
        let mut stream = source.stream(offset, prefix);
        let Some(Ok(Piece::Start(start))) = stream.next().await else {
            panic!("no start")
        };
        let mut data = Vec::new();
        loop {
            match stream.next().await {
                Some(Ok(Piece::Data(chunk))) => {
                    assert!(!chunk.is_empty() && chunk.len() <= MAX_CHUNK);
                    data.extend_from_slice(chunk.data());
                }
                Some(Ok(Piece::End(sha))) => return (start, data, sha),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn streams_in_chunks_and_resumes_only_on_a_matching_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..(BLOCK * 2 + 7)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let whole: [u8; 32] = crypto::sha256(&content);

        let source = SourceFile::open(path.clone()).await.unwrap();
        assert_eq!(source.size(), content.len() as u64);
        let (start, data, sha) = collect(source, 0, super::super::sha256_of_nothing()).await;
        assert_eq!(
            (start, data.as_slice(), sha),
            (0, content.as_slice(), whole)
        );

        let prefix: [u8; 32] = crypto::sha256(&content[..1000]);
        let source = SourceFile::open(path.clone()).await.unwrap();
        let (start, data, sha) = collect(source, 1000, prefix).await;
        assert_eq!(
            (start, data.as_slice(), sha),
            (1000, &content[1000..], whole)
        );

        let source = SourceFile::open(path.clone()).await.unwrap();
        let (start, data, _) = collect(source, 1000, [0; 32]).await;
        assert_eq!(
            (start, data.len()),
            (0, content.len()),
            "wrong prefix: from 0"
        );

        let source = SourceFile::open(path).await.unwrap();
        let past_end = content.len() as u64 + 1;
        let (start, _, _) = collect(source, past_end, prefix).await;
        assert_eq!(start, 0);
    }

    #[tokio::test]
    async fn directories_and_fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = SourceFile::open(dir.path().to_owned()).await.err();
        assert!(matches!(err, Some(FileError::IsDirectory(_))), "{err:?}");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = SourceFile::open(fifo).await.err();
        assert!(matches!(err, Some(FileError::NotRegular(_))), "{err:?}");
    }
}
