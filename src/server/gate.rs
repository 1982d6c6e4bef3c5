//! The tokio side of admission: one [`Gate`] shared by the accept loop and every connection
//! before it authenticates, holding [`Admission`], [`Penalties`] and the log [`Throttle`]
//! under one lock (each step is short and never awaits). A connection holds a [`Place`]; the
//! gate tells it, through a watch channel, when it has a handshake slot or has been
//! displaced, and the place gives itself back when dropped. The decisions are all in the
//! pure modules; this one only applies them and wakes the tasks concerned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::admission::{Admission, Arrival, Moves, Phase, Ticket};
use super::penalty::Penalties;
use super::source::Source;
use super::throttle::Throttle;

/// Where a place stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    /// Holds a place, no slot.
    Placed,
    /// Holds a handshake slot.
    Seated,
    /// Lost its place or slot: close.
    Displaced,
}

/// Why a new connection is not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every place holds a client that has spoken.
    Full,
    /// The source failed to authenticate too often; this much of its penalty is left.
    Penalized(Duration),
}

/// Admission, penalties and the log budget, shared.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    admission: Admission,
    penalties: Penalties,
    notices: HashMap<Ticket, watch::Sender<Notice>>,
    throttle: Throttle,
}

impl State {
    fn apply(&mut self, moves: Moves) {
        for ticket in moves.displaced {
            self.tell(ticket, Notice::Displaced);
        }
        for ticket in moves.granted {
            self.tell(ticket, Notice::Seated);
        }
    }

    fn tell(&mut self, ticket: Ticket, notice: Notice) {
        if notice == Notice::Displaced {
            if let Some(tx) = self.notices.remove(&ticket) {
                tx.send_replace(notice);
            }
        } else if let Some(tx) = self.notices.get(&ticket) {
            tx.send_replace(notice);
        }
    }
}

impl Gate {
    /// `places` connections before a slot, `slots` handshakes at once, `stall` before a
    /// handshake waiting on its client may be displaced, `penalty` per failed authentication.
    pub fn new(places: usize, slots: usize, stall: Duration, penalty: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                admission: Admission::new(places, slots, stall),
                penalties: Penalties::new(penalty),
                notices: HashMap::new(),
                throttle: Throttle::default(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new connection from `source`: its place, or why it is refused.
    pub fn arrive(self: &Arc<Self>, source: Source) -> Result<Place, Refused> {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(left) = state.penalties.refused(source, now) {
            return Err(Refused::Penalized(left));
        }
        let Arrival::Admitted { ticket, displaced } = state.admission.arrive(source) else {
            return Err(Refused::Full);
        };
        if let Some(victim) = displaced {
            state.tell(victim, Notice::Displaced);
        }
        let (tx, notice) = watch::channel(Notice::Placed);
        state.notices.insert(ticket, tx);
        Ok(Place {
            gate: Arc::clone(self),
            ticket,
            source,
            notice,
        })
    }

    /// `source` failed to authenticate.
    pub fn failed(&self, source: Source) {
        self.lock().penalties.failed(source, Instant::now());
    }

    /// Gives the slots of stalled handshakes to queued clients (the accept loop calls this
    /// now and then).
    pub fn promote(&self) {
        let mut state = self.lock();
        let moves = state.admission.promote(Instant::now());
        state.apply(moves);
    }

    /// May a line that a stranger caused be logged now? `Some(n)`: yes, after `n` suppressed.
    pub fn may_log(&self) -> Option<u64> {
        self.lock().throttle.allow(Instant::now())
    }
}

/// A connection's hold on admission, given back when dropped.
#[derive(Debug)]
pub struct Place {
    gate: Arc<Gate>,
    ticket: Ticket,
    source: Source,
    notice: watch::Receiver<Notice>,
}

/// Resolves when the place is displaced (never, once it has been given back).
pub struct Displaced(watch::Receiver<Notice>);

impl Displaced {
    /// Waits for the displacement.
    pub async fn wait(mut self) {
        if self
            .0
            .wait_for(|notice| *notice == Notice::Displaced)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}

impl Place {
    /// Where this connection comes from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// A future for [`Displaced::wait`], to race the connection's work against.
    pub fn displaced(&self) -> Displaced {
        Displaced(self.notice.clone())
    }

    /// The ClientHello is in: waits for a handshake slot. Returns early only if displaced
    /// (the caller races [`Self::displaced`] anyway).
    pub async fn take_slot(&mut self) {
        {
            let mut state = self.gate.lock();
            let moves = state.admission.hello(self.ticket, Instant::now());
            state.apply(moves);
        }
        let _ = self
            .notice
            .wait_for(|notice| *notice != Notice::Placed)
            .await;
    }

    /// The handshake is waiting for the client (`true`) or the server is working (`false`).
    pub fn waiting_on_client(&self, waiting: bool) {
        let phase = if waiting {
            Phase::AwaitingClient(Instant::now())
        } else {
            Phase::Working
        };
        self.gate.lock().admission.phase(self.ticket, phase);
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        state.notices.remove(&self.ticket);
        let moves = state.admission.leave(self.ticket, Instant::now());
        state.apply(moves);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Source = Source::V4([127, 0, 0, 1]);

    #[tokio::test]
    async fn a_displaced_place_is_told_and_a_seated_one_goes_on() {
        let gate = Gate::new(1, 1, Duration::from_secs(2), Duration::ZERO);
        let silent = gate.arrive(SRC).unwrap();
        let displaced = silent.displaced();
        let mut newcomer = gate.arrive(SRC).unwrap();
        tokio::time::timeout(Duration::from_secs(5), displaced.wait())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), newcomer.take_slot())
            .await
            .unwrap();
        // The displaced place's drop is harmless; the slot is given back with the newcomer.
        drop(silent);
        drop(newcomer);
        let mut again = gate.arrive(SRC).unwrap();
        tokio::time::timeout(Duration::from_secs(5), again.take_slot())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_queued_place_is_seated_when_a_slot_is_given_back() {
        let gate = Gate::new(4, 1, Duration::from_secs(2), Duration::ZERO);
        let mut first = gate.arrive(SRC).unwrap();
        first.take_slot().await;
        let mut second = gate.arrive(SRC).unwrap();
        let waiting = tokio::spawn(async move {
            second.take_slot().await;
            second
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_penalized_source_is_refused_and_others_are_not() {
        let gate = Gate::new(4, 1, Duration::from_secs(2), Duration::from_secs(5));
        for _ in 0..3 {
            gate.failed(SRC);
        }
        assert!(matches!(gate.arrive(SRC), Err(Refused::Penalized(_))));
        assert!(gate.arrive(Source::V4([127, 0, 0, 2])).is_ok());
    }
}
