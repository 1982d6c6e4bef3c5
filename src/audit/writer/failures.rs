//! Failed authentications, counted instead of written one by one: [`FailureTally`] adds up an
//! interval's failures per source and, once the interval since the first of them has passed
//! (or at shutdown), gives one `auth_fail` summary record: the total, the sources with the
//! most failures, the refused keys they proved possession of, and the rest as `unlisted`.
//! Whatever strangers do, the log grows by at most one bounded record per interval, and the
//! tally's memory stays bounded too. It is pure: no files, no clock (the time is passed in),
//! no channels; it never writes anything itself and never decides what counts as a failure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::millis;
use crate::audit::chain::{EventKind, FailureSource, Record, RefusedKey};

/// Most sources listed in one summary.
const MAX_LISTED: usize = 16;

/// Most distinct refused keys listed for one source.
const MAX_REFUSED: usize = 4;

/// Most distinct sources tracked in one interval; failures from further sources are only
/// counted (in `failures` and `unlisted`).
const MAX_TRACKED: usize = 4096;

/// One interval's failed authentications, waiting to be summarised.
#[derive(Debug)]
pub(super) struct FailureTally {
    interval: Duration,
    /// When the first failure of the interval came; `None` while there is none.
    first: Option<Instant>,
    failures: u64,
    sources: HashMap<String, SourceCount>,
}

/// One tracked source's failures.
#[derive(Debug)]
struct SourceCount {
    /// Its place among the interval's sources (0 for the first seen): ties go to the earliest.
    order: usize,
    failures: u64,
    refused: Vec<RefusedKey>,
}

impl FailureTally {
    /// An empty tally whose summaries are due `interval` after their first failure.
    pub(super) fn new(interval: Duration) -> Self {
        Self {
            interval,
            first: None,
            failures: 0,
            sources: HashMap::new(),
        }
    }

    /// Counts one failed authentication from `source` at `now`, with the authorized key it
    /// proved possession of if that key's options refused it.
    pub(super) fn add(&mut self, source: &str, refused: Option<RefusedKey>, now: Instant) {
        self.first.get_or_insert(now);
        self.failures = self.failures.saturating_add(1);
        let order = self.sources.len();
        let count = match self.sources.get_mut(source) {
            Some(count) => count,
            None if order < MAX_TRACKED => {
                self.sources
                    .entry(source.to_owned())
                    .or_insert(SourceCount {
                        order,
                        failures: 0,
                        refused: Vec::new(),
                    })
            }
            None => return,
        };
        count.failures = count.failures.saturating_add(1);
        if let Some(refused) = refused {
            let known = count
                .refused
                .iter()
                .any(|r| r.key == refused.key && r.rule == refused.rule);
            if !known && count.refused.len() < MAX_REFUSED {
                count.refused.push(refused);
            }
        }
    }

    /// When the summary is due: one interval after the interval's first failure. `None` while
    /// there is no failure to report.
    pub(super) fn due(&self) -> Option<Instant> {
        self.first
            .and_then(|first| first.checked_add(self.interval))
    }

    /// The summary of everything counted so far, written at `now`, and a fresh interval;
    /// `None` if there was no failure.
    pub(super) fn summary(&mut self, now: Instant) -> Option<Record> {
        let first = self.first.take()?;
        let failures = std::mem::take(&mut self.failures);
        let mut ranked: Vec<(String, SourceCount)> =
            std::mem::take(&mut self.sources).into_iter().collect();
        ranked.sort_unstable_by(|(_, a), (_, b)| {
            b.failures.cmp(&a.failures).then(a.order.cmp(&b.order))
        });
        ranked.truncate(MAX_LISTED);
        let listed = ranked
            .iter()
            .fold(0u64, |sum, (_, count)| sum.saturating_add(count.failures));
        let unlisted = failures.saturating_sub(listed);
        let mut record = Record::new(EventKind::AuthFail);
        record.duration_ms = Some(millis(now.saturating_duration_since(first)));
        record.failures = Some(failures);
        record.sources = Some(
            ranked
                .into_iter()
                .map(|(source, count)| FailureSource {
                    source,
                    failures: count.failures,
                    refused: count.refused,
                })
                .collect(),
        );
        record.unlisted = (unlisted > 0).then_some(unlisted);
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn refused(name: &str, rule: &str) -> RefusedKey {
        RefusedKey {
            name: name.into(),
            key: format!("SHA256:{name}"),
            rule: rule.into(),
            reason: None,
            cert: None,
        }
    }

    fn listed(record: &Record) -> Vec<(&str, u64)> {
        record
            .sources
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| (s.source.as_str(), s.failures))
            .collect()
    }

    #[test]
    fn nothing_to_report_without_failures() {
        let mut tally = FailureTally::new(MINUTE);
        assert_eq!(tally.due(), None);
        assert_eq!(tally.summary(Instant::now()), None);
    }

    #[test]
    fn a_summary_is_due_one_interval_after_its_first_failure() {
        let start = Instant::now();
        let mut tally = FailureTally::new(MINUTE);
        tally.add("10.0.0.1", None, start);
        tally.add("10.0.0.1", None, start + Duration::from_secs(50));
        assert_eq!(tally.due(), Some(start + MINUTE));
        let summary = tally.summary(start + MINUTE).unwrap();
        assert_eq!(summary.event, EventKind::AuthFail);
        assert_eq!(summary.failures, Some(2));
        assert_eq!(summary.duration_ms, Some(60_000));
        assert_eq!(listed(&summary), [("10.0.0.1", 2)]);
        assert_eq!(summary.unlisted, None);
        // A fresh interval: nothing due until the next failure, then a whole interval later.
        assert_eq!(tally.due(), None);
        assert_eq!(tally.summary(start + MINUTE), None);
        let later = start + Duration::from_secs(90);
        tally.add("10.0.0.2", None, later);
        assert_eq!(tally.due(), Some(later + MINUTE));
        let early = tally.summary(later + Duration::from_secs(5)).unwrap();
        assert_eq!(early.duration_ms, Some(5_000));
        assert_eq!(listed(&early), [("10.0.0.2", 1)]);
    }

    #[test]
    fn the_sixteen_busiest_sources_are_listed_ties_earliest_first() {
        let now = Instant::now();
        let mut tally = FailureTally::new(MINUTE);
        for n in 0..20u64 {
            let source = format!("10.0.0.{n}");
            // 10.0.0.0-3 fail twice, the rest once; 10.0.0.19 five times.
            let times = match n {
                0..4 => 2,
                19 => 5,
                _ => 1,
            };
            for _ in 0..times {
                tally.add(&source, None, now);
            }
        }
        let summary = tally.summary(now).unwrap();
        assert_eq!(summary.failures, Some(5 + 4 * 2 + 15));
        let want: Vec<(String, u64)> = [("10.0.0.19".to_owned(), 5)]
            .into_iter()
            .chain((0..4).map(|n| (format!("10.0.0.{n}"), 2)))
            .chain((4..15).map(|n| (format!("10.0.0.{n}"), 1)))
            .collect();
        let got: Vec<(String, u64)> = listed(&summary)
            .into_iter()
            .map(|(s, n)| (s.to_owned(), n))
            .collect();
        assert_eq!(got, want);
        // 10.0.0.15 to 10.0.0.18, once each.
        assert_eq!(summary.unlisted, Some(4));
    }

    #[test]
    fn each_source_lists_at_most_four_distinct_refused_keys() {
        let now = Instant::now();
        let mut tally = FailureTally::new(MINUTE);
        let from = "from=: 10.1.2.3 is not an allowed source address for this key";
        let expired = "expires=: the key expired on 2025-01-01";
        for _ in 0..3 {
            tally.add("10.1.2.3", Some(refused("alice", from)), now);
        }
        tally.add("10.1.2.3", Some(refused("alice", expired)), now);
        tally.add("10.1.2.3", None, now);
        for name in ["bob", "carol", "dave"] {
            tally.add("10.1.2.3", Some(refused(name, from)), now);
        }
        let summary = tally.summary(now).unwrap();
        let sources = summary.sources.unwrap();
        let [source] = sources.as_slice() else {
            panic!("{sources:?}")
        };
        assert_eq!(source.failures, 8);
        assert_eq!(
            source.refused,
            [
                refused("alice", from),
                refused("alice", expired),
                refused("bob", from),
                refused("carol", from)
            ]
        );
    }

    #[test]
    fn sources_beyond_the_tracked_ones_are_still_counted() {
        let now = Instant::now();
        let mut tally = FailureTally::new(MINUTE);
        let sources = MAX_TRACKED as u64 + 100;
        for n in 0..sources {
            tally.add(
                &format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255),
                None,
                now,
            );
        }
        assert_eq!(tally.sources.len(), MAX_TRACKED);
        // An untracked source's later failures are not tracked either.
        tally.add("10.0.16.99", Some(refused("eve", "from=")), now);
        assert_eq!(tally.sources.len(), MAX_TRACKED);
        // A tracked one's still are.
        tally.add("10.0.0.7", None, now);
        let summary = tally.summary(now).unwrap();
        assert_eq!(summary.failures, Some(sources + 2));
        let listed = listed(&summary);
        assert_eq!(listed.len(), MAX_LISTED);
        assert_eq!(listed.first(), Some(&("10.0.0.7", 2)));
        assert_eq!(summary.unlisted, Some(sources + 2 - 2 - 15));
        let line = serde_json::to_string(&summary).unwrap();
        assert!(line.len() < 2048, "{} bytes: {line}", line.len());
    }
}
