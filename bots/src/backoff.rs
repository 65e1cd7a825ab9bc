//! Jittered exponential backoff between reconnect attempts.
//!
//! Many bots (or browsers) dropped by the same hiccup must not come back in lockstep: each
//! delay is drawn uniformly from the upper half of an exponentially growing window,
//!
//! ```text
//! attempt n (from 0):  window = min(max, base · 2ⁿ);  delay ∈ [window / 2, window]
//! ```
//!
//! and the window starts over once a connection has worked ([`Backoff::reset`]). The
//! randomness is seeded, so a run is repeatable.

use std::time::Duration;

use game_core::rng::Rng;

/// Delays between reconnect attempts. See the module docs.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    /// Windows from `base` doubling up to `max` (at least `base`), jittered by `seed`.
    pub fn new(base: Duration, max: Duration, seed: u64) -> Self {
        Self {
            base,
            max: max.max(base),
            attempt: 0,
            rng: Rng::new(seed),
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let window = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = window / 2;
        let nanos = u64::try_from((window - half).as_nanos()).unwrap_or(u64::MAX);
        let jitter = if nanos == 0 {
            0
        } else {
            self.rng.next_u64() % (nanos + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// A connection worked: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn windows_double_up_to_the_cap_and_start_over() {
        let mut b = Backoff::new(ms(100), ms(1000), 7);
        let windows = [100, 200, 400, 800, 1000, 1000, 1000];
        for w in windows {
            let d = b.next_delay();
            assert!(
                ms(w) / 2 <= d && d <= ms(w),
                "{d:?} outside [{}, {w}] ms",
                w / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= ms(100));
        // Many attempts do not overflow.
        for _ in 0..100 {
            assert!(b.next_delay() <= ms(1000));
        }
    }

    #[test]
    fn delays_are_spread_and_seeded() {
        let draw = |seed| {
            let mut b = Backoff::new(ms(1000), ms(1000), seed);
            (0..50).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        let a = draw(1);
        assert_eq!(a, draw(1), "same seed, same delays");
        assert_ne!(a, draw(2));
        let (lo, hi) = (a.iter().min(), a.iter().max());
        assert!(lo < Some(&ms(600)) && hi > Some(&ms(900)), "{lo:?}..{hi:?}");
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::ZERO, 0).next_delay(),
            Duration::ZERO
        );
    }
}
