//! Receiving one file atomically. The bytes go to `.NAME.seashell-partial` in the destination
//! directory (created 0600, never through a symlink, locked with `flock` so two transfers to
//! one file cannot interleave). Only when the announced size has arrived and the SHA-256 of
//! the whole content matches the sender's is the file given its mode (and mtime), synced and
//! renamed over the destination. A [`PartialFile`] dropped before that removes its temporary
//! file, except that a resumable one keeps the bytes it has so `--resume` can continue.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::sink::FileSink;
pub use super::sink::Received;
use super::{BLOCK, FileError, blocking};

/// The suffix of temporary files; the prefix is `.` and the destination's name.
pub const PARTIAL_SUFFIX: &str = ".seashell-partial";

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
        Ok(FileSink::start(
            self.clone_file()?,
            received,
            size,
            &self.target,
        ))
    }

    /// Checks size and hash, sets the mode (permission bits only: `mode & 0o777`) and, when
    /// given, the mtime, syncs, and renames the file into place.
    pub async fn commit(mut self, sink: FileSink, expected: Expected) -> Result<(), FileError> {
        let received = sink.finish().await?;
        if received.len() != expected.size {
            return Err(FileError::Incomplete {
                path: self.target.clone(),
                got: received.len(),
                want: expected.size,
            });
        }
        if received.prefix_sha256() != expected.sha256 {
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
    let mut buf = vec![0u8; BLOCK];
    file.seek(SeekFrom::Start(0))
        .map_err(|err| FileError::io(target, "read", err))?;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(received),
            Ok(n) => received.add(buf.get(..n).unwrap_or_default()),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(FileError::io(target, "read", err)),
        }
    }
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

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

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
        sink.write(b"hello").await.unwrap();
        assert!(sink.write(b"!").await.is_err(), "more than announced");
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
        sink.write(b"hellO").await.unwrap();
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
            sink.write(b"hello").await.unwrap();
            sink.finish().await.unwrap();
        }
        let (partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
        assert_eq!(received.len(), 5);
        assert_eq!(received.prefix_sha256(), sha(b"hello"));
        let mut sink = partial.sink(received, 10).unwrap();
        sink.write(b"world").await.unwrap();
        partial
            .commit(sink, expected(b"helloworld", 0o600))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"helloworld");
    }

    #[tokio::test]
    async fn a_file_of_many_blocks_resumes_off_a_boundary_and_commits_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big");
        let content: Vec<u8> = (0..BLOCK * 5 + 12_345).map(|i| (i % 251) as u8).collect();
        let cut = BLOCK * 2 + BLOCK / 2 + 7;
        let size = content.len() as u64;
        {
            let (partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
            let mut sink = partial.sink(received, size).unwrap();
            for chunk in content[..cut].chunks(65_536) {
                sink.write(chunk).await.unwrap();
            }
            sink.finish().await.unwrap();
        }
        // At once: the writer thread of the cut transfer holds no copy of the lock.
        let (partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
        assert_eq!(received.len(), cut as u64);
        assert_eq!(received.prefix_sha256(), sha(&content[..cut]));
        let mut sink = partial.sink(received, size).unwrap();
        for chunk in content[cut..].chunks(65_536) {
            sink.write(chunk).await.unwrap();
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
        sink.write(b"hello").await.unwrap();
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
