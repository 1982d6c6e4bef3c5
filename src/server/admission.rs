//! Admission before authentication, as pure bookkeeping over tickets and a time passed in
//! (the tokio side is [`super::gate`]). A new connection takes a *place* (at most `places`
//! of them: connections that have not yet sent their ClientHello, or that sent it and wait
//! for a handshake slot); one that sent its ClientHello takes a *slot* (at most `slots`: the
//! handshakes in progress, which cost the RSA work).
//!
//! Like sshd's MaxStartups early drop, but aimed: silence never makes a well-behaved client
//! wait. When every place is taken, a new connection displaces a silent one — the oldest of
//! the source that holds the most silent places — instead of being refused; only when every
//! place holds a client that has spoken is it refused. When every slot is taken, a
//! ClientHello displaces a handshake that has waited on its client for at least `stall`
//! (stalled mid-handshake); otherwise it queues for the next free slot, in arrival order.
//! Nothing here refuses an address: penalties are [`super::penalty`]'s. Never blocks, never
//! allocates beyond one entry per place and slot, and every step costs at most one pass over
//! the slots or over one source's places.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::source::Source;

/// One connection's claim on admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

/// What a handshake in a slot is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The server is working (RSA, authorization): never displaced.
    Working,
    /// Waiting for the client's next message, since this time.
    AwaitingClient(Instant),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Has a place; no ClientHello yet.
    Silent,
    /// Sent its ClientHello; waits for a slot.
    Queued,
    /// Has a slot.
    InSlot(Phase),
}

#[derive(Debug)]
struct Entry {
    source: Source,
    stage: Stage,
}

/// What became of a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// It has a place; `displaced`, if any, lost its own and must be closed.
    Admitted {
        /// The new connection's ticket.
        ticket: Ticket,
        /// A silent connection that gave up its place.
        displaced: Option<Ticket>,
    },
    /// Every place holds a connection that has spoken: refused.
    Full,
}

/// Tickets whose state changed as a side effect of a step.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moves {
    /// Queued tickets that now have a slot.
    pub granted: Vec<Ticket>,
    /// Stalled handshakes that gave up their slot to them.
    pub displaced: Vec<Ticket>,
}

/// The bookkeeping.
#[derive(Debug)]
pub struct Admission {
    places: usize,
    slots: usize,
    stall: Duration,
    next: u64,
    entries: HashMap<Ticket, Entry>,
    /// Silent tickets per source, oldest first.
    silent: HashMap<Source, VecDeque<Ticket>>,
    /// Tickets waiting for a slot, oldest first.
    queue: VecDeque<Ticket>,
    /// Tickets in slots.
    in_slots: Vec<Ticket>,
}

impl Admission {
    /// `places` connections before their slot, `slots` handshakes at once; a handshake that
    /// waited on its client for `stall` may be displaced. Both counts are at least 1.
    pub fn new(places: usize, slots: usize, stall: Duration) -> Self {
        Self {
            places: places.max(1),
            slots: slots.max(1),
            stall,
            next: 0,
            entries: HashMap::new(),
            silent: HashMap::new(),
            queue: VecDeque::new(),
            in_slots: Vec::new(),
        }
    }

    /// A new connection from `source`.
    pub fn arrive(&mut self, source: Source) -> Arrival {
        let displaced = if self.placed() < self.places {
            None
        } else {
            match self.silent_victim() {
                Some(victim) => {
                    self.remove(victim);
                    Some(victim)
                }
                None => return Arrival::Full,
            }
        };
        let ticket = Ticket(self.next);
        self.next += 1;
        self.entries.insert(
            ticket,
            Entry {
                source,
                stage: Stage::Silent,
            },
        );
        self.silent.entry(source).or_default().push_back(ticket);
        Arrival::Admitted { ticket, displaced }
    }

    /// `ticket` sent its ClientHello and asks for a slot: it queues, and takes a slot at once
    /// if one is free or stalled (then `granted` names it).
    pub fn hello(&mut self, ticket: Ticket, now: Instant) -> Moves {
        match self.entries.get(&ticket) {
            Some(entry) if entry.stage == Stage::Silent => {
                let source = entry.source;
                self.forget_silent(source, ticket);
                self.set_stage(ticket, Stage::Queued);
                self.queue.push_back(ticket);
                self.promote(now)
            }
            _ => Moves::default(),
        }
    }

    /// What the handshake in `ticket`'s slot is doing now.
    pub fn phase(&mut self, ticket: Ticket, phase: Phase) {
        if let Some(entry) = self.entries.get_mut(&ticket)
            && let Stage::InSlot(_) = entry.stage
        {
            entry.stage = Stage::InSlot(phase);
        }
    }

    /// `ticket` is done with admission (authenticated, refused, failed or closed): its place
    /// or slot is free. Queued tickets may take freed slots.
    pub fn leave(&mut self, ticket: Ticket, now: Instant) -> Moves {
        self.remove(ticket);
        self.promote(now)
    }

    /// Hands free slots, and slots of stalled handshakes, to queued tickets. Called by
    /// [`Self::leave`], and now and then by the caller so that a handshake that stalls while
    /// others queue gives way.
    pub fn promote(&mut self, now: Instant) -> Moves {
        let mut moves = Moves::default();
        while let Some(&next) = self.queue.front() {
            if self.in_slots.len() >= self.slots {
                match self.stalled_victim(now) {
                    Some(victim) => {
                        self.remove(victim);
                        moves.displaced.push(victim);
                    }
                    None => break,
                }
            }
            self.queue.pop_front();
            self.seat(next);
            moves.granted.push(next);
        }
        moves
    }

    /// Connections holding a place (silent or queued), not a slot.
    fn placed(&self) -> usize {
        self.entries.len() - self.in_slots.len()
    }

    fn seat(&mut self, ticket: Ticket) {
        self.set_stage(ticket, Stage::InSlot(Phase::Working));
        self.in_slots.push(ticket);
    }

    fn set_stage(&mut self, ticket: Ticket, stage: Stage) {
        if let Some(entry) = self.entries.get_mut(&ticket) {
            entry.stage = stage;
        }
    }

    /// The oldest silent ticket of the source with the most silent tickets (ties: the source
    /// whose oldest is oldest).
    fn silent_victim(&self) -> Option<Ticket> {
        self.silent
            .values()
            .filter_map(|tickets| tickets.front().map(|&oldest| (tickets.len(), oldest)))
            .max_by(|(a_len, a), (b_len, b)| a_len.cmp(b_len).then(b.0.cmp(&a.0)))
            .map(|(_, oldest)| oldest)
    }

    /// The slot holder that has waited longest on its client, if that is at least `stall`.
    fn stalled_victim(&self, now: Instant) -> Option<Ticket> {
        self.in_slots
            .iter()
            .filter_map(|ticket| match self.entries.get(ticket)?.stage {
                Stage::InSlot(Phase::AwaitingClient(since))
                    if now.saturating_duration_since(since) >= self.stall =>
                {
                    Some((since, *ticket))
                }
                _ => None,
            })
            .min_by_key(|(since, _)| *since)
            .map(|(_, ticket)| ticket)
    }

    fn remove(&mut self, ticket: Ticket) {
        let Some(entry) = self.entries.remove(&ticket) else {
            return;
        };
        match entry.stage {
            Stage::Silent => self.forget_silent(entry.source, ticket),
            Stage::Queued => self.queue.retain(|t| *t != ticket),
            Stage::InSlot(_) => self.in_slots.retain(|t| *t != ticket),
        }
    }

    fn forget_silent(&mut self, source: Source, ticket: Ticket) {
        if let Some(tickets) = self.silent.get_mut(&source) {
            tickets.retain(|t| *t != ticket);
            if tickets.is_empty() {
                self.silent.remove(&source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(2);

    fn src(n: u8) -> Source {
        Source::V4([10, 0, 0, n])
    }

    fn admitted(arrival: Arrival) -> (Ticket, Option<Ticket>) {
        match arrival {
            Arrival::Admitted { ticket, displaced } => (ticket, displaced),
            Arrival::Full => panic!("refused"),
        }
    }

    #[test]
    fn silent_connections_give_way_to_new_ones_oldest_of_the_busiest_source_first() {
        let mut a = Admission::new(3, 2, STALL);
        let (x1, _) = admitted(a.arrive(src(2)));
        let (x2, _) = admitted(a.arrive(src(2)));
        let (y1, _) = admitted(a.arrive(src(1)));
        // Full: the busiest source (2) loses its oldest.
        let (z, displaced) = admitted(a.arrive(src(3)));
        assert_eq!(displaced, Some(x1));
        // Now each source holds one; the oldest of all goes.
        let (_, displaced) = admitted(a.arrive(src(4)));
        assert_eq!(displaced, Some(x2));
        let (_, displaced) = admitted(a.arrive(src(4)));
        assert_eq!(displaced, Some(y1));
        let _ = z;
    }

    fn seated(moves: &Moves) -> Vec<Ticket> {
        moves.granted.clone()
    }

    #[test]
    fn a_client_that_spoke_is_never_displaced_by_a_newcomer() {
        let now = Instant::now();
        let mut a = Admission::new(2, 1, STALL);
        let (t1, _) = admitted(a.arrive(src(1)));
        let (t2, _) = admitted(a.arrive(src(1)));
        assert_eq!(seated(&a.hello(t1, now)), [t1]);
        assert_eq!(a.hello(t2, now), Moves::default());
        // One in a slot (t1), one queued (t2): the queue holds a place.
        let (t3, displaced) = admitted(a.arrive(src(1)));
        assert_eq!(displaced, None);
        // Places: t2 (queued, spoke) and t3 (silent). A newcomer displaces t3 only.
        let (n, displaced) = admitted(a.arrive(src(9)));
        assert_eq!(displaced, Some(t3));
        // Once the newcomer has spoken too, nobody is silent: refused.
        a.hello(n, now);
        assert_eq!(a.arrive(src(9)), Arrival::Full);
    }

    #[test]
    fn refused_only_when_every_place_holds_a_client_that_spoke() {
        let now = Instant::now();
        let mut a = Admission::new(1, 1, STALL);
        let (t1, _) = admitted(a.arrive(src(1)));
        a.hello(t1, now);
        let (t2, _) = admitted(a.arrive(src(1)));
        assert_eq!(a.hello(t2, now), Moves::default());
        assert_eq!(a.arrive(src(1)), Arrival::Full);
        // t1 leaves: t2 gets the slot and a place is free again.
        assert_eq!(seated(&a.leave(t1, now)), [t2]);
        assert!(matches!(a.arrive(src(1)), Arrival::Admitted { .. }));
    }

    #[test]
    fn a_stalled_handshake_gives_its_slot_to_the_first_queued_client() {
        let start = Instant::now();
        let mut a = Admission::new(4, 1, STALL);
        let (slow, _) = admitted(a.arrive(src(1)));
        a.hello(slow, start);
        a.phase(slow, Phase::AwaitingClient(start));
        let (t, _) = admitted(a.arrive(src(2)));
        // Waiting on its client for less than `stall`: not stalled, t queues.
        assert_eq!(
            a.hello(t, start + Duration::from_millis(1999)),
            Moves::default()
        );
        // Later, a promotion round displaces it.
        let moves = a.promote(start + STALL);
        assert_eq!(moves.displaced, [slow]);
        assert_eq!(moves.granted, [t]);
        // A handshake the server is working on is never displaced.
        a.phase(t, Phase::Working);
        let (u, _) = admitted(a.arrive(src(3)));
        assert_eq!(
            a.hello(u, start + Duration::from_secs(60)),
            Moves::default()
        );
        // When t stalls, the next ClientHello's round gives its slot to u, first in line.
        a.phase(t, Phase::AwaitingClient(start + STALL));
        let (v, _) = admitted(a.arrive(src(4)));
        let moves = a.hello(v, start + STALL * 3);
        assert_eq!(moves.displaced, [t]);
        assert_eq!(moves.granted, [u]);
    }

    #[test]
    fn queued_clients_take_freed_slots_in_arrival_order() {
        let now = Instant::now();
        let mut a = Admission::new(8, 2, STALL);
        let tickets: Vec<Ticket> = (0..5).map(|n| admitted(a.arrive(src(n))).0).collect();
        let granted: Vec<Vec<Ticket>> = tickets.iter().map(|&t| seated(&a.hello(t, now))).collect();
        assert_eq!(granted[0], [tickets[0]]);
        assert_eq!(granted[1], [tickets[1]]);
        assert!(granted[2..].iter().all(Vec::is_empty));
        assert_eq!(seated(&a.leave(tickets[1], now)), [tickets[2]]);
        assert_eq!(seated(&a.leave(tickets[0], now)), [tickets[3]]);
        // A queued client that gives up leaves the queue.
        assert_eq!(a.leave(tickets[4], now), Moves::default());
        assert_eq!(a.leave(tickets[2], now), Moves::default());
        assert!(a.queue.is_empty());
        assert_eq!(a.in_slots, [tickets[3]]);
    }

    #[test]
    fn leaving_frees_a_silent_place_and_unknown_tickets_are_ignored() {
        let now = Instant::now();
        let mut a = Admission::new(1, 1, STALL);
        let (t, _) = admitted(a.arrive(src(1)));
        a.leave(t, now);
        assert!(a.silent.is_empty());
        let (u, displaced) = admitted(a.arrive(src(1)));
        assert_eq!(displaced, None);
        a.leave(t, now);
        a.phase(t, Phase::Working);
        assert_eq!(a.hello(t, now), Moves::default());
        assert_eq!(seated(&a.hello(u, now)), [u]);
        // Asking twice does not take a second slot.
        assert_eq!(a.hello(u, now), Moves::default());
        assert_eq!(a.in_slots, [u]);
    }
}
