//! A budget for log lines that strangers can cause (connections, drops, failed handshakes):
//! at most [`Throttle::PER_SECOND`] a second, and the first line after a suppressed run says
//! how many were left out, so a flood costs the logs a bounded rate and still shows. Pure: the
//! time is passed in.

use std::time::{Duration, Instant};

/// The budget.
#[derive(Debug, Default)]
pub struct Throttle {
    window: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl Throttle {
    /// Lines allowed per second.
    pub const PER_SECOND: u32 = 20;

    /// May a line be logged at `now`? `Some(n)`: yes, and `n` lines were suppressed since the
    /// last one logged.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(1));
        if fresh {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used >= Self::PER_SECOND {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_budget_and_counted() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        let allowed = (0..1000).filter(|_| t.allow(t0).is_some()).count();
        assert_eq!(allowed, Throttle::PER_SECOND as usize);
        assert_eq!(t.allow(t0 + Duration::from_millis(999)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), Some(981));
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), Some(0));
    }
}
