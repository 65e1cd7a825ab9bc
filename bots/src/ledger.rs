//! Bookkeeping of what a client sent and is waiting to hear about: input sequence numbers
//! with their send times (for input → ack latency) and pings (for round-trip time).
//!
//! The writer half records a send; the reader half matches the server's answer (a frame's
//! `ack`, a `Pong`) and turns it into a latency sample. Both halves share one [`Ledger`] behind
//! a `std::sync::Mutex` that is only ever held for these few non-blocking calls. Every record
//! here is bounded; what overflows is dropped oldest-first and counted, never queued.
//!
//! Time is passed in (`now: Instant`) rather than read, so the logic is tested without clocks.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Inputs awaiting an ack: enough for several seconds at 60 Hz. An older one is evicted (its
/// latency is not sampled) — by then the ack is so late the connection is failing anyway.
pub const MAX_INPUTS_IN_FLIGHT: usize = 512;
/// Pings awaiting a pong (one a second is the usual rate).
pub const MAX_PINGS_IN_FLIGHT: usize = 16;

/// Sequence numbers and send times of inputs the server has not yet acknowledged.
#[derive(Debug)]
pub struct InputLedger {
    /// The sequence number the next input gets.
    next_seq: u32,
    /// `(seq, sent at)`, oldest first; seqs strictly increase.
    in_flight: VecDeque<(u32, Instant)>,
    /// Entries dropped because `in_flight` was full.
    evicted: u64,
}

impl InputLedger {
    /// A ledger whose first input gets `first_seq` (1 for a new session; one past the last
    /// sent seq when resuming, since the server applies each seq at most once).
    pub fn new(first_seq: u32) -> Self {
        Self {
            next_seq: first_seq.max(1),
            in_flight: VecDeque::new(),
            evicted: 0,
        }
    }

    /// Assigns the next sequence number to an input sent at `now`.
    pub fn record_send(&mut self, now: Instant) -> u32 {
        let seq = self.next_seq;
        // u32 sequences last 2.2 years at 60 Hz; wrapping would break "in order", so saturate.
        self.next_seq = self.next_seq.saturating_add(1);
        if self.in_flight.len() == MAX_INPUTS_IN_FLIGHT {
            self.in_flight.pop_front();
            self.evicted += 1;
        }
        self.in_flight.push_back((seq, now));
        seq
    }

    /// The server has applied every input up to `ack` (seen at `now`): calls `sample` with
    /// the latency of each input that this ack acknowledges for the first time, and returns
    /// how many that was.
    pub fn ack(&mut self, ack: u32, now: Instant, mut sample: impl FnMut(Duration)) -> usize {
        let mut n = 0;
        while let Some(&(seq, sent)) = self.in_flight.front() {
            if seq > ack {
                break;
            }
            self.in_flight.pop_front();
            sample(now.saturating_duration_since(sent));
            n += 1;
        }
        n
    }

    /// The last sequence number handed out (0 if none).
    pub fn last_seq(&self) -> u32 {
        self.next_seq - 1
    }

    /// Inputs sent and not yet acknowledged (that are still tracked).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// In-flight records dropped because too many inputs went unacknowledged.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// Ids and send times of pings awaiting a pong.
#[derive(Debug, Default)]
pub struct PingLedger {
    next_id: u32,
    /// `(id, sent at)`, oldest first.
    in_flight: VecDeque<(u32, Instant)>,
}

impl PingLedger {
    /// Assigns an id to a ping sent at `now`.
    pub fn record_send(&mut self, now: Instant) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        if self.in_flight.len() == MAX_PINGS_IN_FLIGHT {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back((id, now));
        id
    }

    /// The round-trip time of ping `id` answered at `now`, or `None` for an id not in flight
    /// (unknown, already answered, or evicted). Pings older than `id` are forgotten: the
    /// server answers in order, so their pongs are not coming.
    pub fn pong(&mut self, id: u32, now: Instant) -> Option<Duration> {
        let at = self.in_flight.iter().position(|&(i, _)| i == id)?;
        let (_, sent) = self.in_flight.drain(..=at).next_back()?;
        Some(now.saturating_duration_since(sent))
    }
}

/// The shared record of one connection: what its writer sent, for its reader to match.
#[derive(Debug)]
pub struct Ledger {
    /// Inputs.
    pub inputs: InputLedger,
    /// Pings.
    pub pings: PingLedger,
}

impl Ledger {
    /// An empty ledger whose first input gets `first_seq`.
    pub fn new(first_seq: u32) -> Self {
        Self {
            inputs: InputLedger::new(first_seq),
            pings: PingLedger::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn seqs_start_at_one_and_count_up() {
        let t = Instant::now();
        let mut l = InputLedger::new(1);
        assert_eq!(l.last_seq(), 0);
        assert_eq!(
            [l.record_send(t), l.record_send(t), l.record_send(t)],
            [1, 2, 3]
        );
        assert_eq!((l.last_seq(), l.in_flight()), (3, 3));
        // Resuming continues the sequence; 0 is never handed out.
        let mut resumed = InputLedger::new(l.last_seq() + 1);
        assert_eq!(resumed.record_send(t), 4);
        assert_eq!(InputLedger::new(0).record_send(t), 1);
    }

    #[test]
    fn an_ack_samples_each_newly_acknowledged_input_once() {
        let t0 = Instant::now();
        let mut l = InputLedger::new(1);
        for i in 0..4 {
            l.record_send(t0 + ms(10 * i)); // seqs 1..=4 sent at 0, 10, 20, 30 ms
        }
        let mut samples = Vec::new();
        // A frame acking 2 at 50 ms covers seqs 1 and 2.
        assert_eq!(l.ack(2, t0 + ms(50), |d| samples.push(d)), 2);
        assert_eq!(samples, [ms(50), ms(40)]);
        // The same ack again (next frame, no new input applied) samples nothing.
        assert_eq!(l.ack(2, t0 + ms(60), |d| samples.push(d)), 0);
        // A stale lower ack samples nothing either.
        assert_eq!(l.ack(1, t0 + ms(65), |d| samples.push(d)), 0);
        assert_eq!(l.ack(4, t0 + ms(70), |d| samples.push(d)), 2);
        assert_eq!(samples, [ms(50), ms(40), ms(50), ms(40)]);
        assert_eq!(l.in_flight(), 0);
        // An ack from before this ledger (a resumed session) is harmless.
        assert_eq!(l.ack(9, t0 + ms(80), |d| samples.push(d)), 0);
    }

    #[test]
    fn in_flight_is_bounded_dropping_the_oldest() {
        let t0 = Instant::now();
        let mut l = InputLedger::new(1);
        for _ in 0..MAX_INPUTS_IN_FLIGHT + 3 {
            l.record_send(t0);
        }
        assert_eq!((l.in_flight(), l.evicted()), (MAX_INPUTS_IN_FLIGHT, 3));
        let mut n = 0;
        assert_eq!(
            l.ack(3, t0, |_| n += 1),
            0,
            "evicted seqs 1..=3 are not sampled"
        );
        assert_eq!(l.ack(4, t0, |_| n += 1), 1);
    }

    #[test]
    fn pongs_give_rtt_and_forget_older_pings() {
        let t0 = Instant::now();
        let mut p = PingLedger::default();
        let a = p.record_send(t0);
        let b = p.record_send(t0 + ms(5));
        let c = p.record_send(t0 + ms(10));
        assert_eq!(p.pong(b, t0 + ms(25)), Some(ms(20)));
        assert_eq!(
            p.pong(a, t0 + ms(30)),
            None,
            "older than an answered ping: given up"
        );
        assert_eq!(p.pong(b, t0 + ms(30)), None, "answered twice");
        assert_eq!(p.pong(999, t0 + ms(30)), None, "never sent");
        assert_eq!(p.pong(c, t0 + ms(31)), Some(ms(21)));
        for i in 0..MAX_PINGS_IN_FLIGHT as u64 + 1 {
            p.record_send(t0 + ms(i));
        }
        assert_eq!(p.in_flight.len(), MAX_PINGS_IN_FLIGHT);
    }
}
