//! What a client measured: counters, ack bookkeeping and latency samples.
//!
//! A [`Stats`] belongs to the caller and outlives connections: the follower of each session
//! adds to it ([`crate::transport::Follower::next_event`], whatever the transport), and a
//! [`crate::bot::Bot`] keeps one across reconnects. Latencies go into [`Samples`], bounded in memory whatever the
//! run length; the load tool will bring proper histograms.

use std::time::Duration;

/// Latency samples kept per series (a reservoir: a uniform random subset of all samples).
pub const SAMPLES_KEPT: usize = 4096;

/// A series of durations: exact count, min, max and mean over every sample, and a uniform
/// random subset of at most `cap` samples (reservoir sampling) for percentiles.
#[derive(Clone, Debug)]
pub struct Samples {
    kept: Vec<Duration>,
    cap: usize,
    count: u64,
    total_nanos: u128,
    min: Duration,
    max: Duration,
    /// xorshift64* state for the reservoir; fixed seed, so runs are repeatable.
    rng: u64,
}

impl Default for Samples {
    fn default() -> Self {
        Self::new(SAMPLES_KEPT)
    }
}

impl Samples {
    /// An empty series keeping at most `cap` samples (at least 1) for percentiles.
    pub fn new(cap: usize) -> Self {
        Self {
            kept: Vec::new(),
            cap: cap.max(1),
            count: 0,
            total_nanos: 0,
            min: Duration::MAX,
            max: Duration::ZERO,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Adds a sample.
    pub fn record(&mut self, d: Duration) {
        self.count += 1;
        self.total_nanos += d.as_nanos();
        self.min = self.min.min(d);
        self.max = self.max.max(d);
        if self.kept.len() < self.cap {
            self.kept.push(d);
        } else {
            // Algorithm R: the n-th sample replaces a kept one with probability cap/n.
            let j = self.next_random() % self.count;
            if let Some(slot) = usize::try_from(j).ok().and_then(|j| self.kept.get_mut(j)) {
                *slot = d;
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Samples recorded (all of them, not only those kept).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The kept samples, in arrival order.
    pub fn kept(&self) -> &[Duration] {
        &self.kept
    }

    /// Count, min, mean, percentiles and max; `None` with no samples.
    pub fn summary(&self) -> Option<Summary> {
        if self.count == 0 {
            return None;
        }
        let mut sorted = self.kept.clone();
        sorted.sort_unstable();
        let avg = Duration::from_nanos((self.total_nanos / u128::from(self.count)) as u64);
        Some(Summary {
            count: self.count,
            min: self.min,
            avg,
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            max: self.max,
        })
    }
}

/// The nearest-rank percentile `p` (0–100) of sorted, non-empty `sorted`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or_default()
}

/// A [`Samples`] series in six numbers (percentiles over the kept samples).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Samples recorded.
    pub count: u64,
    /// Smallest.
    pub min: Duration,
    /// Mean.
    pub avg: Duration,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} min={:.1?} avg={:.1?} p50={:.1?} p99={:.1?} max={:.1?}",
            self.count, self.min, self.avg, self.p50, self.p99, self.max
        )
    }
}

/// Everything one client measured, across all its connections.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Frames applied and verified.
    pub frames: u64,
    /// Of those, keyframes (`base == None`).
    pub keyframes: u64,
    /// Bytes of frame messages received (verified or not).
    pub frame_bytes: u64,
    /// Frames that did not verify: checksum mismatches, deltas from a tick the replica did
    /// not hold, malformed deltas.
    pub desyncs: u64,
    /// Inputs sent (counted by whoever drives the writer).
    pub inputs_sent: u64,
    /// Pings sent (counted by whoever drives the writer).
    pub pings_sent: u64,
    /// Pongs received for our pings.
    pub pongs: u64,
    /// Server pings answered.
    pub server_pings: u64,
    /// Server pings not answered because the outgoing queue was full.
    pub server_pings_dropped: u64,
    /// The highest `ack` seen in any frame.
    pub highest_ack: u32,
    /// Whether every frame's `ack` was ≥ the previous one.
    pub acks_monotonic: bool,
    /// Connections after the first.
    pub reconnects: u64,
    /// Poll requests made (long polling and polling only).
    pub polls: u64,
    /// Of those, answered `204 No Content`: nothing new.
    pub empty_polls: u64,
    /// Round-trip times of our pings.
    pub rtt: Samples,
    /// Time from sending input N to the first frame with `ack ≥ N`.
    pub ack_latency: Samples,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            frames: 0,
            keyframes: 0,
            frame_bytes: 0,
            desyncs: 0,
            inputs_sent: 0,
            pings_sent: 0,
            pongs: 0,
            server_pings: 0,
            server_pings_dropped: 0,
            highest_ack: 0,
            acks_monotonic: true,
            reconnects: 0,
            polls: 0,
            empty_polls: 0,
            rtt: Samples::default(),
            ack_latency: Samples::default(),
        }
    }
}

impl Stats {
    /// Fresh counters; acks count as monotonic until one goes backwards.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a frame's `ack`.
    pub fn observe_ack(&mut self, ack: u32) {
        if ack < self.highest_ack {
            self.acks_monotonic = false;
        }
        self.highest_ack = self.highest_ack.max(ack);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn summary_of_a_small_series_is_exact() {
        let mut s = Samples::new(100);
        assert_eq!(s.summary(), None);
        for n in (1..=100).rev() {
            s.record(ms(n));
        }
        let sum = s.summary();
        assert_eq!(
            sum,
            Some(Summary {
                count: 100,
                min: ms(1),
                avg: Duration::from_micros(50_500),
                p50: ms(50),
                p99: ms(99),
                max: ms(100)
            })
        );
        let one = {
            let mut s = Samples::new(10);
            s.record(ms(7));
            s.summary()
        };
        assert_eq!(
            one.map(|s| (s.min, s.p50, s.p99, s.max)),
            Some((ms(7), ms(7), ms(7), ms(7)))
        );
    }

    #[test]
    fn memory_is_bounded_and_the_reservoir_stays_representative() {
        let mut s = Samples::new(1000);
        for n in 0..100_000u64 {
            s.record(Duration::from_micros(n));
        }
        assert_eq!((s.count(), s.kept().len()), (100_000, 1000));
        let sum = s.summary().map(|s| (s.min, s.max, s.avg, s.p50));
        let Some((min, max, avg, p50)) = sum else {
            panic!("no summary")
        };
        // Exact over everything…
        assert_eq!((min, max), (Duration::ZERO, Duration::from_micros(99_999)));
        assert_eq!(avg, Duration::from_nanos(49_999_500));
        // …and the kept subset is spread over the whole run, not just its start.
        let p50 = p50.as_micros();
        assert!((40_000..60_000).contains(&p50), "p50 {p50}");
        assert!(s.kept().iter().any(|d| d.as_micros() > 90_000));
    }

    #[test]
    fn acks_monotonic_until_one_goes_back() {
        let mut st = Stats::new();
        for ack in [0, 0, 3, 3, 7] {
            st.observe_ack(ack);
        }
        assert!(st.acks_monotonic);
        assert_eq!(st.highest_ack, 7);
        st.observe_ack(6);
        st.observe_ack(8);
        assert!(!st.acks_monotonic);
        assert_eq!(st.highest_ack, 8);
    }
}
