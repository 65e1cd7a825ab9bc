//! Combat rules: bullets, damage, death, respawn, kill credit, asteroid contact.

use super::*;

#[test]
fn bullets_damage_kill_and_credit_the_shooter() {
    let mut w = quiet_world();
    let a = ship_at(&mut w, Vec2::new(500.0, 1000.0), 0.0);
    let b = ship_at(&mut w, Vec2::new(800.0, 1000.0), 0.0);
    let health = i32::from(w.arena.rules.ship.health);
    let damage = i32::from(w.arena.rules.gun.bullet_damage);
    let mut hits = Vec::new();
    let mut kills = Vec::new();
    let mut fired = 0;
    w.set_input(a, FIRE);
    for _ in 0..RATE * 5 {
        let before = ship(&w, b).hp;
        let report = w.step(&[]);
        fired += report.shots_fired;
        kills.extend(report.kills);
        let after = ship(&w, b).hp;
        if after != before {
            hits.push(before - after);
            assert_eq!(state(&w, b).owner, a, "the victim remembers its attacker");
        }
        if !kills.is_empty() {
            break;
        }
    }
    let shots_needed = (health + damage - 1) / damage;
    assert_eq!(hits.len() as i32, shots_needed, "{hits:?}");
    assert!(hits.iter().all(|&h| h == damage || h == health % damage));
    assert!(fired as i32 >= shots_needed);
    assert_eq!(
        kills,
        [Kill {
            killer: Some(a),
            victim: b
        }]
    );
    assert_eq!(ship(&w, a).score, w.arena.rules.kill_score);
    let dead = state(&w, b);
    assert!(dead.has(FLAG_DEAD));
    assert_eq!((dead.hp, dead.vx, dead.vy, dead.owner), (0, 0, 0, a));
    assert_eq!(state(&w, a).score, 1);

    // A dead ship is not a target: later bullets fly through it.
    let bullets_before = w.count_of(EntityKind::Bullet);
    for _ in 0..10 {
        let r = w.step(&[]);
        assert!(r.kills.is_empty());
    }
    assert!(w.count_of(EntityKind::Bullet) >= bullets_before);
    assert!(state(&w, b).has(FLAG_DEAD));
}

#[test]
fn bullets_never_hit_their_shooter_but_hit_others() {
    let mut w = quiet_world();
    let a = ship_at(&mut w, Vec2::new(500.0, 500.0), 0.0);
    let b = ship_at(&mut w, Vec2::new(1500.0, 500.0), 0.0);
    let bullet = |owner: NetId, owner_key: EntityKey, pos: Vec2| {
        let role = Role::Bullet(Bullet {
            owner,
            owner_key,
            expires: 100,
        });
        Entity::new(pos, Vec2::new(1.0, 0.0), 0.0, 3.0, role)
    };
    let (ka, kb) = (key(&w, a), key(&w, b));
    // A's own bullet sitting on A, and B's bullet sitting on A.
    w.insert(bullet(a, ka, Vec2::new(500.0, 500.0)))
        .expect("id");
    w.step(&[]);
    assert_eq!(ship(&w, a).hp, i32::from(w.arena.rules.ship.health));
    assert_eq!(w.count_of(EntityKind::Bullet), 1);
    w.insert(bullet(b, kb, Vec2::new(500.0, 500.0)))
        .expect("id");
    w.step(&[]);
    assert_eq!(
        ship(&w, a).hp,
        i32::from(w.arena.rules.ship.health - w.arena.rules.gun.bullet_damage)
    );
    assert_eq!(state(&w, a).owner, b);
}

#[test]
fn fast_bullets_do_not_tunnel_through_small_targets() {
    let mut w = quiet_world();
    w.arena.rules.gun.bullet_speed = 3000.0; // 100 units per tick at 30 Hz
    w.tuning = Tuning::new(&w.arena, RATE);
    let a = ship_at(&mut w, Vec2::new(200.0, 500.0), 0.0);
    let rock = asteroid_at(&mut w, 2, Vec2::new(700.0, 500.0), Vec2::ZERO);
    w.set_input(a, FIRE);
    let mut destroyed = 0;
    for _ in 0..RATE {
        destroyed += w.step(&[]).asteroids_destroyed;
    }
    assert_eq!(destroyed, 1);
    assert!(w.entity(rock).is_none());
}

#[test]
fn dead_ships_respawn_after_the_delay_with_a_shield() {
    let mut w = quiet_world();
    let a = ship_at(&mut w, Vec2::new(500.0, 1000.0), 0.0);
    let b = ship_at(&mut w, Vec2::new(700.0, 1000.0), 0.0);
    ship_mut(&mut w, b).hp = 1;
    w.set_input(a, FIRE);
    let death_tick = loop {
        let r = w.step(&[]);
        if !r.kills.is_empty() {
            break w.tick();
        }
        assert!(w.tick() < 100, "no kill");
    };
    w.set_input(a, Input::default());
    let delay = w.tuning.respawn_delay;
    let shield = w.tuning.spawn_shield;
    assert_eq!(
        delay,
        (w.arena.rules.ship.respawn_delay * f32::from(RATE)).round() as u32
    );
    while w.tick() < death_tick + delay - 1 {
        w.step(&[]);
        assert!(state(&w, b).has(FLAG_DEAD), "tick {}", w.tick());
    }
    w.step(&[]);
    let back = state(&w, b);
    assert!(!back.has(FLAG_DEAD), "back at tick {}", w.tick());
    assert!(back.has(FLAG_SHIELD));
    assert_eq!(back.hp, w.arena.rules.ship.health);
    assert_eq!(back.owner, 0, "attacker forgotten");
    assert_eq!(back.var, 255, "full energy");
    assert_eq!(w.ship_ids(), [a, b], "same id after respawn");

    // The shield absorbs damage, then runs out.
    let kb = key(&w, b);
    let ka = key(&w, a);
    let mut report = StepReport::default();
    w.damage(
        kb,
        50,
        Some(super::entity::Attacker {
            id: a,
            key: ka,
            tick: w.tick(),
        }),
        &mut report,
    );
    assert_eq!(state(&w, b).hp, w.arena.rules.ship.health);
    for _ in 0..shield {
        w.step(&[]);
    }
    assert!(!state(&w, b).has(FLAG_SHIELD));
}

#[test]
fn kill_credit_expires() {
    let mut w = quiet_world();
    let a = ship_at(&mut w, Vec2::new(300.0, 300.0), 0.0);
    let b = ship_at(&mut w, Vec2::new(1500.0, 1000.0), 0.0);
    let (ka, kb) = (key(&w, a), key(&w, b));
    let hit = |w: &mut World, tick: u32| {
        let mut r = StepReport::default();
        w.damage(
            kb,
            10,
            Some(super::entity::Attacker {
                id: a,
                key: ka,
                tick,
            }),
            &mut r,
        );
    };
    // Hit by A, then killed by an asteroid inside the credit window: A gets it.
    hit(&mut w, 0);
    let mut r = StepReport::default();
    w.damage(kb, 1000, None, &mut r);
    assert_eq!(
        r.kills,
        [Kill {
            killer: Some(a),
            victim: b
        }]
    );
    assert_eq!(ship(&w, a).score, 1);

    // Again, but the asteroid comes long after A's hit: nobody gets it.
    let b2 = ship_at(&mut w, Vec2::new(1500.0, 300.0), 0.0);
    let kb2 = key(&w, b2);
    for _ in 0..w.tuning.kill_credit + 2 {
        w.step(&[]);
    }
    let mut r = StepReport::default();
    w.damage(
        kb2,
        10,
        Some(super::entity::Attacker {
            id: a,
            key: ka,
            tick: 1,
        }),
        &mut r,
    );
    w.damage(kb2, 1000, None, &mut r);
    assert_eq!(
        r.kills,
        [Kill {
            killer: None,
            victim: b2
        }]
    );
    assert_eq!(ship(&w, a).score, 1);
}

#[test]
fn asteroid_contact_hurts_with_a_grace_period_and_shields_block_it() {
    let mut w = quiet_world();
    let s = ship_at(&mut w, Vec2::new(1000.0, 1000.0), 0.0);
    let contact = i32::from(w.arena.rules.asteroids.tiers[0].contact_damage);
    let full = i32::from(w.arena.rules.ship.health);
    asteroid_at(&mut w, 0, Vec2::new(1070.0, 1000.0), Vec2::new(-50.0, 0.0));
    w.step(&[]);
    assert_eq!(ship(&w, s).hp, full - contact);
    let e = &w.entities[key(&w, s)];
    assert!(e.vel.x < 0.0, "knocked away: {:?}", e.vel);
    // Pinned against it again right away: no more damage during the grace period.
    body(&mut w, s).pos = Vec2::new(1000.0, 1000.0);
    let rock_pos = w
        .entities
        .values()
        .find(|e| e.kind() == EntityKind::Asteroid)
        .map(|e| e.pos);
    body(&mut w, s).pos = rock_pos.expect("rock") - Vec2::new(60.0, 0.0);
    w.step(&[]);
    assert_eq!(ship(&w, s).hp, full - contact);
    // A shield blocks contact damage entirely.
    for _ in 0..w.tuning.contact_grace {
        w.step(&[]);
    }
    ship_mut(&mut w, s).shield_until = w.tick + 100;
    let rock_pos = w
        .entities
        .values()
        .find(|e| e.kind() == EntityKind::Asteroid)
        .map(|e| e.pos);
    body(&mut w, s).pos = rock_pos.expect("rock") - Vec2::new(60.0, 0.0);
    w.step(&[]);
    assert_eq!(ship(&w, s).hp, full - contact);
}
