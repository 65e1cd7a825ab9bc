//! A fixed-timestep clock: elapsed time in, whole ticks out ("fix your timestep").
//!
//! The room task measures how long it slept and asks [`FixedClock::advance`] how many ticks to
//! simulate. The clock never reads the time itself, so it is deterministic and testable.
//!
//! Time is kept as an exact integer: nanoseconds multiplied by the tick rate, so one tick is
//! exactly 10⁹ units and 60 Hz gives exactly 60 ticks per second forever — no rounding of
//! 16 666 666.6… ns, no drift. When the caller falls far behind (a stalled task, a suspended
//! machine), at most `max_catchup` ticks run at once and the rest are dropped and counted,
//! instead of a burst of simulation that would fall further behind.

use std::time::Duration;

/// Nanoseconds per second; one tick in the clock's scaled units.
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// An accumulator that turns elapsed time into whole ticks at a fixed rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedClock {
    tick_rate: u32,
    max_catchup: u32,
    /// Elapsed nanoseconds × `tick_rate` not yet turned into ticks; always below 10⁹.
    acc: u128,
    ticks: u64,
    dropped: u64,
}

impl FixedClock {
    /// A clock at `tick_rate` Hz that returns at most `max_catchup` ticks per
    /// [`advance`](Self::advance). Zero for either is treated as 1.
    pub fn new(tick_rate: u16, max_catchup: u32) -> Self {
        Self {
            tick_rate: u32::from(tick_rate.max(1)),
            max_catchup: max_catchup.max(1),
            acc: 0,
            ticks: 0,
            dropped: 0,
        }
    }

    /// Adds `elapsed` and returns how many whole ticks are due, at most `max_catchup`; ticks
    /// beyond the cap are dropped (see [`dropped_ticks`](Self::dropped_ticks)). The fraction
    /// of a tick left over is kept for next time.
    pub fn advance(&mut self, elapsed: Duration) -> u32 {
        // Duration::MAX in ns × 65535 is below 2¹²⁸, so this cannot overflow.
        self.acc += elapsed.as_nanos() * u128::from(self.tick_rate);
        let due = self.acc / NANOS_PER_SEC;
        self.acc %= NANOS_PER_SEC;
        let run = due.min(u128::from(self.max_catchup)) as u32;
        let dropped = u64::try_from(due - u128::from(run)).unwrap_or(u64::MAX);
        self.dropped = self.dropped.saturating_add(dropped);
        self.ticks = self.ticks.saturating_add(u64::from(run));
        run
    }

    /// Time until the next tick is due (at least 1 ns; rounded up, so sleeping this long
    /// always makes the next [`advance`](Self::advance) return at least one tick).
    pub fn until_next(&self) -> Duration {
        let missing = NANOS_PER_SEC - self.acc;
        let rate = u128::from(self.tick_rate);
        let ns = missing.div_ceil(rate);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// The nominal length of a tick (rounded to the nanosecond; actual tick boundaries are
    /// exact, so over a second there are exactly `tick_rate` of them).
    pub fn tick_duration(&self) -> Duration {
        let rate = u64::from(self.tick_rate);
        Duration::from_nanos((1_000_000_000 + rate / 2) / rate)
    }

    /// Ticks per second.
    pub fn tick_rate(&self) -> u16 {
        u16::try_from(self.tick_rate).unwrap_or(u16::MAX)
    }

    /// The most ticks one [`advance`](Self::advance) returns.
    pub fn max_catchup(&self) -> u32 {
        self.max_catchup
    }

    /// Ticks returned by [`advance`](Self::advance) so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Ticks that were due but dropped by the catch-up cap.
    pub fn dropped_ticks(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_rate_ticks_per_second_over_long_runs() {
        for rate in [1u16, 20, 30, 60, 64, 128, 144, 1000, 65535] {
            let mut c = FixedClock::new(rate, u32::MAX);
            // An hour in uneven steps whose lengths are not multiples of the tick.
            let step = Duration::from_nanos(7_777_777);
            let steps = 3600 * 1_000_000_000u64 / 7_777_777;
            let mut total = 0u64;
            for _ in 0..steps {
                total += u64::from(c.advance(step));
            }
            let elapsed_ns = u128::from(steps) * 7_777_777;
            let expected = elapsed_ns * u128::from(rate) / NANOS_PER_SEC;
            assert_eq!(u128::from(total), expected, "rate {rate}");
            assert_eq!(c.ticks(), total);
            assert_eq!(c.dropped_ticks(), 0);
        }
    }

    #[test]
    fn sixty_hz_is_exact_per_second_with_nominal_sleeps() {
        let mut c = FixedClock::new(60, 10);
        let mut total = 0;
        // Sleep exactly until_next every time: one tick each, never two.
        for second in 1..=600u32 {
            while c.ticks() < u64::from(second) * 60 {
                let n = c.advance(c.until_next());
                assert_eq!(n, 1);
                total += n;
            }
        }
        assert_eq!(total, 36_000);
        // 600 s of sleeps summed from until_next land exactly on a whole-second boundary.
        assert_eq!(c.acc, 0);
        assert_eq!(c.tick_duration(), Duration::from_nanos(16_666_667));
    }

    #[test]
    fn fractions_carry_over() {
        let mut c = FixedClock::new(60, 10);
        let third = Duration::from_nanos(1_000_000_000 / 180); // a third of a tick
        assert_eq!(c.advance(third), 0);
        assert_eq!(c.advance(third), 0);
        assert_eq!(c.advance(third), 0); // 3 × floor(1e9/180) ns is under 2 ns short
        assert_eq!(c.advance(Duration::from_nanos(2)), 1);
        assert_eq!(c.advance(Duration::from_secs(1) / 10), 6);
    }

    #[test]
    fn catch_up_is_capped_and_the_rest_counted() {
        let mut c = FixedClock::new(30, 5);
        // A late wake-up of 1 s: 30 ticks due, 5 run, 25 dropped.
        assert_eq!(c.advance(Duration::from_secs(1)), 5);
        assert_eq!(c.dropped_ticks(), 25);
        // Half a tick late (a tick is 33.3 ms): one tick, and the half is kept.
        assert_eq!(c.advance(Duration::from_millis(50)), 1);
        assert_eq!(c.advance(Duration::from_millis(17)), 1);
        assert_eq!(c.dropped_ticks(), 25);
        // A three-tick-late wake-up under the cap runs all of them.
        assert_eq!(c.advance(Duration::from_millis(100)), 3);
        // Absurd durations do not overflow.
        assert_eq!(c.advance(Duration::MAX), 5);
        assert!(c.dropped_ticks() > 1_000_000);
        assert_eq!(c.ticks(), 15);
    }

    #[test]
    fn until_next_counts_down() {
        let mut c = FixedClock::new(50, 3);
        assert_eq!(c.until_next(), Duration::from_millis(20));
        assert_eq!(c.advance(Duration::from_millis(15)), 0);
        assert_eq!(c.until_next(), Duration::from_millis(5));
        assert_eq!(c.advance(Duration::from_millis(5)), 1);
        assert_eq!(c.until_next(), Duration::from_millis(20));
        // 60 Hz: a tick is 16 666 666.67 ns, so the wait rounds up.
        let c = FixedClock::new(60, 1);
        assert_eq!(c.until_next(), Duration::from_nanos(16_666_667));
    }

    #[test]
    fn zero_arguments_are_clamped() {
        let mut c = FixedClock::new(0, 0);
        assert_eq!(c.tick_rate(), 1);
        assert_eq!(c.max_catchup(), 1);
        assert_eq!(c.advance(Duration::from_secs(3)), 1);
        assert_eq!(c.dropped_ticks(), 2);
    }
}
