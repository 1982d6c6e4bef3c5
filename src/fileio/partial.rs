//! Receiving one file atomically. The bytes go to `.NAME.seashell-partial` in the destination
//! directory, which is held by descriptor from the start (`beneath`) so that every later step
//! happens in the directory that was checked. The temporary file is always a new one,
//! created `O_CREAT | O_EXCL | O_NOFOLLOW` with mode 0600, so a file someone else put at that
//! name (another user's, a symlink, a hard link to a file of ours) is never written, never
//! read for `--resume` and never installed: a stale one of ours is replaced, anything else
//! is refused and left alone. `--resume` continues only a file that is ours, mode 0600, a
//! regular file with one link. The file is locked with `flock` so two transfers to one file
//! cannot interleave. Only when the announced size has arrived and the SHA-256 of the whole
//! content matches the sender's is the file given its mode (and mtime), synced and renamed
//! over the destination, and only if the temporary name still holds our inode. A
//! [`PartialFile`] dropped before that removes its temporary file, except that a resumable
//! one keeps the bytes it has so `--resume` can continue.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::beneath::{open_parent, open_parent_beneath};
use super::sink::FileSink;
pub use super::sink::Received;
use super::{BLOCK, FileError, blocking};

/// The suffix of temporary files; the prefix is `.` and the destination's name.
pub const PARTIAL_SUFFIX: &str = ".seashell-partial";

/// The only mode a temporary file has, and the only one `--resume` continues.
const TEMP_MODE: u32 = 0o600;

/// How many times a stale temporary file is replaced before giving up (someone keeps
/// putting one back).
const ATTEMPTS: usize = 3;

/// The temporary file `.NAME.seashell-partial` next to `target`.
pub fn temp_path(target: &Path) -> Result<PathBuf, FileError> {
    let name = target
        .file_name()
        .ok_or_else(|| FileError::BadPath(target.display().to_string()))?;
    Ok(target.with_file_name(temp_name(name)))
}

/// `.NAME.seashell-partial`.
fn temp_name(name: &OsStr) -> OsString {
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(PARTIAL_SUFFIX);
    temp
}

/// A destination being received: its directory and its locked temporary file.
pub struct PartialFile {
    target: PathBuf,
    dir: OwnedFd,
    name: OsString,
    temp: OsString,
    file: File,
    keep: bool,
    finished: bool,
}

impl PartialFile {
    /// Creates the temporary file for `target` (whose directory is opened by path) and
    /// locks it. With `resume`, a temporary file of ours already there is continued: its
    /// bytes are kept and hashed.
    pub async fn open(target: PathBuf, resume: bool) -> Result<(Self, Received), FileError> {
        blocking(move || {
            let (dir, name) = open_parent(&target)?;
            open_blocking(dir, name, target, resume)
        })
        .await
    }

    /// As [`PartialFile::open`] for `root/rel`, where `rel` came from a peer (checked by
    /// `tree::relative_path`): no component of it is followed if it is a symlink.
    pub async fn open_beneath(
        root: PathBuf,
        rel: PathBuf,
        resume: bool,
    ) -> Result<(Self, Received), FileError> {
        blocking(move || {
            let (dir, name) = open_parent_beneath(&root, &rel)?;
            open_blocking(dir, name, root.join(rel), resume)
        })
        .await
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

    /// Checks size and hash, sets the mode (permission bits only: `mode & 0o777`, never
    /// setuid, setgid or sticky) and, when given, the mtime, syncs, and renames the file
    /// into place.
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
        let install = Install {
            file: self.clone_file()?,
            dir: self
                .dir
                .try_clone()
                .map_err(|err| FileError::io(&self.target, "rename into", err))?,
            temp: self.temp.clone(),
            name: self.name.clone(),
            target: self.target.clone(),
        };
        blocking(move || install.run(expected.mode, expected.mtime)).await?;
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
            let _ = unlinkat(&self.dir, self.temp.as_os_str(), UnlinkatFlags::NoRemoveDir);
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

fn open_blocking(
    dir: OwnedFd,
    name: OsString,
    target: PathBuf,
    resume: bool,
) -> Result<(PartialFile, Received), FileError> {
    let is_dir = lstat_at(&dir, &name).is_ok_and(|st| file_type(&st) == SFlag::S_IFDIR);
    if is_dir {
        return Err(FileError::IsDirectory(target));
    }
    let temp = temp_name(&name);
    let temp_shown = target.with_file_name(&temp);
    let (mut file, resumed) = create_or_continue(&dir, &temp, &temp_shown, &target, resume)?;
    let received = if resumed {
        hash_existing(&mut file, &target)?
    } else {
        Received::empty()
    };
    let partial = PartialFile {
        target,
        dir,
        name,
        temp,
        file,
        keep: resume,
        finished: false,
    };
    Ok((partial, received))
}

/// A new, locked temporary file; or, with `resume`, the one of ours already there (`true`).
/// A stale one of ours is removed first; anything else in the way is refused.
fn create_or_continue(
    dir: &OwnedFd,
    temp: &OsStr,
    shown: &Path,
    target: &Path,
    resume: bool,
) -> Result<(File, bool), FileError> {
    for _ in 0..ATTEMPTS {
        let flags =
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(dir, temp, flags, Mode::from_bits_truncate(TEMP_MODE)) {
            Ok(fd) => {
                let file = lock(File::from(fd), target)?;
                // Exactly 0600 whatever the umask, so that `--resume` can continue it.
                file.set_permissions(std::fs::Permissions::from_mode(TEMP_MODE))
                    .map_err(|err| FileError::io(target, "create", err))?;
                return Ok((file, false));
            }
            Err(Errno::EEXIST) => {}
            Err(errno) => return Err(FileError::io(target, "create", errno.into())),
        }
        let (file, resumable) = existing_of_ours(dir, temp, shown, target)?;
        if resume && resumable {
            return Ok((file, true));
        }
        // Ours and stale (or not fit to continue): replace it while we hold its lock.
        match unlinkat(dir, temp, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(errno) => return Err(FileError::io(shown, "remove", errno.into())),
        }
    }
    Err(FileError::NotOurs(shown.to_owned()))
}

/// Opens and locks the temporary file already at `temp` if it is a regular file of ours;
/// also says whether `--resume` may continue it (mode 0600, one link). A symlink, a special
/// file or another user's file is [`FileError::NotOurs`], and is neither opened for writing
/// nor changed.
fn existing_of_ours(
    dir: &OwnedFd,
    temp: &OsStr,
    shown: &Path,
    target: &Path,
) -> Result<(File, bool), FileError> {
    let before =
        lstat_at(dir, temp).map_err(|errno| FileError::io(shown, "inspect", errno.into()))?;
    if !is_ours(&before) {
        return Err(FileError::NotOurs(shown.to_owned()));
    }
    // O_NONBLOCK: should it be swapped for a FIFO now, the open cannot hang.
    let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = openat(dir, temp, flags, Mode::empty()).map_err(|errno| match errno {
        Errno::ELOOP => FileError::NotOurs(shown.to_owned()),
        other => FileError::io(shown, "open", other.into()),
    })?;
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|err| FileError::io(shown, "inspect", err))?;
    let same = meta.dev() == before.st_dev && meta.ino() == before.st_ino;
    if !same || !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(FileError::NotOurs(shown.to_owned()));
    }
    let file = lock(file, target)?;
    let resumable = meta.mode() & 0o7777 == TEMP_MODE && meta.nlink() == 1;
    Ok((file, resumable))
}

/// Whether `st` is a regular file owned by this process's effective user.
fn is_ours(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFREG && st.st_uid == nix::unistd::geteuid().as_raw()
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// `fstatat(dir, name)` without following a symlink.
fn lstat_at(dir: &OwnedFd, name: &OsStr) -> nix::Result<FileStat> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Takes the transfer lock on `file`: [`FileError::Busy`] if another transfer holds it.
fn lock(file: File, target: &Path) -> Result<File, FileError> {
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(FileError::Busy(target.to_owned())),
        Err(std::fs::TryLockError::Error(err)) => Err(FileError::io(target, "lock", err)),
    }
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

/// What putting a checked file into place needs, off the runtime.
struct Install {
    file: File,
    dir: OwnedFd,
    temp: OsString,
    name: OsString,
    target: PathBuf,
}

impl Install {
    fn run(self, mode: u32, mtime: Option<i64>) -> Result<(), FileError> {
        let target = &self.target;
        self.file
            .set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
            .map_err(|err| FileError::io(target, "set the mode of", err))?;
        if let Some(time) = mtime.and_then(system_time) {
            self.file
                .set_modified(time)
                .map_err(|err| FileError::io(target, "set the mtime of", err))?;
        }
        self.file
            .sync_all()
            .map_err(|err| FileError::io(target, "sync", err))?;
        // The name must still hold our inode: never install one someone put in its place.
        let ours = self
            .file
            .metadata()
            .map_err(|err| FileError::io(target, "inspect", err))?;
        let still = lstat_at(&self.dir, &self.temp)
            .is_ok_and(|st| st.st_dev == ours.dev() && st.st_ino == ours.ino());
        if !still {
            return Err(FileError::NotOurs(target.with_file_name(&self.temp)));
        }
        renameat(
            &self.dir,
            self.temp.as_os_str(),
            &self.dir,
            self.name.as_os_str(),
        )
        .map_err(|errno| FileError::io(target, "rename into", errno.into()))?;
        // Make the rename itself durable; a directory that cannot be synced is not an error.
        let _ = nix::unistd::fsync(self.dir.as_fd());
        Ok(())
    }
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
    use crate::crypto;

    use super::*;

    fn sha(data: &[u8]) -> [u8; 32] {
        crypto::sha256(data)
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

    /// Runs `body` only where the test can make files owned by someone else (as root).
    fn as_root() -> bool {
        let root = nix::unistd::geteuid().is_root();
        if !root {
            eprintln!("SKIPPED: needs root to make a file owned by another user");
        }
        root
    }

    #[tokio::test]
    async fn a_temporary_file_squatted_by_another_user_is_refused_in_both_modes() {
        if !as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let temp = temp_path(&target).unwrap();
        std::fs::write(&temp, b"squatter").unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o666)).unwrap();
        nix::unistd::chown(&temp, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        for resume in [false, true] {
            let err = PartialFile::open(target.clone(), resume).await.err();
            assert!(
                matches!(err, Some(FileError::NotOurs(_))),
                "{resume}: {err:?}"
            );
            assert_eq!(std::fs::read(&temp).unwrap(), b"squatter", "never touched");
        }
        assert!(!target.exists());
    }

    #[tokio::test]
    async fn a_stale_temporary_file_of_ours_is_replaced_by_a_new_0600_one() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let temp = temp_path(&target).unwrap();
        std::fs::write(&temp, b"stale").unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644)).unwrap();
        // Another name for the stale inode, to see that it is left alone.
        let other = dir.path().join("other");
        std::fs::hard_link(&temp, &other).unwrap();
        let stale = std::fs::metadata(&temp).unwrap().ino();
        for resume in [false, true] {
            let (partial, received) = PartialFile::open(target.clone(), resume).await.unwrap();
            assert!(
                received.is_empty(),
                "{resume}: never resumed from a foreign inode"
            );
            let meta = std::fs::symlink_metadata(&temp).unwrap();
            assert_ne!(meta.ino(), stale, "{resume}: a new file, created O_EXCL");
            assert_eq!(meta.mode() & 0o7777, 0o600, "{resume}");
            let mut sink = partial.sink(received, 3).unwrap();
            sink.write(b"new").await.unwrap();
            partial.commit(sink, expected(b"new", 0o600)).await.unwrap();
            assert_eq!(std::fs::read(&other).unwrap(), b"stale", "{resume}");
            std::fs::hard_link(&other, &temp).unwrap();
        }
    }

    #[tokio::test]
    async fn resume_reuses_only_a_single_link_0600_file_of_ours() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let temp = temp_path(&target).unwrap();
        std::fs::write(&temp, b"hello").unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (_partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
        assert_eq!(received.len(), 5, "ours, 0600, one link: resumed");
        drop(_partial);
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (_partial, received) = PartialFile::open(target.clone(), true).await.unwrap();
        assert!(received.is_empty(), "another mode: started over");
    }
}
