//! How received bytes reach the disk. A [`FileSink`] copies each chunk from the network into
//! a [`BLOCK`]-sized buffer aligned for direct I/O; full blocks go in order through bounded
//! channels to a hashing thread and then to a writer thread, so that receiving, hashing and
//! the disk work at the same time. On a local disk file system (ext4, XFS, Btrfs, F2FS) the
//! writer uses `O_DIRECT`: a block goes from our buffer to the disk without a second copy
//! into the page cache, a large transfer does not flood the cache, and the sync before the
//! rename finds little left to do. Elsewhere (NFS, SMB, FUSE, tmpfs: a direct write to a
//! file server is a synchronous round trip), where direct I/O is refused, and for a start or
//! an end off a 4 KiB boundary, the writer uses ordinary writes. Emptied blocks come
//! back to the sink, so a transfer allocates a handful of them whatever its size. The
//! hashing thread carries a [`Received`] (how many bytes the file holds and their running
//! SHA-256) from the bytes already there to the end. This module writes only to the file it is
//! given: naming, locking and renaming it into place are `partial`'s.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::crypto::Sha256;

use super::{BLOCK, FileError};

/// The bytes already in a partial file: how many, and their running SHA-256.
#[derive(Clone)]
pub struct Received {
    len: u64,
    hasher: Sha256,
}

impl Received {
    /// No bytes yet.
    pub(super) fn empty() -> Self {
        Self {
            len: 0,
            hasher: Sha256::new(),
        }
    }

    /// How many bytes the partial file holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// SHA-256 of those bytes.
    pub fn prefix_sha256(&self) -> [u8; 32] {
        self.hasher.clone().finish()
    }

    /// Counts and hashes bytes just written after these.
    pub(super) fn add(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len = self.len.saturating_add(data.len() as u64);
    }
}

/// Alignment direct I/O asks of buffer addresses, file offsets and lengths: the largest
/// logical block size of common disks.
const ALIGN: usize = 4096;

/// How many full blocks may wait for each of the hashing and the writer thread.
const BLOCKS_IN_FLIGHT: usize = 2;

/// Up to [`BLOCK`] bytes in a buffer whose first byte is [`ALIGN`]-aligned.
struct Block {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn new() -> Self {
        let buf = vec![0u8; BLOCK + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Self { buf, start, len: 0 }
    }

    /// Copies as much of `data` as fits below `limit` bytes; returns how much it took.
    fn fill(&mut self, data: &[u8], limit: usize) -> usize {
        let room = limit.min(BLOCK).saturating_sub(self.len);
        let take = room.min(data.len());
        let at = self.start + self.len;
        if let (Some(slot), Some(src)) = (self.buf.get_mut(at..at + take), data.get(..take)) {
            slot.copy_from_slice(src);
            self.len += take;
            return take;
        }
        0
    }

    fn data(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or_default()
    }
}

/// The receiving end of one file: chunks in, blocks out to the hashing thread, which passes
/// them on to the writer thread.
pub struct FileSink {
    block: Block,
    /// Where the current block starts in the file.
    offset: u64,
    blocks: Option<mpsc::Sender<Block>>,
    spare: std::sync::mpsc::Receiver<Block>,
    hasher: Option<JoinHandle<Received>>,
    writer: Option<JoinHandle<Result<(), FileError>>>,
    remaining: u64,
    target: PathBuf,
}

impl FileSink {
    /// Starts the threads that hash and append to `file` after the bytes of `received`, and
    /// accepts at most `size - received.len()` more.
    pub(super) fn start(file: File, received: Received, size: u64, target: &Path) -> Self {
        let offset = received.len();
        let remaining = size.saturating_sub(offset);
        let (blocks, queued) = mpsc::channel(BLOCKS_IN_FLIGHT);
        let (to_disk, hashed) = std::sync::mpsc::sync_channel(BLOCKS_IN_FLIGHT);
        let (back, spare) = std::sync::mpsc::channel();
        let path = target.to_owned();
        let hasher = tokio::task::spawn_blocking(move || hash_blocks(received, queued, &to_disk));
        let writer =
            tokio::task::spawn_blocking(move || write_blocks(file, offset, &hashed, &back, &path));
        Self {
            block: Block::new(),
            offset,
            blocks: Some(blocks),
            spare,
            hasher: Some(hasher),
            writer: Some(writer),
            remaining,
            target: target.to_owned(),
        }
    }

    /// Appends `data`; more than the announced size is an error.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), FileError> {
        let len = data.len() as u64;
        if len > self.remaining {
            return Err(FileError::TooMuchData(self.target.clone()));
        }
        self.remaining -= len;
        while !data.is_empty() {
            let limit = self.block_limit();
            let took = self.block.fill(data, limit);
            data = data.get(took..).unwrap_or_default();
            if self.block.len == limit {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// The current block's size when full: a block that starts off a 4 KiB boundary (a
    /// resumed transfer) ends on the next one, so that every later block can go direct.
    fn block_limit(&self) -> usize {
        let misalignment = (self.offset % ALIGN as u64) as usize;
        BLOCK - misalignment
    }

    /// Hands the current block on.
    async fn flush(&mut self) -> Result<(), FileError> {
        let next = self.spare.try_recv().unwrap_or_else(|_| Block::new());
        let block = std::mem::replace(&mut self.block, next);
        self.offset = self.offset.saturating_add(block.len as u64);
        let sent = match &self.blocks {
            Some(blocks) => blocks.send(block).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer thread stopped (and so did the hashing thread): it failed; its error
        // says why.
        self.join().await?;
        Err(FileError::Worker("file writer stopped".into()))
    }

    /// Waits for every byte to be written; returns the bytes now in the file.
    pub(super) async fn finish(mut self) -> Result<Received, FileError> {
        if self.block.len > 0 {
            self.flush().await?;
        }
        self.join().await
    }

    /// Ends the stream of blocks and waits for both threads; the writer's error comes first.
    async fn join(&mut self) -> Result<Received, FileError> {
        self.blocks = None;
        let (Some(writer), Some(hasher)) = (self.writer.take(), self.hasher.take()) else {
            return Err(FileError::Worker("file writer already stopped".into()));
        };
        let written = writer.await;
        let received = hasher.await;
        written.map_err(|err| FileError::Worker(err.to_string()))??;
        received.map_err(|err| FileError::Worker(err.to_string()))
    }
}

/// The hashing thread: counts and hashes each block, then passes it to the writer thread.
/// It stops early when the writer has (the writer's error says why).
fn hash_blocks(
    mut received: Received,
    mut blocks: mpsc::Receiver<Block>,
    to_disk: &std::sync::mpsc::SyncSender<Block>,
) -> Received {
    while let Some(block) = blocks.blocking_recv() {
        received.add(block.data());
        if to_disk.send(block).is_err() {
            break;
        }
    }
    received
}

/// The writer thread: writes each block in order from byte `offset` on, then hands the
/// emptied buffer back to the sink.
fn write_blocks(
    file: File,
    offset: u64,
    blocks: &std::sync::mpsc::Receiver<Block>,
    back: &std::sync::mpsc::Sender<Block>,
    target: &Path,
) -> Result<(), FileError> {
    let mut writer =
        Writer::new(file, offset).map_err(|err| FileError::io(target, "write", err))?;
    while let Ok(mut block) = blocks.recv() {
        writer
            .write(block.data())
            .map_err(|err| FileError::io(target, "write", err))?;
        block.len = 0;
        let _ = back.send(block);
    }
    Ok(())
}

/// A file written at a position that it tracks, through the page cache or around it.
struct Writer {
    file: File,
    at: u64,
    /// Whether `O_DIRECT` is set on the file now.
    direct: bool,
    /// Direct I/O is not for this file: its file system is not a local disk one
    /// ([`direct_io_suits`]), or it refused direct I/O. Never ask again.
    refused: bool,
}

impl Writer {
    fn new(mut file: File, at: u64) -> std::io::Result<Self> {
        file.seek(SeekFrom::Start(at))?;
        let refused = !on_a_local_disk(&file);
        Ok(Self {
            file,
            at,
            direct: false,
            refused,
        })
    }

    /// Writes all of `data` at the current position: direct when it starts and ends on
    /// [`ALIGN`] boundaries (and its buffer is aligned, as a [`Block`]'s is), else through
    /// the page cache.
    fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        let aligned = self.at.is_multiple_of(ALIGN as u64) && data.len().is_multiple_of(ALIGN);
        self.set_direct(aligned && !self.refused)?;
        while !data.is_empty() {
            match self.file.write(data) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    data = data.get(n..).unwrap_or_default();
                    self.at = self.at.saturating_add(n as u64);
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                // Direct I/O that the file system accepted at open but refuses here (or a
                // short direct write that left the rest unaligned): go through the cache.
                Err(err)
                    if self.direct
                        && err.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) =>
                {
                    self.refused = true;
                    self.set_direct(false)?;
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Turns `O_DIRECT` on or off. A file system that does not do direct I/O makes turning
    /// it on a no-op for the rest of the file.
    #[cfg(target_os = "linux")]
    fn set_direct(&mut self, on: bool) -> std::io::Result<()> {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        if on == self.direct {
            return Ok(());
        }
        let mut flags = OFlag::from_bits_truncate(fcntl(&self.file, FcntlArg::F_GETFL)?);
        flags.set(OFlag::O_DIRECT, on);
        match fcntl(&self.file, FcntlArg::F_SETFL(flags)) {
            Ok(_) => self.direct = on,
            Err(_) if on => self.refused = true,
            Err(err) => return Err(err.into()),
        }
        Ok(())
    }

    /// Direct I/O is used on Linux only; elsewhere every write goes through the cache.
    #[cfg(not(target_os = "linux"))]
    fn set_direct(&mut self, _on: bool) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `file` is on a file system that [`direct_io_suits`].
#[cfg(target_os = "linux")]
fn on_a_local_disk(file: &File) -> bool {
    nix::sys::statfs::fstatfs(file).is_ok_and(|fs| direct_io_suits(fs.filesystem_type()))
}

#[cfg(not(target_os = "linux"))]
fn on_a_local_disk(_file: &File) -> bool {
    false
}

/// Whether direct I/O is worth it on a file system of this type: the local disk file systems
/// of Linux servers (ext2/3/4, XFS, Btrfs, F2FS). Elsewhere the page cache serves better: on
/// NFS or SMB each direct write is a synchronous round trip to the file server, and FUSE or
/// tmpfs gain nothing from it.
#[cfg(target_os = "linux")]
fn direct_io_suits(fs: nix::sys::statfs::FsType) -> bool {
    use nix::sys::statfs::{
        BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, F2FS_SUPER_MAGIC, XFS_SUPER_MAGIC,
    };
    [
        EXT4_SUPER_MAGIC,
        XFS_SUPER_MAGIC,
        BTRFS_SUPER_MAGIC,
        F2FS_SUPER_MAGIC,
    ]
    .contains(&fs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_and_fill_up_to_their_limit() {
        let mut block = Block::new();
        assert_eq!(block.data().as_ptr().align_offset(ALIGN), 0);
        assert_eq!(block.fill(&[1; 10], 4), 4);
        assert_eq!(block.fill(&[2; 10], 4), 0, "full at its limit");
        assert_eq!(block.fill(&vec![3; BLOCK * 2], usize::MAX), BLOCK - 4);
        assert_eq!(block.data().len(), BLOCK);
        assert_eq!(&block.data()[..5], &[1, 1, 1, 1, 3]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn direct_io_only_on_local_disk_file_systems() {
        use nix::sys::statfs::{
            BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, FUSE_SUPER_MAGIC, NFS_SUPER_MAGIC,
            SMB_SUPER_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC,
        };
        for local in [EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC, BTRFS_SUPER_MAGIC] {
            assert!(direct_io_suits(local), "{local:?}");
        }
        for other in [
            NFS_SUPER_MAGIC,
            SMB_SUPER_MAGIC,
            FUSE_SUPER_MAGIC,
            TMPFS_MAGIC,
        ] {
            assert!(!direct_io_suits(other), "{other:?}");
        }
    }

    #[test]
    fn a_write_that_direct_io_refuses_goes_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let mut writer = Writer::new(file, 0).unwrap();
        let mut aligned = Block::new();
        aligned.fill(&[b'a'; ALIGN], ALIGN);
        writer.write(aligned.data()).unwrap();
        // On a 4 KiB boundary with a 4 KiB length, but from a misaligned address: direct
        // I/O says EINVAL, and the writer carries on through the page cache.
        let misaligned = vec![b'b'; ALIGN + 1];
        writer.write(&misaligned[1..]).unwrap();
        writer.write(b"tail").unwrap();
        let mut want = vec![b'a'; ALIGN];
        want.extend_from_slice(&[b'b'; ALIGN]);
        want.extend_from_slice(b"tail");
        assert!(std::fs::read(&path).unwrap() == want);
    }
}
