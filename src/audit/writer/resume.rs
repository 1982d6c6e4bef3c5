//! Continuing an existing log: find where the chain left off (the last line of `PATH`, or of
//! `PATH.1` after a crash between rotation's rename and the first new line) and repair the one
//! kind of damage a crash leaves, a last line without its newline, by cutting it off. A line
//! is never changed and nothing else is ever removed: anything else that is wrong at the tail
//! stops the server from starting. A log that goes on in a new `PATH` after `PATH.1` is told
//! so, to begin the new file with its `rotate` line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom};
use std::path::Path;

use crate::audit::chain::{AuditChain, EventKind, Record};
use crate::audit::{AuditError, numbered};

/// Largest tail read when continuing a log: a last line longer than this is refused.
const TAIL_MAX: u64 = 4 * 1024 * 1024;

/// Where an existing log leaves off.
pub(super) struct Resumed {
    /// The chain after the last line.
    pub(super) chain: AuditChain,
    /// Set when `PATH` is missing or empty and the chain goes on from `PATH.1`: the `rotate`
    /// line the new `PATH` must begin with.
    pub(super) rotated: Option<Record>,
}

/// Where an existing log leaves off: its last line, or, when `PATH` is missing or empty (a
/// crash between rotation's rename and the first new line), the last line of `PATH.1`.
/// `None` for a new log.
pub(super) fn resume_point(path: &Path) -> Result<Option<Resumed>, AuditError> {
    if let Some(chain) = resume_from(path)? {
        return Ok(Some(Resumed {
            chain,
            rotated: None,
        }));
    }
    let older = numbered(path, 1);
    if !older.exists() {
        return Ok(None);
    }
    Ok(resume_from(&older)?.map(|chain| Resumed {
        chain,
        rotated: Some(rotate_record(path)),
    }))
}

/// The `rotate` line that begins a new `path`: it names `PATH.1` and its number of lines.
pub(super) fn rotate_record(path: &Path) -> Record {
    let older = numbered(path, 1);
    let mut record = Record::new(EventKind::Rotate);
    record.file = older
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
    record.lines = Some(count_lines(&older));
    record
}

/// The chain after the last complete line of `path`. A last line without its newline was never
/// acknowledged (the crash came before its fsync, so what it records never happened): it is
/// cut off, with a warning.
fn resume_from(path: &Path) -> Result<Option<AuditChain>, AuditError> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(AuditError::io(path)(err)),
    };
    let len = file.metadata().map_err(AuditError::io(path))?.len();
    let start = len.saturating_sub(TAIL_MAX);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(AuditError::io(path))?;
    let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let too_long = || AuditError::BadLine {
        path: path.to_owned(),
        line: count_lines(path),
        detail: format!(
            "the last line is longer than {TAIL_MAX} bytes: cannot continue the audit chain"
        ),
    };
    if complete < tail.len() {
        if start > 0 && complete == 0 {
            return Err(too_long());
        }
        let torn = (tail.len() - complete) as u64;
        tracing::warn!(
            path = %path.display(),
            "the last line of the audit log is incomplete ({torn} bytes, written during a \
             crash before it was synced): removing it"
        );
        file.set_len(len - torn)
            .and_then(|()| file.sync_all())
            .map_err(AuditError::io(path))?;
        tail.truncate(complete);
    }
    let Some(body) = tail.strip_suffix(b"\n") else {
        return Ok(None);
    };
    let last = match body.iter().rposition(|&b| b == b'\n') {
        Some(newline) => body.get(newline + 1..).unwrap_or_default(),
        None if start == 0 => body,
        None => return Err(too_long()),
    };
    AuditChain::resume(last)
        .map(Some)
        .map_err(|err| AuditError::BadLine {
            path: path.to_owned(),
            line: count_lines(path),
            detail: format!("cannot continue the audit chain from the last line: {err}"),
        })
}

/// The number of lines in `path` (0 if unreadable), read in pieces.
fn count_lines(path: &Path) -> u64 {
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut lines = 0u64;
    loop {
        let Ok(buffer) = reader.fill_buf() else {
            return lines;
        };
        if buffer.is_empty() {
            return lines;
        }
        lines += buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        let consumed = buffer.len();
        reader.consume(consumed);
    }
}
