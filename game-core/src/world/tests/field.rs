//! The field: asteroids breaking up and drifting in, pickups and their effects.

use super::*;

#[test]
fn asteroids_break_into_smaller_tiers_and_the_count_is_kept() {
    let mut arena = quiet_arena();
    arena.rules.asteroids.count = 4;
    let mut w = World::new(arena, RATE, 9);
    assert_eq!(w.asteroid_count(), 4);
    let tiers = w.arena.rules.asteroids.tiers.clone();
    let big = w
        .snapshot()
        .entities
        .iter()
        .find(|e| e.kind == EntityKind::Asteroid)
        .map(|e| e.id)
        .expect("an asteroid");
    assert_eq!(state(&w, big).var, 0);
    assert_eq!(state(&w, big).hp, tiers[0].hp);
    let kb = key(&w, big);
    let mut r = StepReport::default();
    w.damage(kb, i32::from(tiers[0].hp), None, &mut r);
    assert_eq!(r.asteroids_destroyed, 1);
    w.step(&[]);
    assert!(w.entity(big).is_none());
    let snap = w.snapshot();
    let mediums: Vec<&EntityState> = snap
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::Asteroid && e.var == 1)
        .collect();
    assert_eq!(mediums.len(), usize::from(tiers[0].splits));
    assert!(mediums.iter().all(|m| m.hp == tiers[1].hp));
    assert_eq!(w.asteroid_count(), 3 + usize::from(tiers[0].splits));
    // Fragments fly apart from where the parent was.
    let v0 = mediums[0].vel_per_tick();
    assert!(mediums[1..].iter().all(|m| m.vel_per_tick() != v0));

    // The last tier breaks into nothing; above the count, nothing new comes in.
    let small = asteroid_at(&mut w, 2, Vec2::new(1500.0, 1000.0), Vec2::ZERO);
    let before = w.asteroid_count();
    let k = key(&w, small);
    w.damage(k, 1000, None, &mut r);
    w.step(&[]);
    assert_eq!(w.asteroid_count(), before - 1);
    assert!(w.is_consistent());
}

#[test]
fn destroyed_asteroids_are_replaced_from_the_edges() {
    let mut arena = quiet_arena();
    arena.rules.asteroids.count = 4;
    for t in &mut arena.rules.asteroids.tiers {
        t.splits = 0;
    }
    let mut w = World::new(arena, RATE, 9);
    let tiers = w.arena.rules.asteroids.tiers.clone();
    let old: Vec<NetId> = w
        .snapshot()
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::Asteroid)
        .map(|e| e.id)
        .collect();
    assert_eq!(old.len(), 4);
    let mut r = StepReport::default();
    for &id in &old {
        let k = key(&w, id);
        w.damage(k, 1000, None, &mut r);
    }
    assert_eq!(r.asteroids_destroyed, 4);
    w.step(&[]);
    let snap = w.snapshot();
    let (w_, h_) = (w.arena.width, w.arena.height);
    let fresh: Vec<&EntityState> = snap
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::Asteroid)
        .collect();
    assert_eq!(fresh.len(), 4);
    assert!(fresh.iter().all(|e| e.var == 0 && !old.contains(&e.id)));
    // One tick of drift from a spot just inside an edge.
    let edge = tiers[0].radius + 10.0;
    let near_edge = |e: &&&EntityState| {
        let p = e.pos();
        p.x < edge || p.y < edge || p.x > w_ - edge || p.y > h_ - edge
    };
    assert_eq!(fresh.iter().filter(near_edge).count(), 4);
    // Heading into the arena, at a tier-0 speed.
    for e in &fresh {
        let v = e.vel_per_tick() * f32::from(RATE);
        let inward = (Vec2::new(w_, h_) / 2.0 - e.pos()).dot(v);
        assert!(inward > 0.0, "{e:?}");
        assert!(v.length() >= tiers[0].speed_min - 1.0 && v.length() <= tiers[0].speed_max + 1.0);
    }
    assert!(w.is_consistent());
}

#[test]
fn pickups_apply_and_come_back_elsewhere() {
    let mut arena = quiet_arena();
    arena.rules.pickups.count = 3;
    let mut w = World::new(arena, RATE, 4);
    assert_eq!(w.count_of(EntityKind::Pickup), 3);
    let rules = w.arena.rules.clone();
    let s = ship_at(&mut w, Vec2::new(1000.0, 1000.0), 0.0);

    ship_mut(&mut w, s).hp = 10;
    let p = pickup_at(&mut w, PickupKind::Health, Vec2::new(1000.0, 1000.0));
    assert_eq!(state(&w, p).var, PickupKind::Health as u8);
    let r = w.step(&[]);
    assert_eq!(r.pickups_taken, 1);
    assert!(w.entity(p).is_none());
    assert_eq!(state(&w, s).hp, 10 + rules.pickups.health);
    ship_mut(&mut w, s).hp = i32::from(rules.ship.health) - 1;
    pickup_at(&mut w, PickupKind::Health, Vec2::new(1000.0, 1000.0));
    w.step(&[]);
    assert_eq!(state(&w, s).hp, rules.ship.health, "capped");

    ship_mut(&mut w, s).energy = 0.0;
    pickup_at(&mut w, PickupKind::Energy, Vec2::new(1000.0, 1000.0));
    w.step(&[]);
    assert_eq!(state(&w, s).var, 255);

    assert!(!state(&w, s).has(FLAG_SHIELD));
    pickup_at(&mut w, PickupKind::Shield, Vec2::new(1000.0, 1000.0));
    w.step(&[]);
    assert!(state(&w, s).has(FLAG_SHIELD));
    let shield_ticks = w.tuning.pickup_shield;
    for _ in 0..shield_ticks {
        w.step(&[]);
    }
    assert!(!state(&w, s).has(FLAG_SHIELD));

    // Four taken: four replacements, after the delay, somewhere else.
    let count = w.count_of(EntityKind::Pickup);
    assert_eq!(count, 3);
    let delay = w.tuning.pickup_respawn;
    assert!(delay > shield_ticks + 3);
    for _ in 0..delay {
        w.step(&[]);
    }
    assert_eq!(w.count_of(EntityKind::Pickup), 3 + 4);
    let spot = Vec2::new(1000.0, 1000.0);
    let snap = w.snapshot();
    let new_ones = snap
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::Pickup && e.pos().distance(spot) < 1.0);
    assert_eq!(new_ones.count(), 0);
}
