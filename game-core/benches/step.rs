//! Benchmarks of the simulation: `World::step` and `World::snapshot` at about 1,000 and
//! 10,000 entities — mostly asteroids, plus ships on random held inputs (firing, so there are
//! bullets) in an arena scaled so density stays like the standard one.
//!
//! `cargo bench -p game-core --bench step` (add `-- --quick` for a fast look).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use game_core::NetId;
use game_core::arena::Arena;
use game_core::protocol::{BUTTON_BOOST, BUTTON_FIRE, Input};
use game_core::rng::Rng;
use game_core::world::World;

const RATE: u16 = 30;

/// A world of about `entities` entities, warmed up so bullets are flying, with its ships.
fn world(entities: u32) -> (World, Vec<NetId>, Rng) {
    let mut arena = Arena::standard();
    let ships = (entities / 50).clamp(16, 200);
    let asteroids = entities.saturating_sub(ships * 5);
    // Keep the standard arena's density: ~30 asteroids in 3000 × 2000.
    let scale = (asteroids as f32 / 30.0).sqrt().max(1.0) * 0.5;
    arena.width = (3000.0 * scale).max(3000.0);
    arena.height = (2000.0 * scale).max(2000.0);
    arena.obstacles.clear();
    arena.rules.asteroids.count = asteroids;
    arena.rules.pickups.count = (entities / 200).max(6);
    arena.rules.max_ships = ships;
    if let Err(e) = arena.validate() {
        panic!("bench arena: {e}");
    }
    let mut w = World::new(arena, RATE, 42);
    let ids: Vec<NetId> = (0..ships).filter_map(|_| w.add_ai_ship()).collect();
    let mut rng = Rng::new(7);
    let mut inputs = Vec::new();
    for _ in 0..90 {
        random_inputs(&mut rng, &ids, &mut inputs);
        w.step(&inputs);
    }
    (w, ids, rng)
}

/// New held inputs for about a tenth of the ships: mostly thrusting and firing.
fn random_inputs(rng: &mut Rng, ids: &[NetId], out: &mut Vec<(NetId, Input)>) {
    out.clear();
    for &id in ids {
        if rng.below(10) == 0 {
            let mut buttons = BUTTON_FIRE;
            if rng.below(4) == 0 {
                buttons |= BUTTON_BOOST;
            }
            let thrust = rng.below(255) as i32 - 127;
            let turn = rng.below(255) as i32 - 127;
            out.push((
                id,
                Input {
                    thrust: thrust as i8,
                    turn: turn as i8,
                    buttons,
                },
            ));
        }
    }
}

fn bench(c: &mut Criterion) {
    for size in [1_000u32, 10_000] {
        let (mut w, ids, mut rng) = world(size);
        let label = format!("{}k", size / 1000);
        eprintln!(
            "step/{label}: {} entities ({} ships, {} asteroids, {} bullets)",
            w.entity_count(),
            w.ship_count(),
            w.asteroid_count(),
            w.count_of(game_core::EntityKind::Bullet)
        );
        let mut inputs = Vec::new();
        c.bench_function(&format!("step/{label}"), |b| {
            b.iter(|| {
                random_inputs(&mut rng, &ids, &mut inputs);
                black_box(w.step(black_box(&inputs)))
            })
        });
        let mut snap = w.snapshot();
        c.bench_function(&format!("snapshot/{label}"), |b| {
            b.iter(|| {
                w.snapshot_into(&mut snap);
                black_box(snap.entities.len())
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
