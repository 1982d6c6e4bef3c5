//! `audit verify --witness FILE`: the checkpoints a copy kept elsewhere recorded (what the
//! syslog sink sent: RFC 5424 messages, or the JSON checkpoint lines themselves), and whether
//! the log still holds each of them byte for byte. A log cut back to an earlier line, even to
//! an earlier final seal, is intact by itself; only a checkpoint seen elsewhere shows that
//! more was written. This module only reads the witness and compares: the chain itself is
//! checked by the walk in `verify`, and a witness never turns a broken log into a pass.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use crate::crypto::PublicKey;

use super::{Break, Location, Tamper};
use crate::audit::AuditError;
use crate::audit::chain::{Event, EventKind, check_checkpoint, line_hash};

/// Where a witnessed line starts in a syslog message: the audit line is the message body.
const LINE_START: &str = "{\"time\":";

/// A checkpoint recorded elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    /// Where the witness recorded it.
    pub at: Location,
    /// Its seq.
    pub seq: u64,
    /// Its time, as written.
    pub time: String,
    /// The hash of its line.
    pub hash: String,
}

/// What the witness confirmed, for the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// Witnessed checkpoints found in the log, byte for byte.
    pub found: u64,
    /// Witnessed checkpoints older than the first file given (not checked).
    pub older: u64,
    /// The newest one found.
    pub latest: Option<Witnessed>,
}

/// Every checkpoint in the witness `path`, each checked under `host`; other lines (other
/// events, a collector's own lines) are skipped. A checkpoint that does not verify is an error
/// naming its line: the witness itself was changed, or belongs to another host.
pub fn read(path: &Path, host: &PublicKey) -> Result<Vec<Witnessed>, AuditError> {
    let file = File::open(path).map_err(AuditError::io(path))?;
    let mut witnessed = Vec::new();
    for (index, text) in BufReader::new(file).lines().enumerate() {
        let text = text.map_err(AuditError::io(path))?;
        let line = u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1);
        let Some(start) = text.find(LINE_START) else {
            continue;
        };
        let body = text.get(start..).unwrap_or_default().trim_end_matches('\r');
        let Ok(event) = Event::parse(body.as_bytes()) else {
            continue;
        };
        if event.record.event != EventKind::Checkpoint {
            continue;
        }
        check_checkpoint(body, &event, host).map_err(|problem| AuditError::BadLine {
            path: path.to_owned(),
            line,
            detail: format!("a witnessed checkpoint that does not hold ({problem})"),
        })?;
        witnessed.push(Witnessed {
            at: Location {
                file: path.to_owned(),
                line,
            },
            seq: event.seq,
            time: event.time,
            hash: line_hash(body.as_bytes()),
        });
    }
    Ok(witnessed)
}

/// Compares `witnessed` with the log's checkpoints (`seq` → hash and place), whose lines
/// run from seq `first` to seq `last`. The first witnessed checkpoint the log does not hold
/// is the break.
pub fn compare(
    witnessed: &[Witnessed],
    checkpoints: &HashMap<u64, (String, Location)>,
    first: u64,
    last: u64,
) -> Result<Confirmed, Break> {
    let mut confirmed = Confirmed {
        found: 0,
        older: 0,
        latest: None,
    };
    for seen in witnessed {
        if seen.seq < first {
            confirmed.older += 1;
            continue;
        }
        match checkpoints.get(&seen.seq) {
            Some((hash, _)) if *hash == seen.hash => {
                confirmed.found += 1;
                if confirmed.latest.as_ref().is_none_or(|l| l.seq < seen.seq) {
                    confirmed.latest = Some(seen.clone());
                }
            }
            Some((_, at)) => {
                return Err(Break {
                    at: seen.at.clone(),
                    tamper: Tamper::Edited,
                    detail: format!(
                        "the witnessed checkpoint seq {} ({}) is not the log's checkpoint at {at}: \
                         the log was rewritten from there",
                        seen.seq, seen.time
                    ),
                });
            }
            None if seen.seq > last => {
                return Err(Break {
                    at: seen.at.clone(),
                    tamper: Tamper::Deleted,
                    detail: format!(
                        "the log ends at seq {last}, but the checkpoint seq {} ({}) was recorded \
                         elsewhere: the log was cut back",
                        seen.seq, seen.time
                    ),
                });
            }
            None => {
                return Err(Break {
                    at: seen.at.clone(),
                    tamper: Tamper::Edited,
                    detail: format!(
                        "the witnessed checkpoint seq {} ({}) is not in the log, which has another \
                         line at that seq: the log was rewritten from there",
                        seen.seq, seen.time
                    ),
                });
            }
        }
    }
    Ok(confirmed)
}
