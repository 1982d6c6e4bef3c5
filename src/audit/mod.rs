//! The audit log: who ran what, from where, when, with what result, kept so that an edit is
//! evident. [`chain`] owns the line format, the hash chain and the checkpoint signature (pure);
//! [`writer`] appends to the log for the server ("log, then act"), with checkpoints, fsync and
//! rotation; [`verify`] and [`show`] are `seashell audit verify` / `show`; [`syslog`] copies
//! each line off the host. The audit log never decides whether something is allowed: it only
//! records, and refuses a command only when it cannot record it. docs/audit.md describes the
//! format and what verification proves.

pub mod chain;
pub mod show;
pub mod syslog;
pub mod verify;
pub mod writer;

use std::path::{Path, PathBuf};

pub use chain::{
    AuditChain, CertIdentity, Event, EventKind, FailureSource, Record, RefusedKey, Seal,
};
pub use writer::{AuditLog, AuditOptions, SessionAudit, Who};

/// What went wrong with an audit log file, a host key or an argument; every message names the
/// file (and line) concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file could not be opened, read, written, synced or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A line that is not what it must be.
    #[error("{}:{line}: {detail}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// A write failed; until the log can write again (it retries by itself), it refuses new
    /// events, and so the server refuses commands.
    #[error("audit log {} is out of order since a write failed ({reason}): commands are refused until it can write again", path.display())]
    Broken {
        /// The log file.
        path: PathBuf,
        /// The first failure.
        reason: String,
    },
    /// The writer task has ended (the server is stopping).
    #[error("the audit log is closed")]
    Closed,
    /// Making a line or signing a checkpoint failed.
    #[error("audit log {}: {source}", path.display())]
    Chain {
        /// The log file.
        path: PathBuf,
        /// What failed.
        source: chain::ChainError,
    },
    /// The host key for `verify`.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// A `syslog` target that is not `unix:PATH` or `udp:HOST[:PORT]`, or does not resolve.
    #[error("syslog target {target:?}: {detail}")]
    SyslogTarget {
        /// The value given.
        target: String,
        /// Why it is refused.
        detail: String,
    },
    /// A `--since` value that is not a time.
    #[error("--since {0:?}: expected RFC 3339 (2025-06-01T12:00:00Z) or a date (2025-06-01)")]
    BadTime(String),
    /// Nothing to read.
    #[error("{}: no audit events", path.display())]
    Empty {
        /// The file (the last one given).
        path: PathBuf,
    },
}

impl AuditError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The files of a rotated log, oldest first: `PATH.N` ... `PATH.1`, `PATH`. Every numbered
/// file that exists up to the highest number in the directory is listed, so a file missing
/// in the middle leaves a hole the chain shows; `PATH` is listed unless it is missing while
/// numbered files exist (a crash during a rotation, or a deleted newest file).
pub fn rotated_set(path: &Path) -> Vec<PathBuf> {
    let counted = (1u32..).take_while(|n| numbered(path, *n).exists()).count();
    let highest = highest_number(path).max(u32::try_from(counted).unwrap_or(u32::MAX));
    let mut files: Vec<PathBuf> = (1..=highest)
        .rev()
        .map(|n| numbered(path, n))
        .filter(|file| file.exists())
        .collect();
    if files.is_empty() || path.exists() {
        files.push(path.to_owned());
    }
    files
}

/// The highest N of the `PATH.N` files in `PATH`'s directory (0 when there are none).
fn highest_number(path: &Path) -> u32 {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return 0;
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let entry = entry.file_name();
            let number = entry.to_str()?.strip_prefix(name)?.strip_prefix('.')?;
            number.parse::<u32>().ok().filter(|n| *n > 0)
        })
        .max()
        .unwrap_or(0)
}

/// `PATH.n`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}
