//! A tiny deterministic random number generator (SplitMix64).
//!
//! The world and the AI pilots draw every random choice from an [`Rng`] seeded by the caller,
//! so the same seed and the same inputs replay the same match. SplitMix64 is small, fast,
//! passes BigCrush, and has no bad seeds (zero included); it is not cryptographic — session
//! tokens must come from elsewhere.

use std::f32::consts::TAU;

/// A SplitMix64 generator. Cloning it forks an identical stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for `seed`. Every seed, 0 included, gives a good stream.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 32 random bits (the high half of [`Rng::next_u64`]).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `[0, 1)`, with 24 bits of precision (every value is exact in `f32`).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform between `lo` and `hi` (`lo` included; `hi` only reachable through rounding).
    /// Works with `hi < lo` too, mirrored.
    pub fn range_f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Uniform in `0..n` (0 when `n` is 0). Lemire's multiply-shift: the bias is below 2⁻³²·n,
    /// which no game can notice.
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// True with probability `p` (clamped to `[0, 1]`; NaN is never).
    pub fn chance(&mut self, p: f32) -> bool {
        self.next_f32() < p
    }

    /// A uniform angle in radians, `[0, 2π)`.
    pub fn angle(&mut self) -> f32 {
        self.next_f32() * TAU
    }

    /// A new generator seeded from this one: an independent stream for a sub-system, so adding
    /// draws in one place does not shift every other random choice.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Reference output of SplitMix64 for seed 1234567 (from the author's C code).
        let mut r = Rng::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let a: Vec<u64> = std::iter::repeat_with({
            let mut r = Rng::new(7);
            move || r.next_u64()
        })
        .take(100)
        .collect();
        let mut r = Rng::new(7);
        assert!(a.iter().all(|&v| v == r.next_u64()));
        let mut other = Rng::new(8);
        assert!(a.iter().filter(|&&v| v == other.next_u64()).count() < 2);
    }

    #[test]
    fn floats_and_ranges_stay_in_bounds() {
        let mut r = Rng::new(0);
        let mut sum = 0.0f64;
        for _ in 0..100_000 {
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
            sum += f64::from(f);
            let v = r.range_f32(-3.0, 5.0);
            assert!((-3.0..=5.0).contains(&v));
            assert!(r.below(10) < 10);
            assert!((0.0..TAU).contains(&r.angle()));
        }
        assert!(
            (sum / 100_000.0 - 0.5).abs() < 0.01,
            "mean {}",
            sum / 100_000.0
        );
        assert_eq!(r.below(0), 0);
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
        assert!(!r.chance(f32::NAN));
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut r = Rng::new(99);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[r.below(6) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn forks_are_independent_of_later_draws() {
        let mut a = Rng::new(5);
        let mut fa = a.fork();
        let mut b = Rng::new(5);
        let mut fb = b.fork();
        b.next_u64();
        assert_eq!(fa.next_u64(), fb.next_u64());
        assert_ne!(fa.next_u64(), a.next_u64());
    }
}
