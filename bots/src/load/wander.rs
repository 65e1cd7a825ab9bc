//! Input for players that skim: with no verified state to steer by they cannot fly the AI
//! pilot, so they wander instead — seeded, cheap, at the same rate and message size.

use game_core::protocol::{BUTTON_FIRE, Input};
use game_core::rng::Rng;

/// Input for a skimming player: full thrust, a turn held for a while, the odd shot. Seeded,
/// cheap, and the same size on the wire as the pilot's.
#[derive(Debug)]
pub struct Wander {
    rng: Rng,
    turn: i8,
    left: u32,
}

impl Wander {
    /// A wander seeded by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed ^ 0x7761_6e64),
            turn: 0,
            left: 0,
        }
    }

    /// The next tick's input.
    pub fn next(&mut self) -> Input {
        if self.left == 0 {
            self.turn = (self.rng.below(255) as i32 - 127) as i8;
            self.left = 10 + self.rng.below(50);
        }
        self.left -= 1;
        Input {
            thrust: 100,
            turn: self.turn,
            buttons: if self.rng.chance(0.2) { BUTTON_FIRE } else { 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wander_input_is_valid() {
        let mut w = Wander::new(7);
        for _ in 0..1000 {
            assert!(w.next().is_valid());
        }
    }
}
