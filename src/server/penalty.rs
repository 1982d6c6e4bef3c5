//! Per-source penalties for failed authentication, as sshd's PerSourcePenalties: each failure
//! adds a fixed penalty to its source's (capped at [`MAX_PENALTY`]); once what is left of it
//! exceeds two failures' worth, new connections from that source are refused until it has
//! drained away in real time. Three failures within one penalty (5 s by default) block a
//! source for about three (15 s); after that it gets about one try per penalty. Only failed authentication earns a penalty — never silence, slowness
//! or a dropped connection, which admission answers without refusing an address. Pure: the
//! time is passed in; the table is bounded ([`MAX_SOURCES`]; when it is full of live
//! penalties, new sources go untracked, as sshd's `overflow:permissive`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::source::Source;

/// No source's penalty grows beyond this.
pub const MAX_PENALTY: Duration = Duration::from_secs(600);

/// Most sources tracked at once.
pub const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Penalty {
    /// When the penalty has drained.
    until: Instant,
    /// Exceeded two failures' worth: refused until `until`.
    enforced: bool,
}

/// The penalty table.
#[derive(Debug)]
pub struct Penalties {
    per_failure: Duration,
    table: HashMap<Source, Penalty>,
}

impl Penalties {
    /// Each failure costs `per_failure`; zero turns penalties off.
    pub fn new(per_failure: Duration) -> Self {
        Self {
            per_failure,
            table: HashMap::new(),
        }
    }

    /// `source` failed to authenticate at `now`.
    pub fn failed(&mut self, source: Source, now: Instant) {
        if self.per_failure.is_zero() {
            return;
        }
        if self.table.len() >= MAX_SOURCES && !self.table.contains_key(&source) {
            self.table.retain(|_, penalty| penalty.until > now);
            if self.table.len() >= MAX_SOURCES {
                return;
            }
        }
        let penalty = self.table.entry(source).or_insert(Penalty {
            until: now,
            enforced: false,
        });
        let base = penalty.until.max(now);
        penalty.until = (base + self.per_failure).min(now + MAX_PENALTY);
        if penalty.until.saturating_duration_since(now) > self.per_failure * 2 {
            penalty.enforced = true;
        }
    }

    /// How much longer a new connection from `source` is refused, if it is.
    pub fn refused(&mut self, source: Source, now: Instant) -> Option<Duration> {
        let penalty = *self.table.get(&source)?;
        if penalty.until <= now {
            self.table.remove(&source);
            return None;
        }
        penalty
            .enforced
            .then(|| penalty.until.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Source = Source::V4([192, 0, 2, 7]);
    const OTHER: Source = Source::V4([192, 0, 2, 8]);
    const FIVE: Duration = Duration::from_secs(5);

    #[test]
    fn three_quick_failures_block_a_source_until_the_penalty_drains() {
        let t0 = Instant::now();
        let t2 = t0 + Duration::from_millis(4999);
        let mut p = Penalties::new(FIVE);
        p.failed(S, t0);
        p.failed(S, t0);
        assert_eq!(p.refused(S, t0), None, "two failures' worth: not enforced");
        p.failed(S, t2);
        assert_eq!(p.refused(S, t2), Some(Duration::from_millis(10_001)));
        assert_eq!(p.refused(S, t0), Some(Duration::from_secs(15)));
        assert_eq!(p.refused(OTHER, t0), None);
        assert_eq!(
            p.refused(S, t0 + Duration::from_secs(14)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(p.refused(S, t0 + Duration::from_secs(15)), None);
        // Drained: the next failure starts from nothing.
        p.failed(S, t0 + Duration::from_secs(16));
        assert_eq!(p.refused(S, t0 + Duration::from_secs(16)), None);
    }

    #[test]
    fn slow_failures_drain_before_they_add_up() {
        let t0 = Instant::now();
        let mut p = Penalties::new(FIVE);
        for n in 0..100 {
            let now = t0 + Duration::from_secs(6) * n;
            p.failed(S, now);
            assert_eq!(p.refused(S, now), None);
        }
    }

    #[test]
    fn the_penalty_is_capped() {
        let t0 = Instant::now();
        let mut p = Penalties::new(FIVE);
        for _ in 0..1000 {
            p.failed(S, t0);
        }
        assert_eq!(p.refused(S, t0), Some(MAX_PENALTY));
    }

    #[test]
    fn zero_turns_penalties_off() {
        let t0 = Instant::now();
        let mut p = Penalties::new(Duration::ZERO);
        for _ in 0..10 {
            p.failed(S, t0);
        }
        assert_eq!(p.refused(S, t0), None);
        assert!(p.table.is_empty());
    }

    #[test]
    fn a_full_table_forgets_drained_sources_then_stops_tracking_new_ones() {
        let t0 = Instant::now();
        let mut p = Penalties::new(FIVE);
        for n in 0..MAX_SOURCES as u32 {
            p.failed(Source::V4(n.to_be_bytes()), t0);
        }
        p.failed(S, t0 + Duration::from_secs(1));
        assert!(!p.table.contains_key(&S), "live penalties fill the table");
        let later = t0 + Duration::from_secs(6);
        for _ in 0..3 {
            p.failed(S, later);
        }
        assert_eq!(p.table.len(), 1, "drained entries were swept");
        assert!(p.refused(S, later).is_some());
    }
}
