//! What the clients measure while the run goes on, shared by all of them.
//!
//! Two kinds of figure: live counters ([`Live`], atomics) that the progress line reads, and
//! distributions and time series ([`Recorder`], behind one mutex) that the report is made of.
//! Each client takes the mutex once per frame it receives, for a few histogram increments; the
//! generator runs on one or two cores, so the lock is all but uncontended.
//!
//! Latencies go into HDR histograms (microseconds, 3 significant digits, 1 µs – 60 s): exact
//! percentiles at any rate, in a fixed ~100 KiB each, whatever the run length. They count only
//! inside the measured window (after the ramp), so a ramp's handshakes do not skew them; the
//! counters and the time series count everything.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use bots::Transport;
use hdrhistogram::Histogram;
use tokio::time::Instant;

/// The largest latency recorded, in microseconds; longer ones count as this.
pub const HIST_MAX_US: u64 = 60_000_000;

/// The index of `t` in [`Transport::ALL`], for per-transport arrays.
pub fn index_of(t: Transport) -> usize {
    Transport::ALL.iter().position(|&x| x == t).unwrap_or(0)
}

/// A latency histogram in microseconds.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).context("creating a histogram")
}

/// Counters the progress line reads while the run goes on.
#[derive(Debug, Default)]
pub struct Live {
    /// Clients whose start time has come.
    pub started: AtomicU64,
    /// Connection attempts (first connections and reconnections).
    pub attempts: AtomicU64,
    /// Attempts that got a session.
    pub ok: AtomicU64,
    /// Attempts that failed.
    pub failed: AtomicU64,
    /// Sessions open now.
    pub connected: AtomicI64,
    /// Frames received.
    pub frames: AtomicU64,
    /// Bytes of frame messages received.
    pub bytes: AtomicU64,
    /// Frames that did not verify.
    pub desyncs: AtomicU64,
    /// Inputs sent.
    pub inputs_sent: AtomicU64,
    /// Inputs acknowledged (for the first time).
    pub inputs_acked: AtomicU64,
    /// Connections dropped on purpose by `--chaos`.
    pub chaos_drops: AtomicU64,
}

/// Latency distributions of one transport.
#[derive(Debug, Clone)]
pub struct Hists {
    /// Input sent → first frame acknowledging it.
    pub ack: Histogram<u64>,
    /// Time between consecutive frames on one connection.
    pub gap: Histogram<u64>,
}

/// Frames and bytes received in one second, per transport.
pub type SecondCounts = [(u64, u64); 5];

/// Distributions and time series for the report.
#[derive(Debug)]
pub struct Recorder {
    /// Per transport, in [`Transport::ALL`] order.
    pub per: [Hists; 5],
    /// One entry per second of the run: frames and bytes per transport. Bounded: the length
    /// is fixed at the start (the run's planned length plus slack); later seconds add to the
    /// last entry.
    pub series: Vec<SecondCounts>,
}

/// Everything the clients share.
#[derive(Debug)]
pub struct Shared {
    /// Live counters.
    pub live: Live,
    /// The report's distributions. One short critical section per frame; never held across
    /// an await.
    rec: Mutex<Recorder>,
    /// When the run started (second 0 of the series).
    pub t0: Instant,
    /// When the measured window starts (the ramp is over).
    pub window: Instant,
}

impl Shared {
    /// Shared state for a run that starts at `t0`, measures from `window`, and lasts about
    /// `seconds`.
    pub fn new(t0: Instant, window: Instant, seconds: usize) -> anyhow::Result<Self> {
        let hists = Hists {
            ack: histogram()?,
            gap: histogram()?,
        };
        Ok(Self {
            live: Live::default(),
            rec: Mutex::new(Recorder {
                per: std::array::from_fn(|_| hists.clone()),
                series: vec![[(0, 0); 5]; seconds.max(1)],
            }),
            t0,
            window,
        })
    }

    /// The recorder, for reading (the progress line, the report).
    pub fn recorder(&self) -> MutexGuard<'_, Recorder> {
        self.rec.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one frame of `bytes` on `transport` received at `now`, `gap` after the previous
    /// one on the same connection, acknowledging inputs sent `acks` ago.
    pub fn frame(
        &self,
        transport: Transport,
        now: Instant,
        gap: Option<Duration>,
        bytes: usize,
        acks: &[Duration],
    ) {
        self.live.frames.fetch_add(1, Relaxed);
        self.live.bytes.fetch_add(bytes as u64, Relaxed);
        self.live.inputs_acked.fetch_add(acks.len() as u64, Relaxed);
        let t = index_of(transport);
        let second = now.saturating_duration_since(self.t0).as_secs() as usize;
        let mut rec = self.recorder();
        let last = rec.series.len() - 1;
        if let Some(slot) = rec.series.get_mut(second.min(last)) {
            slot[t].0 += 1;
            slot[t].1 += bytes as u64;
        }
        if now >= self.window {
            let h = &mut rec.per[t];
            if let Some(gap) = gap {
                h.gap.saturating_record(micros(gap));
            }
            for &a in acks {
                h.ack.saturating_record(micros(a));
            }
        }
    }
}

/// `d` in whole microseconds, at least 1 (the histogram's lowest value).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_count_always_and_latencies_only_in_the_window() -> anyhow::Result<()> {
        let t0 = Instant::now();
        let shared = Shared::new(t0, t0 + Duration::from_secs(2), 3)?;
        let ms = Duration::from_millis;
        shared.frame(Transport::Sse, t0 + ms(500), Some(ms(50)), 100, &[ms(20)]);
        shared.frame(
            Transport::Sse,
            t0 + ms(2500),
            Some(ms(40)),
            120,
            &[ms(30), ms(10)],
        );
        // Past the planned length: counted in the last second.
        shared.frame(Transport::Ws, t0 + ms(9000), None, 7, &[]);
        assert_eq!(shared.live.frames.load(Relaxed), 3);
        assert_eq!(shared.live.inputs_acked.load(Relaxed), 3);
        let rec = shared.recorder();
        let sse = &rec.per[index_of(Transport::Sse)];
        assert_eq!((sse.gap.len(), sse.ack.len()), (1, 2));
        assert_eq!(sse.ack.max(), 30_015); // 3 significant digits
        assert_eq!(rec.series[0][1], (1, 100));
        assert_eq!(rec.series[2][1], (1, 120));
        assert_eq!(rec.series[2][0], (1, 7));
        Ok(())
    }
}
