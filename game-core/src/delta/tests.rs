//! Tests of the delta codec: properties over arbitrary snapshots, sizes, and malformed input.

use super::*;
use crate::snapshot::{EntityKind, EntityState, Snapshot};
use proptest::prelude::*;

fn arb_kind() -> impl Strategy<Value = EntityKind> {
    prop::sample::select(EntityKind::ALL.to_vec())
}

fn arb_entity(id: NetId) -> impl Strategy<Value = EntityState> {
    (
        arb_kind(),
        any::<(i32, i32, i16, i16, u16)>(),
        any::<(u8, u8, u8, u16, u16)>(),
    )
        .prop_map(
            move |(kind, (x, y, vx, vy, angle), (hp, flags, var, owner, score))| EntityState {
                id,
                kind,
                x,
                y,
                vx,
                vy,
                angle,
                hp,
                flags,
                var,
                owner,
                score,
            },
        )
}

fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    (
        any::<u32>(),
        prop::collection::btree_set(any::<u16>(), 0..40),
    )
        .prop_flat_map(|(tick, ids)| {
            let entities: Vec<_> = ids.into_iter().map(arb_entity).collect();
            (Just(tick), entities)
        })
        .prop_map(|(tick, entities)| Snapshot { tick, entities })
}

/// A snapshot and a plausible successor: most entities kept, some moved a little, some
/// changed, some removed, some added.
fn arb_successor() -> impl Strategy<Value = (Snapshot, Snapshot)> {
    (
        arb_snapshot(),
        0u32..200,
        prop::collection::vec((0u8..8, -40i32..40, any::<u16>()), 40),
    )
        .prop_flat_map(|(a, k, edits)| {
            let mut b = a.clone();
            b.tick = a.tick.wrapping_add(k);
            let mut extra = Vec::new();
            for (e, &(op, d, r)) in b.entities.iter_mut().zip(&edits) {
                match op {
                    0 => e.x = e.x.wrapping_add(d),
                    1 => (e.vx, e.y) = (e.vx.wrapping_add(d as i16), e.y.wrapping_sub(d)),
                    2 => e.angle = e.angle.wrapping_add(r),
                    3 => (e.hp, e.flags) = (r as u8, (r >> 8) as u8),
                    4 => e.score = e.score.wrapping_add(1),
                    5 => e.kind = EntityKind::ALL[usize::from(r % 4)],
                    _ => {}
                }
            }
            b.entities.retain(|e| e.id % 7 != 3);
            for &(_, _, r) in &edits[..5] {
                if b.get(r).is_none() {
                    extra.push(r);
                }
            }
            let added: Vec<_> = extra.into_iter().map(arb_entity).collect();
            (Just(a), Just(b), added)
        })
        .prop_map(|(a, mut b, added)| {
            b.entities.extend(added);
            let b = Snapshot::new(b.tick, b.entities);
            (a, b)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn apply_inverts_encode_for_any_pair(a in arb_snapshot(), b in arb_snapshot()) {
        let d = encode(&a, &b);
        prop_assert_eq!(apply(&a, b.tick, &d), Ok(b));
    }

    #[test]
    fn apply_inverts_encode_for_successors((a, b) in arb_successor()) {
        let d = encode(&a, &b);
        prop_assert_eq!(apply(&a, b.tick, &d), Ok(b));
    }

    #[test]
    fn keyframe_rebuilds_anything(b in arb_snapshot()) {
        prop_assert_eq!(apply(&Snapshot::empty(), b.tick, &keyframe(&b)), Ok(b));
    }

    #[test]
    fn arbitrary_bytes_never_panic(a in arb_snapshot(), tick: u32, bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = apply(&a, tick, &bytes);
    }

    #[test]
    fn corrupted_deltas_never_panic((a, b) in arb_successor(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut d = encode(&a, &b);
        for (i, x) in flips {
            if !d.is_empty() {
                let n = d.len();
                d[i % n] ^= x;
            }
        }
        if let Ok(s) = apply(&a, b.tick, &d) {
            prop_assert!(s.is_sorted());
        }
    }
}

fn drifting(n: u16, tick: u32) -> Snapshot {
    // Entities in steady flight: position advances by exactly the velocity each tick, in f32
    // world units, then is quantized as the world would.
    let entities = (1..=n)
        .map(|id| {
            let v = glam::Vec2::new(f32::from(id % 13) - 6.0, f32::from(id % 7) - 3.0) * 0.37;
            let p0 = glam::Vec2::new(f32::from(id) * 3.1, f32::from(id) * 1.7);
            let p = p0 + v * tick as f32;
            EntityState {
                x: crate::snapshot::quantize_pos(p.x),
                y: crate::snapshot::quantize_pos(p.y),
                vx: crate::snapshot::quantize_vel(v.x),
                vy: crate::snapshot::quantize_vel(v.y),
                hp: 50,
                ..EntityState::new(id, EntityKind::Asteroid)
            }
        })
        .collect();
    Snapshot { tick, entities }
}

#[test]
fn unchanged_entities_cost_nothing() {
    let s = drifting(500, 10);
    let still = Snapshot {
        entities: s
            .entities
            .iter()
            .map(|e| EntityState { vx: 0, vy: 0, ..*e })
            .collect(),
        ..s.clone()
    };
    let later = Snapshot {
        tick: 99,
        ..still.clone()
    };
    assert_eq!(encode(&still, &later), [0, 0, 0]);
    assert_eq!(encode(&s, &s), [0, 0, 0]);
}

#[test]
fn steady_flight_costs_under_three_bytes_a_record() {
    let mut enc = Encoder::new();
    for k in [1, 2, 3] {
        let (a, b) = (drifting(1000, 100), drifting(1000, 100 + k));
        let mut out = Vec::new();
        let stats = enc.encode(&a, &b, &mut out);
        assert_eq!(apply(&a, b.tick, &out).as_ref(), Ok(&b));
        assert_eq!((stats.added, stats.removed), (0, 0));
        // A record is a head, sometimes a gap byte, and one residual byte; the three list
        // counts take a byte each (the changed count two).
        assert!(
            out.len() <= 3 * stats.changed + 4,
            "{k}: {} bytes, {stats:?}",
            out.len()
        );
        // Many entities are predicted exactly and cost nothing: well under the 3-byte target
        // per moving entity.
        assert!(
            out.len() * 2 < 3 * b.entities.len(),
            "{k}: {} bytes, {stats:?}",
            out.len()
        );
    }
}

#[test]
fn kind_change_is_remove_and_add() {
    let a = Snapshot::new(1, vec![EntityState::new(4, EntityKind::Bullet)]);
    let b = Snapshot::new(2, vec![EntityState::new(4, EntityKind::Pickup)]);
    let mut out = Vec::new();
    let stats = Encoder::new().encode(&a, &b, &mut out);
    assert_eq!((stats.removed, stats.added, stats.changed), (1, 1, 0));
    assert_eq!(apply(&a, 2, &out), Ok(b));
}

#[test]
fn malformed_payloads_are_typed_errors() {
    let base = Snapshot::new(5, vec![EntityState::new(1, EntityKind::Ship)]);
    let cases: [(&[u8], DeltaError); 9] = [
        (&[], DeltaError::Truncated),
        (&[0, 0, 0, 0], DeltaError::Trailing(1)),
        (&[2, 1, 1, 0, 0], DeltaError::TooMany(2)),
        (&[1, 3, 0, 0], DeltaError::NotInBase(2)),
        (&[0, 0, 1, 0b0000_0101], DeltaError::Truncated),
        (
            &[1, 2, 0, 1, 0b0100_0001, 1, 2, 3],
            DeltaError::Contradiction(1),
        ),
        (
            &[0, 0, 1, 0b0000_1101, 0, 0, 0],
            DeltaError::Contradiction(1),
        ),
        (&[0, 0, 1, 0b0000_0011, 0], DeltaError::Unordered),
        (&[0, 0, 1, 0b0000_0011, 0xff, 0xff, 0x7f], DeltaError::BadId),
    ];
    for (bytes, want) in cases {
        assert_eq!(apply(&base, 6, bytes), Err(want), "{bytes:?}");
    }
    // A full entity with kind 9.
    let mut full = vec![0, 1, 3, 9];
    full.extend_from_slice(&[0; 10]);
    full.push(0);
    assert_eq!(apply(&base, 6, &full), Err(DeltaError::BadKind(9)));
    // Adding an id that survives in the base.
    assert_eq!(
        apply(&base, 6, &keyframe(&base)),
        Err(DeltaError::Duplicate(1))
    );
    // A gap so large that adding it to the previous id would wrap around (found by fuzzing).
    let mut wrap = vec![2, 1];
    crate::varint::put_uvarint(&mut wrap, u64::MAX - 1);
    wrap.extend_from_slice(&[0, 0]);
    let base2 = Snapshot::new(
        5,
        vec![
            EntityState::new(0, EntityKind::Ship),
            EntityState::new(1, EntityKind::Ship),
        ],
    );
    assert_eq!(apply(&base2, 6, &wrap), Err(DeltaError::BadId));
    // A velocity step that leaves i16.
    let big = [0, 0, 1, 0b0001_0001, 0x80, 0x80, 0x04, 0];
    assert_eq!(apply(&base, 6, &big), Err(DeltaError::Range(1)));
}
