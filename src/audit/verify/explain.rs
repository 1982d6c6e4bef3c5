//! Why the chain broke where it did: given the walk so far, the first line that would not
//! link and up to a window of lines after it, the heuristics that name the most likely
//! tampering (edited, deleted, inserted, reordered) and the line where it happened. The walk
//! in `verify` decides *whether* the chain holds; this module only describes a break already
//! found. It never changes the walk, never reads a file and never turns a break into a pass.

use super::{Break, Line, Linked, Problem, Tamper, Walk};
use crate::audit::chain::{Event, EventKind};

impl Walk<'_> {
    /// A checkpoint that carries a valid signature is genuine wherever it stands.
    fn signed_checkpoint(&self, line: &Line) -> bool {
        line.event.as_ref().is_ok_and(|event| {
            event.record.event == EventKind::Checkpoint && self.signature(line, event).is_ok()
        })
    }

    /// Some later line links to `line`, or it is a signed checkpoint: it is part of the chain.
    fn genuine(&self, line: &Line, ahead: &[Line]) -> bool {
        ahead.iter().any(|a| a.prev() == Some(&line.hash)) || self.signed_checkpoint(line)
    }

    /// The break `problem` stands for, at `line`, told from the lines `ahead` of it.
    pub(super) fn explain(&self, problem: Problem, line: &Line, ahead: &[Line]) -> Break {
        match problem {
            Problem::Plain(found) => found,
            Problem::Head => self.explain_head(line, ahead),
            Problem::Link => self.explain_link(line, ahead),
        }
    }

    /// The first line is not the genesis `start`.
    fn explain_head(&self, line: &Line, ahead: &[Line]) -> Break {
        let at = line.at.clone();
        let seq = line.seq().unwrap_or_default();
        match ahead
            .iter()
            .find(|a| a.event.as_ref().is_ok_and(Event::is_genesis))
        {
            Some(genesis) if self.genuine(line, ahead) => Break {
                at,
                tamper: Tamper::Reordered,
                detail: format!("seq {seq} stands before the genesis line ({})", genesis.at),
            },
            Some(genesis) => Break {
                at,
                tamper: Tamper::Inserted,
                detail: format!(
                    "a line that is not part of the chain, before the genesis line ({})",
                    genesis.at
                ),
            },
            None => Break {
                at,
                tamper: Tamper::Deleted,
                detail: format!(
                    "the log does not begin with its genesis `start` line: this line is seq {seq}, \
                     so {} earlier line(s) are missing (a cut head, or an older rotated file \
                     not given)",
                    seq.saturating_sub(1)
                ),
            },
        }
    }

    /// The line does not link to the one before: say why, from the lines around it.
    fn explain_link(&self, line: &Line, ahead: &[Line]) -> Break {
        let Some(last) = self.recent.back() else {
            return self.explain_head(line, ahead);
        };
        let at = line.at.clone();
        let expected = last.seq.saturating_add(1);
        let seq = line.seq().unwrap_or_default();
        let belongs_after = ahead.iter().find(|a| Some(a.hash.as_str()) == line.prev());
        if let Some(target) = belongs_after
            && self.genuine(line, ahead)
        {
            return Break {
                at,
                tamper: Tamper::Reordered,
                detail: format!(
                    "seq {seq} is out of place: it belongs after {} (seq {})",
                    target.at,
                    target.seq().unwrap_or_default()
                ),
            };
        }
        if let Some(next) = ahead.first()
            && next.prev() == Some(&last.hash)
            && next.seq() == Some(expected)
        {
            return Break {
                at,
                tamper: Tamper::Inserted,
                detail: format!(
                    "not part of the chain: the next line ({}) links directly to {}",
                    next.at, last.at
                ),
            };
        }
        match seq.cmp(&expected) {
            std::cmp::Ordering::Equal => self.explain_edit(line, ahead, last),
            std::cmp::Ordering::Greater => {
                if let Some(early) = ahead
                    .iter()
                    .find(|a| a.seq().is_some_and(|s| (expected..seq).contains(&s)))
                {
                    return Break {
                        at,
                        tamper: Tamper::Reordered,
                        detail: format!(
                            "seq {seq} comes before seq {} ({})",
                            early.seq().unwrap_or_default(),
                            early.at
                        ),
                    };
                }
                let continues = line
                    .event
                    .as_ref()
                    .ok()
                    .filter(|event| event.record.event == EventKind::Rotate)
                    .and_then(|event| event.record.lines);
                let hint = match (at.line, continues) {
                    (1, Some(lines)) => format!(
                        " (a rotated file missing or emptied: this file continues one of {lines} \
                         lines)"
                    ),
                    (1, None) => " (a rotated file missing?)".to_owned(),
                    _ => String::new(),
                };
                Break {
                    at,
                    tamper: Tamper::Deleted,
                    detail: format!(
                        "{} line(s) missing before this one{hint}: seq jumps from {} to {seq}",
                        seq - expected,
                        last.seq
                    ),
                }
            }
            std::cmp::Ordering::Less => self.explain_repeat(line, last),
        }
    }

    /// Same seq as expected but a wrong link: the line before changed, or this line's `prev`.
    fn explain_edit(&self, line: &Line, ahead: &[Line], last: &Linked) -> Break {
        let linked_from_next = ahead.first().is_some_and(|n| n.prev() == Some(&line.hash));
        if linked_from_next || self.signed_checkpoint(line) {
            Break {
                at: last.at.clone(),
                tamper: Tamper::Edited,
                detail: format!(
                    "its hash no longer matches the prev of the next line ({})",
                    line.at
                ),
            }
        } else if ahead.is_empty() {
            Break {
                at: last.at.clone(),
                tamper: Tamper::Edited,
                detail: format!(
                    "its hash does not match the prev of the next line ({}), or that prev was \
                     edited",
                    line.at
                ),
            }
        } else {
            Break {
                at: line.at.clone(),
                tamper: Tamper::Edited,
                detail: format!(
                    "its prev does not match the line before ({}) and the next line does not \
                     link to it",
                    last.at
                ),
            }
        }
    }

    /// The seq goes back: a block of lines was inserted after an earlier line that this one
    /// follows, or this line was moved.
    fn explain_repeat(&self, line: &Line, last: &Linked) -> Break {
        let at = line.at.clone();
        let seq = line.seq().unwrap_or_default();
        let parent = self.recent.iter().position(|r| {
            Some(r.hash.as_str()) == line.prev() && r.seq.checked_add(1) == Some(seq)
        });
        let Some(parent) = parent else {
            return Break {
                at,
                tamper: Tamper::Reordered,
                detail: format!("seq goes back from {} to {seq}", last.seq),
            };
        };
        let block: Vec<&Linked> = self.recent.iter().skip(parent + 1).collect();
        let parent_at = self
            .recent
            .get(parent)
            .map(|p| p.at.to_string())
            .unwrap_or_default();
        match block.first() {
            Some(first) if block.iter().all(|l| !l.checkpoint) => Break {
                at: first.at.clone(),
                tamper: Tamper::Inserted,
                detail: format!(
                    "not part of the chain: {} links directly to {parent_at}, past {} line(s) \
                     starting here",
                    line.at,
                    block.len()
                ),
            },
            _ => Break {
                at,
                tamper: Tamper::Inserted,
                detail: format!(
                    "not part of the chain: it claims to follow {parent_at}, which the signed \
                     lines after it already follow"
                ),
            },
        }
    }
}
