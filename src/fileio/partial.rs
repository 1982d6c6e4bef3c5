//! Receiving one file atomically. The bytes go to `.NAME.seashell-partial` in the destination
//! directory (created 0600, never through a symlink, locked with `flock` so two transfers to
//! one file cannot interleave). Only when the announced size has arrived and the SHA-256 of
//! the whole content matches the sender's is the file given its mode (and mtime), synced and
//! renamed over the destination. A [`PartialFile`] dropped before that removes its temporary
//! file, except that a resumable one keeps the bytes it has so `--resume` can continue.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{BLOCK, CHANNEL_DEPTH, FileError, blocking};

/// The suffix of temporary files; the prefix is `.` and the destination's name.
pub const PARTIAL_SUFFIX: &str = ".seashell-partial";

/// Size of the buffer used to hash an existing partial file.
const HASH_BUFFER: usize = 1024 * 1024;

/// The temporary file `.NAME.seashell-partial` next to `target`.
pub fn temp_path(target: &Path) -> Result<PathBuf, FileError> {
    let name = target
        .file_name()
        .ok_or_else(|| FileError::BadPath(target.display().to_string()))?;
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(PARTIAL_SUFFIX);
    Ok(target.with_file_name(temp))
}

/// The bytes already in a partial file: how many, and their running SHA-256.
#[derive(Clone)]
pub struct Received {
    len: u64,
    hasher: Sha256,
}

impl Received {
    fn empty() -> Self {
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
        self.hasher.clone().finalize().into()
    }
}

/// A destination being received: its locked temporary file.
pub struct PartialFile {
    target: PathBuf,
    temp: PathBuf,
    file: File,
    keep: bool,
    finished: bool,
}

impl PartialFile {
    /// Opens (or creates) the temporary file for `target` and locks it. With `resume`, the
    /// bytes already there are kept and hashed; otherwise a stale partial file is emptied.
    pub async fn open(target: PathBuf, resume: bool) -> Result<(Self, Received), FileError> {
        blocking(move || open_blocking(target, resume)).await
    }

    /// The final destination.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Throws away the bytes received so far (the sender starts over from byte 0).
    pub async fn restart(&mut self) -> Result<Received, FileError> {
        let file = self.clone_file()?;
        let target = self.target.clone();
        blocking(move || {
            file.set_len(0)
                .map_err(|err| FileError::io(&target, "truncate", err))?;
            Ok(Received::empty())
        })
        .await
    }

    /// Starts a writer thread that appends after `received` and accepts at most
    /// `size - received.len()` more bytes.
    pub fn sink(&self, received: Received, size: u64) -> Result<FileSink, FileError> {
        let file = self.clone_file()?;
        let remaining = size.saturating_sub(received.len);
        let (chunks, rx) = mpsc::channel(CHANNEL_DEPTH);
        let target = self.target.clone();
        let worker = tokio::task::spawn_blocking(move || write_chunks(file, received, rx, &target));
        Ok(FileSink {
            pending: Vec::new(),
            pending_len: 0,
            chunks: Some(chunks),
            worker: Some(worker),
            remaining,
            target: self.target.clone(),
        })
    }

    /// Checks size and hash, sets the mode (permission bits only: `mode & 0o777`) and, when
    /// given, the mtime, syncs, and renames the file into place.
    pub async fn commit(mut self, sink: FileSink, expected: Expected) -> Result<(), FileError> {
        let received = sink.finish().await?;
        if received.len != expected.size {
            return Err(FileError::Incomplete {
                path: self.target.clone(),
                got: received.len,
                want: expected.size,
            });
        }
        if <[u8; 32]>::from(received.hasher.finalize()) != expected.sha256 {
            self.keep = false;
            return Err(FileError::HashMismatch(self.target.clone()));
        }
        let file = self.clone_file()?;
        let (temp, target) = (self.temp.clone(), self.target.clone());
        blocking(move || install(&file, &temp, &target, expected.mode, expected.mtime)).await?;
        self.finished = true;
        Ok(())
    }

    fn clone_file(&self) -> Result<File, FileError> {
        self.file
            .try_clone()
            .map_err(|err| FileError::io(&self.target, "write", err))
    }
}

impl Drop for PartialFile {
    /// Removes the temporary file of a transfer that did not finish, unless it is resumable
    /// and holds some bytes. (One unlink: cheap enough to do in place.)
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let empty = self.file.metadata().map_or(true, |meta| meta.len() == 0);
        if !self.keep || empty {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// What the sender announced for a file: checked and applied by [`PartialFile::commit`].
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the whole content.
    pub sha256: [u8; 32],
    /// Mode bits; only the permission bits (`0o777`) are applied.
    pub mode: u32,
    /// Modification time to set, in seconds since the Unix epoch.
    pub mtime: Option<i64>,
}

fn open_blocking(target: PathBuf, resume: bool) -> Result<(PartialFile, Received), FileError> {
    let temp = temp_path(&target)?;
    if std::fs::metadata(&target).is_ok_and(|meta| meta.is_dir()) {
        return Err(FileError::IsDirectory(target));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&temp)
        .map_err(|err| FileError::io(&target, "create", err))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(FileError::Busy(target)),
        Err(std::fs::TryLockError::Error(err)) => return Err(FileError::io(&target, "lock", err)),
    }
    let is_file = file
        .metadata()
        .map_err(|err| FileError::io(&temp, "inspect", err))?
        .is_file();
    if !is_file {
        return Err(FileError::NotRegular(temp));
    }
    let received = if resume {
        hash_existing(&mut file, &target)?
    } else {
        file.set_len(0)
            .map_err(|err| FileError::io(&target, "truncate", err))?;
        Received::empty()
    };
    let partial = PartialFile {
        target,
        temp,
        file,
        keep: resume,
        finished: false,
    };
    Ok((partial, received))
}

fn hash_existing(file: &mut File, target: &Path) -> Result<Received, FileError> {
    let mut received = Received::empty();
    let mut buf = vec![0u8; HASH_BUFFER];
    file.seek(SeekFrom::Start(0))
        .map_err(|err| FileError::io(target, "read", err))?;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(received),
            Ok(n) => {
                let data = buf.get(..n).unwrap_or_default();
                received.hasher.update(data);
                received.len = received.len.saturating_add(n as u64);
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(FileError::io(target, "read", err)),
        }
    }
}

fn write_chunks(
    mut file: File,
    mut received: Received,
    mut blocks: mpsc::Receiver<Vec<Vec<u8>>>,
    target: &Path,
) -> Result<Received, FileError> {
    file.seek(SeekFrom::Start(received.len))
        .map_err(|err| FileError::io(target, "write", err))?;
    let mut writeback = Writeback::new(&file, received.len);
    let mut unsynced = 0usize;
    while let Some(block) = blocks.blocking_recv() {
        for chunk in block {
            file.write_all(&chunk)
                .map_err(|err| FileError::io(target, "write", err))?;
            received.hasher.update(&chunk);
            received.len = received.len.saturating_add(chunk.len() as u64);
            unsynced += chunk.len();
        }
        if unsynced >= WRITEBACK_STEP {
            writeback.nudge(received.len);
            unsynced = 0;
        }
    }
    Ok(received)
}

/// How much written data makes the [`Writeback`] thread start flushing it.
const WRITEBACK_STEP: usize = 32 * 1024 * 1024;

/// A thread that flushes a file being written (`fdatasync`) while the writing goes on, and
/// then drops the flushed pages from the page cache (like `dd oflag=nocache`): the disk works
/// during the transfer, the sync before the rename finds little left to do, and a large
/// transfer neither floods the page cache nor waits for fresh memory. The thread starts at
/// the first nudge, so a file smaller than [`WRITEBACK_STEP`] never has one. Dropping it
/// waits for the thread, so that no copy of the file's descriptor (and of its `flock`)
/// outlives the writer. Its errors are ignored: the final sync reports them.
struct Writeback(Flusher);

enum Flusher {
    /// Not started: the file's first `start` bytes were already there.
    Idle { file: File, start: u64 },
    /// Running; a nudge carries how far the file has been written.
    Running {
        nudges: std::sync::mpsc::SyncSender<u64>,
        thread: std::thread::JoinHandle<()>,
    },
    /// The file could not be cloned or the thread not started: the final sync does it all.
    Off,
}

impl Writeback {
    fn new(file: &File, start: u64) -> Self {
        Self(match file.try_clone() {
            Ok(file) => Flusher::Idle { file, start },
            Err(_) => Flusher::Off,
        })
    }

    /// Asks for the file up to byte `upto` to be flushed; skipped while the last flush is
    /// still running (the next one covers it).
    fn nudge(&mut self, upto: u64) {
        if let Flusher::Idle { .. } = self.0
            && let Flusher::Idle { file, start } = std::mem::replace(&mut self.0, Flusher::Off)
        {
            let (nudges, due) = std::sync::mpsc::sync_channel::<u64>(1);
            let started = std::thread::Builder::new()
                .name("writeback".into())
                .spawn(move || {
                    let mut flushed = start;
                    while let Ok(upto) = due.recv() {
                        if file.sync_data().is_ok() {
                            drop_cached(&file, flushed, upto);
                            flushed = upto;
                        }
                    }
                });
            if let Ok(thread) = started {
                self.0 = Flusher::Running { nudges, thread };
            }
        }
        if let Flusher::Running { nudges, .. } = &self.0 {
            let _ = nudges.try_send(upto);
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        if let Flusher::Running { nudges, thread } = std::mem::replace(&mut self.0, Flusher::Off) {
            drop(nudges);
            let _ = thread.join();
        }
    }
}

/// Drops bytes `from..to` of a flushed file from the page cache (a hint; Linux only).
fn drop_cached(file: &File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    if let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to.saturating_sub(from))) {
        use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
        let _ = posix_fadvise(file, offset, len, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
}

fn install(
    file: &File,
    temp: &Path,
    target: &Path,
    mode: u32,
    mtime: Option<i64>,
) -> Result<(), FileError> {
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
        .map_err(|err| FileError::io(target, "set the mode of", err))?;
    if let Some(time) = mtime.and_then(system_time) {
        file.set_modified(time)
            .map_err(|err| FileError::io(target, "set the mtime of", err))?;
    }
    file.sync_all()
        .map_err(|err| FileError::io(target, "sync", err))?;
    std::fs::rename(temp, target).map_err(|err| FileError::io(target, "rename into", err))?;
    // Make the rename itself durable; a directory that cannot be opened is not an error.
    if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Seconds since the Unix epoch as a `SystemTime` (None if out of range).
fn system_time(secs: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// The writer thread of a [`PartialFile`]: chunks are gathered into blocks of about
/// [`BLOCK`] bytes that go in order through a bounded channel, so a slow disk slows the sender down instead of filling memory.
pub struct FileSink {
    pending: Vec<Vec<u8>>,
    pending_len: usize,
    chunks: Option<mpsc::Sender<Vec<Vec<u8>>>>,
    worker: Option<JoinHandle<Result<Received, FileError>>>,
    remaining: u64,
    target: PathBuf,
}

impl FileSink {
    /// Appends `data`; more than the announced size is an error.
    pub async fn write(&mut self, data: Vec<u8>) -> Result<(), FileError> {
        let len = data.len() as u64;
        if len > self.remaining {
            return Err(FileError::TooMuchData(self.target.clone()));
        }
        self.remaining -= len;
        self.pending_len += data.len();
        self.pending.push(data);
        if self.pending_len >= BLOCK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Hands the gathered block to the writer thread.
    async fn flush(&mut self) -> Result<(), FileError> {
        let block = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        let sent = match &self.chunks {
            Some(chunks) => chunks.send(block).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer thread stopped: it failed; its error says why.
        self.chunks = None;
        match self.join().await {
            Err(err) => Err(err),
            Ok(_) => Err(FileError::Worker("file writer stopped".into())),
        }
    }

    /// Waits for every chunk to be written; returns the bytes now in the file.
    async fn finish(mut self) -> Result<Received, FileError> {
        if !self.pending.is_empty() {
            self.flush().await?;
        }
        self.chunks = None;
        self.join().await
    }

    async fn join(&mut self) -> Result<Received, FileError> {
        match self.worker.take() {
            Some(worker) => worker
                .await
                .map_err(|err| FileError::Worker(err.to_string()))?,
            None => Err(FileError::Worker("file writer already stopped".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    fn expected(data: &[u8], mode: u32) -> Expected {
        Expected {
            size: data.len() as u64,
            sha256: sha(data),
            mode,
            mtime: Some(1_000_000_000),
        }
    }

    #[test]
    fn temp_names() {
        assert_eq!(
            temp_path(Path::new("/a/b c.txt")).unwrap(),
            Path::new("/a/.b c.txt.seashell-partial")
        );
        assert!(temp_path(Path::new("/")).is_err());
    }

    #[tokio::test]
    async fn commit_renames_only_after_the_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let (partial, received) = PartialFile::open(target.clone(), false).await.unwrap();
        let temp = temp_path(&target).unwrap();
        assert!(temp.exists());
        let mut sink = partial.sink(received, 5).unwrap();
        sink.write(b"hello".to_vec()).await.unwrap();
        assert!(
            sink.write(b"!".to_vec()).await.is_err(),
            "more than announced"
        );
        partial
            .commit(sink, expected(b"hello", 0o640))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert_eq!(std::os::unix::fs::MetadataExt::mtime(&meta), 1_000_000_000);
        assert!(!temp.exists());
    }

    #[tokio::test]
    async fn a_wrong_hash_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let (partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
        let mut sink = partial.sink(received, 5).unwrap();
        sink.write(b"hellO".to_vec()).await.unwrap();
        let err = partial.commit(sink, expected(b"hello", 0o600)).await;
        assert!(matches!(err, Err(FileError::HashMismatch(_))), "{err:?}");
        assert!(!target.exists());
        assert!(
            !temp_path(&target).unwrap().exists(),
            "bad bytes are not kept"
        );
    }

    #[tokio::test]
    async fn resumable_partials_survive_a_drop_and_are_rehashed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        {
            let (partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
            let mut sink = partial.sink(received, 10).unwrap();
            sink.write(b"hello".to_vec()).await.unwrap();
            sink.finish().await.unwrap();
        }
        let (partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
        assert_eq!(received.len(), 5);
        assert_eq!(received.prefix_sha256(), sha(b"hello"));
        let mut sink = partial.sink(received, 10).unwrap();
        sink.write(b"world".to_vec()).await.unwrap();
        partial
            .commit(sink, expected(b"helloworld", 0o600))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"helloworld");
    }

    #[tokio::test]
    async fn a_file_past_the_writeback_step_resumes_and_commits_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big");
        let content: Vec<u8> = (0..WRITEBACK_STEP * 2 + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        let cut = WRITEBACK_STEP + WRITEBACK_STEP / 2;
        let size = content.len() as u64;
        {
            let (partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
            let mut sink = partial.sink(received, size).unwrap();
            for chunk in content[..cut].chunks(1 << 20) {
                sink.write(chunk.to_vec()).await.unwrap();
            }
            sink.finish().await.unwrap();
        }
        // At once: the writeback thread of the cut transfer holds no copy of the lock.
        let (partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
        assert_eq!(received.len(), cut as u64);
        assert_eq!(received.prefix_sha256(), sha(&content[..cut]));
        let mut sink = partial.sink(received, size).unwrap();
        for chunk in content[cut..].chunks(1 << 20) {
            sink.write(chunk.to_vec()).await.unwrap();
        }
        partial
            .commit(sink, expected(&content, 0o600))
            .await
            .unwrap();
        assert!(std::fs::read(&target).unwrap() == content);
    }

    #[tokio::test]
    async fn without_resume_a_drop_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let (partial, received) = PartialFile::open(target.clone(), false).await.unwrap();
        let mut sink = partial.sink(received, 10).unwrap();
        sink.write(b"hello".to_vec()).await.unwrap();
        drop(partial);
        sink.finish().await.unwrap();
        assert!(!temp_path(&target).unwrap().exists());
        assert!(!target.exists());
    }

    #[tokio::test]
    async fn a_second_transfer_to_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let (_first, _) = PartialFile::open(target.clone(), false).await.unwrap();
        let second = PartialFile::open(target.clone(), false).await;
        assert!(matches!(second, Err(FileError::Busy(_))));
        assert!(
            temp_path(&target).unwrap().exists(),
            "the first keeps its file"
        );
    }

    #[tokio::test]
    async fn a_symlinked_temporary_file_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let target = dir.path().join("f");
        std::os::unix::fs::symlink(&victim, temp_path(&target).unwrap()).unwrap();
        assert!(PartialFile::open(target, false).await.is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("missing/f");
        let err = PartialFile::open(target.clone(), false)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(&target.display().to_string()), "{err}");
        assert!(err.contains("No such file or directory"), "{err}");
    }
}
