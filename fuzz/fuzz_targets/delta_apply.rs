//! Fuzzes `delta::apply` against a fixed baseline: never a panic, and an accepted delta always
//! yields a sorted snapshot that re-encodes to a delta that applies to the same result.
#![no_main]

use game_core::delta;
use game_core::snapshot::{EntityKind, EntityState, Snapshot};
use libfuzzer_sys::fuzz_target;

fn baseline() -> Snapshot {
    let entities = (1..=40u16)
        .map(|id| EntityState {
            x: i32::from(id) * 100,
            y: -i32::from(id) * 50,
            vx: id as i16 * 7,
            vy: -(id as i16) * 3,
            hp: id as u8,
            ..EntityState::new(id * 3, EntityKind::ALL[usize::from(id % 4)])
        })
        .collect();
    Snapshot {
        tick: 1000,
        entities,
    }
}

fuzz_target!(|data: &[u8]| {
    let base = baseline();
    let (tick, payload) = match data.split_first() {
        Some((&k, rest)) => (1000 + u32::from(k), rest),
        None => return,
    };
    if let Ok(next) = delta::apply(&base, tick, payload) {
        assert!(next.is_sorted());
        let again = delta::encode(&base, &next);
        assert_eq!(delta::apply(&base, tick, &again).as_ref(), Ok(&next));
    }
});
