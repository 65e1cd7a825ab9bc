//! Delta encode/decode at 1,000 entities: steady flight, everything changing, and a real match.
//!
//! `cargo bench -p game-core --bench delta` — prints the payload sizes once before timing.

use criterion::{Criterion, criterion_group, criterion_main};
use game_core::delta::{self, Encoder};
use game_core::snapshot::{EntityKind, EntityState, Snapshot, quantize_pos, quantize_vel};
use std::hint::black_box;

const N: u16 = 1000;

/// `N` asteroids in steady flight, as the world would quantize them at `tick`.
fn steady(tick: u32) -> Snapshot {
    let entities = (1..=N)
        .map(|id| {
            let v = glam::Vec2::new(f32::from(id % 13) - 6.0, f32::from(id % 7) - 3.0) * 0.37;
            let p = glam::Vec2::new(f32::from(id) * 3.1, f32::from(id) * 1.7) + v * tick as f32;
            EntityState {
                x: quantize_pos(p.x),
                y: quantize_pos(p.y),
                vx: quantize_vel(v.x),
                vy: quantize_vel(v.y),
                hp: 50,
                ..EntityState::new(id, EntityKind::Asteroid)
            }
        })
        .collect();
    Snapshot { tick, entities }
}

/// The steady snapshot with every entity also turning, accelerating and taking damage.
fn churning(tick: u32) -> Snapshot {
    let mut s = steady(tick);
    for e in &mut s.entities {
        e.angle = (tick * 900 + u32::from(e.id) * 77) as u16;
        e.vx = e.vx.wrapping_add((tick % 5) as i16 * 3);
        e.hp = (tick % 200) as u8;
    }
    s
}

/// A live match of 1,000 entities, two ticks apart (one send at 60 Hz tick / 30 Hz send).
fn live_match() -> (Snapshot, Snapshot) {
    let mut arena = game_core::arena::Arena::standard();
    arena.rules.asteroids.count = 900;
    let mut world = game_core::world::World::new(arena, 60, 7);
    let ships: Vec<_> = (0..90).filter_map(|_| world.add_ai_ship()).collect();
    let mut pilots: Vec<_> = ships
        .iter()
        .map(|&id| game_core::ai::Pilot::new(u64::from(id)))
        .collect();
    let info = world.arena().info();
    let mut snap = world.snapshot();
    let mut step = |world: &mut game_core::world::World, snap: &mut Snapshot| {
        let inputs: Vec<_> = ships
            .iter()
            .zip(&mut pilots)
            .map(|(&id, p)| (id, p.think(id, snap, &info)))
            .collect();
        world.step(&inputs);
        *snap = world.snapshot();
    };
    for _ in 0..600 {
        step(&mut world, &mut snap);
    }
    let a = snap.clone();
    step(&mut world, &mut snap);
    step(&mut world, &mut snap);
    (a, snap)
}

fn report(name: &str, a: &Snapshot, b: &Snapshot) {
    let mut out = Vec::new();
    let s = Encoder::new().encode(a, b, &mut out);
    let moved = b.entities.iter().filter(|e| a.get(e.id) != Some(e)).count();
    eprintln!(
        "{name}: {} entities, {moved} differ from the baseline, {} records; {} bytes = {:.2} B per differing entity, {:.2} B per record",
        b.entities.len(),
        s.changed + s.added,
        out.len(),
        out.len() as f64 / moved.max(1) as f64,
        out.len() as f64 / (s.changed + s.added).max(1) as f64,
    );
}

fn bench(c: &mut Criterion) {
    let (ma, mb) = live_match();
    let cases = [
        ("steady_1k", steady(100), steady(102)),
        ("churn_1k", churning(100), churning(102)),
        ("match_1k", ma, mb),
    ];
    for (name, a, b) in &cases {
        report(name, a, b);
    }
    let mut g = c.benchmark_group("delta");
    g.sample_size(50)
        .measurement_time(std::time::Duration::from_secs(2));
    for (name, a, b) in &cases {
        let mut enc = Encoder::new();
        let mut out = Vec::with_capacity(64 * 1024);
        g.bench_function(format!("encode_{name}"), |bch| {
            bch.iter(|| {
                out.clear();
                enc.encode(black_box(a), black_box(b), &mut out)
            })
        });
        let payload = delta::encode(a, b);
        g.bench_function(format!("apply_{name}"), |bch| {
            bch.iter(|| delta::apply(black_box(a), b.tick, black_box(&payload)))
        });
    }
    let key = steady(100);
    g.bench_function("keyframe_encode_1k", |bch| {
        bch.iter(|| delta::keyframe(black_box(&key)))
    });
    g.bench_function("checksum_1k", |bch| bch.iter(|| black_box(&key).checksum()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
