//! The file side of a transfer, shared by both ends: reading a file as SHA-256-hashed chunks
//! straight into frame buffers ([`source`]), receiving one into a locked temporary file next
//! to its destination that is renamed into place only after the size and hash check
//! ([`partial`]) and written to disk in aligned blocks ([`sink`]), and walking a directory
//! tree ([`tree`]). Every blocking call runs on a thread of its own or of `spawn_blocking`,
//! and data moves through bounded channels (a sender's frames, a receiver's blocks of
//! [`BLOCK`]), so memory stays constant (a few MiB per transfer) whatever the file size.
//! This module knows files and hashes, not the protocol or the network.

pub mod beneath;
pub mod partial;
pub mod sink;
pub mod source;
pub mod tree;

use std::io;
use std::path::{Path, PathBuf};

use crate::crypto;

/// The unit of a receiver's file writes (and of hashing a partial file's prefix): 16 frames'
/// worth (1 MiB), so the writer thread and the async side hand over (and wake each other)
/// once per block, not once per frame, and one direct write at a time keeps a disk busy.
pub const BLOCK: usize = 16 * crate::proto::record::MAX_CHUNK;

/// How many tree entries may wait between the thread that walks a tree and the async side.
pub const CHANNEL_DEPTH: usize = 4;

/// A file-level failure, naming the path: sent to the peer as a TransferFailed reason or
/// shown to the local user (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// A system call failed.
    #[error("{}: cannot {action}: {}", path.display(), describe(source))]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What we tried ("open", "write", "create a temporary file for", ...).
        action: &'static str,
        /// What the OS said.
        source: io::Error,
    },
    /// A directory where a file was expected.
    #[error("{}: is a directory (use -r)", .0.display())]
    IsDirectory(PathBuf),
    /// Neither a regular file nor a directory.
    #[error("{}: not a regular file", .0.display())]
    NotRegular(PathBuf),
    /// A file where a directory was expected.
    #[error("{}: not a directory", .0.display())]
    NotDirectory(PathBuf),
    /// The source shrank while it was being sent.
    #[error("{}: the file shrank while it was being sent", .0.display())]
    Shrank(PathBuf),
    /// The sender sent more bytes than it announced.
    #[error("{}: more data arrived than the announced size", .0.display())]
    TooMuchData(PathBuf),
    /// The sender ended the file before its announced size.
    #[error("{}: the file ended after {got} of {want} bytes", path.display())]
    Incomplete {
        /// The destination.
        path: PathBuf,
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        want: u64,
    },
    /// The received content does not hash to what the sender computed.
    #[error(
        "{}: SHA-256 mismatch: the received content is not what was sent; it was discarded",
        .0.display()
    )]
    HashMismatch(PathBuf),
    /// Another transfer holds the temporary file.
    #[error("{}: another transfer to this file is in progress", .0.display())]
    Busy(PathBuf),
    /// Something is already at a temporary file's name that a transfer must not use: a
    /// symlink, a file of another user's or with other links, or not a regular file.
    #[error(
        "{}: a file that is not this transfer's is in the way (a link, another user's, or not a \
         regular file); it was left alone: remove it or choose another destination",
        .0.display()
    )]
    NotOurs(PathBuf),
    /// A component of a received tree's path is a symlink (or not a directory) on this side.
    #[error(
        "{}: a symlink (or not a directory) inside the destination tree; it is never followed",
        .0.display()
    )]
    SymlinkInTree(PathBuf),
    /// A name that the protocol (UTF-8 text) cannot carry.
    #[error("{}: the name is not valid UTF-8 and cannot be transferred", .0.display())]
    NotUtf8(PathBuf),
    /// A path that is empty, contains NUL, or (from a peer) escapes its tree.
    #[error("`{0}`: not an acceptable path")]
    BadPath(String),
    /// A tree deeper than we walk.
    #[error("{}: directory tree deeper than {} levels", .0.display(), tree::MAX_DEPTH)]
    TooDeep(PathBuf),
    /// A background file thread died.
    #[error("file worker failed: {0}")]
    Worker(String),
}

impl FileError {
    fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            action,
            source,
        }
    }
}

/// The OS's words for an error, without Rust's " (os error N)" suffix.
fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text.get(..cut).unwrap_or(&text).to_owned(),
        None => text,
    }
}

/// SHA-256 of zero bytes: the prefix hash of a transfer that starts at offset 0.
pub fn sha256_of_nothing() -> [u8; 32] {
    crypto::sha256(&[])
}

/// This process's umask, read once: from `/proc/self/status` where there is one (no change
/// to the process at all), else by setting a strict mask for an instant and restoring it (a
/// file another thread creates in that instant gets fewer permissions, never more).
pub fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| umask_in_status(&status))
            .unwrap_or_else(|| {
                use nix::sys::stat::{Mode, umask};
                let was = umask(Mode::from_bits_truncate(0o077));
                umask(was);
                was.bits() & 0o777
            })
    })
}

/// The `Umask:` line of `/proc/PID/status` (Linux 4.7 and later).
fn umask_in_status(status: &str) -> Option<u32> {
    let value = status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))?;
    u32::from_str_radix(value.trim(), 8)
        .ok()
        .map(|mask| mask & 0o777)
}

/// Runs blocking file work off the async runtime.
async fn blocking<T, F>(work: F) -> Result<T, FileError>
where
    F: FnOnce() -> Result<T, FileError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| FileError::Worker(err.to_string()))?
}

/// Mode bits of metadata, as the protocol carries them.
fn mode_bits(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & crate::proto::message::MAX_MODE
}

/// Modification time of metadata, in whole seconds since the Unix epoch.
fn mtime_secs(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_suffix_is_dropped() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(describe(&err), "No such file or directory");
        let shown = FileError::io(Path::new("/x/y"), "open", err).to_string();
        assert_eq!(shown, "/x/y: cannot open: No such file or directory");
    }

    #[test]
    fn the_umask_is_read_from_proc_status() {
        let status = "Name:\tseashell\nUmask:\t0027\nState:\tR\n";
        assert_eq!(umask_in_status(status), Some(0o027));
        assert_eq!(umask_in_status("Name:\tx\n"), None);
        assert_eq!(umask_in_status("Umask:\tzz\n"), None);
        let real = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(real);
        assert_eq!(umask(), real.bits() & 0o777);
    }

    #[test]
    fn empty_hash() {
        assert_eq!(
            hex::encode(sha256_of_nothing()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
