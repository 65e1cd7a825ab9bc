//! Flight rules: turning, thrust, boost, the gun, walls, obstacles, tick-rate independence.

use super::*;

#[test]
fn walls_bounce_ships_and_asteroids() {
    let mut w = quiet_world();
    let r = w.arena.rules.ship.radius;
    let s = ship_at(&mut w, Vec2::new(r + 1.0, 500.0), 0.0);
    body(&mut w, s).vel = Vec2::new(-300.0, 0.0);
    let rock = asteroid_at(&mut w, 1, Vec2::new(1000.0, 40.0), Vec2::new(0.0, -90.0));
    for _ in 0..3 {
        w.step(&[]);
    }
    let e = &w.entities[key(&w, s)];
    assert!(e.pos.x >= r);
    assert!(e.vel.x > 0.0, "bounced: {:?}", e.vel);
    assert!(
        e.vel.x < 300.0 * w.arena.rules.ship.bounce + 1.0,
        "lost speed: {:?}",
        e.vel
    );
    let a = &w.entities[key(&w, rock)];
    assert!(a.vel.y > 0.0);
    assert!(
        (a.vel.length() - 90.0).abs() < 1e-3,
        "asteroids keep their speed"
    );
    assert!(w.is_consistent());
}

#[test]
fn obstacles_push_out_and_reflect() {
    let mut arena = quiet_arena();
    arena.obstacles = vec![crate::arena::Obstacle {
        x: 1000.0,
        y: 1000.0,
        radius: 100.0,
    }];
    let mut w = World::new(arena, RATE, 1);
    let s = ship_at(&mut w, Vec2::new(870.0, 1000.0), 0.0);
    body(&mut w, s).vel = Vec2::new(400.0, 0.0);
    w.step(&[]);
    let e = &w.entities[key(&w, s)];
    assert!(e.pos.distance(Vec2::new(1000.0, 1000.0)) >= 100.0 + e.radius - 1e-3);
    assert!(e.vel.x < 0.0);
    // Bullets stop on obstacles.
    let a = ship_at(&mut w, Vec2::new(700.0, 1000.0), 0.0);
    w.set_input(a, FIRE);
    for _ in 0..RATE {
        w.step(&[]);
    }
    let snap = w.snapshot();
    assert!(
        snap.entities
            .iter()
            .filter(|e| e.kind == EntityKind::Bullet)
            .all(|b| b.pos().x < 900.0)
    );
}

#[test]
fn boost_drains_and_recharges() {
    let mut w = quiet_world();
    let s = ship_at(&mut w, Vec2::new(200.0, 1000.0), 0.0);
    let rules = w.arena.rules.clone();
    let boost = Input {
        thrust: 127,
        turn: 0,
        buttons: BUTTON_BOOST,
    };
    w.step(&[(s, boost)]);
    let st = state(&w, s);
    assert!(st.has(FLAG_BOOST) && st.has(FLAG_THRUST));
    let per_tick = rules.boost.drain / f32::from(RATE);
    assert!((ship(&w, s).energy - (rules.boost.energy - per_tick)).abs() < 1e-3);
    // Boosting for long enough empties the tank, and speed went past the normal cap.
    let mut top = 0.0f32;
    let ticks_to_empty = (rules.boost.energy / per_tick).ceil() as u32;
    for _ in 1..ticks_to_empty {
        w.step(&[]);
        top = top.max(w.entities[key(&w, s)].vel.length());
        body(&mut w, s).pos.x = 200.0; // stay clear of the wall
    }
    assert_eq!(ship(&w, s).energy, 0.0);
    assert!(top > rules.ship.max_speed * 1.2, "top speed {top}");
    w.step(&[]);
    assert!(!state(&w, s).has(FLAG_BOOST), "no energy, no boost");
    // Still held: no flickering on a near-empty tank; the boost restarts past min_to_start.
    let mut restarted_at = None;
    for i in 0..RATE * 3 {
        let before = ship(&w, s).energy;
        w.step(&[]);
        body(&mut w, s).pos.x = 200.0;
        if state(&w, s).has(FLAG_BOOST) {
            assert!(before > rules.boost.min_to_start, "restarted at {before}");
            restarted_at = Some(i);
            break;
        }
    }
    assert!(restarted_at.is_some(), "boost never restarted");
    w.step(&[(
        s,
        Input {
            thrust: 127,
            turn: 0,
            buttons: 0,
        },
    )]);
    // Back under the normal cap soon after, and recharging once the button is released.
    for _ in 0..RATE {
        w.step(&[]);
        body(&mut w, s).pos.x = 200.0;
    }
    assert!(w.entities[key(&w, s)].vel.length() <= rules.ship.max_speed + 1e-3);
    w.step(&[(s, Input::default())]);
    let e1 = ship(&w, s).energy;
    w.step(&[]);
    let e2 = ship(&w, s).energy;
    assert!((e2 - e1 - rules.boost.recharge / f32::from(RATE)).abs() < 1e-3);
    // Reverse thrust is weaker than forward thrust.
    let fwd = ship_at(&mut w, Vec2::new(1500.0, 500.0), 0.0);
    let rev = ship_at(&mut w, Vec2::new(1500.0, 1500.0), 0.0);
    w.step(&[
        (
            fwd,
            Input {
                thrust: 127,
                ..Input::default()
            },
        ),
        (
            rev,
            Input {
                thrust: -127,
                ..Input::default()
            },
        ),
    ]);
    let vf = w.entities[key(&w, fwd)].vel.x;
    let vr = w.entities[key(&w, rev)].vel.x;
    assert!(vf > 0.0 && vr < 0.0);
    assert!((vr.abs() / vf - rules.ship.reverse_power).abs() < 1e-3);
}

#[test]
fn the_gun_has_a_cooldown_and_bullets_a_lifetime() {
    let mut arena = quiet_arena();
    arena.rules.ship.drag = 0.0;
    let mut w = World::new(arena, RATE, 1);
    let s = ship_at(&mut w, Vec2::new(100.0, 1000.0), 0.0);
    body(&mut w, s).vel = Vec2::new(100.0, 0.0);
    w.set_input(s, FIRE);
    let cooldown = w.tuning.fire_cooldown;
    let ticks = cooldown * 4 + 1;
    let mut shots = 0;
    for _ in 0..ticks {
        shots += w.step(&[]).shots_fired;
    }
    assert_eq!(shots, 5);
    // Bullets carry the shooter as owner, and inherit its velocity plus the muzzle speed.
    let snap = w.snapshot();
    let bullets: Vec<&EntityState> = snap
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::Bullet)
        .collect();
    assert_eq!(bullets.len(), 5);
    assert!(bullets.iter().all(|b| b.owner == s));
    let expected = (100.0 + w.arena.rules.gun.bullet_speed) / f32::from(RATE);
    let last = bullets.last().expect("a bullet");
    assert!((last.vel_per_tick().x - expected).abs() < 0.01, "{last:?}");
    // Stop firing: every bullet is gone after its lifetime.
    w.set_input(s, Input::default());
    for _ in 0..w.tuning.bullet_life {
        w.step(&[]);
    }
    assert_eq!(w.count_of(EntityKind::Bullet), 0);
}

#[test]
fn inputs_are_held_and_turning_follows_the_convention() {
    let mut w = quiet_world();
    let s = ship_at(&mut w, Vec2::new(1000.0, 1000.0), 1.0);
    w.step(&[(
        s,
        Input {
            thrust: 0,
            turn: 127,
            buttons: 0,
        },
    )]);
    let a1 = w.entities[key(&w, s)].angle;
    assert!(
        (a1 - (1.0 - w.tuning.turn_per_tick)).abs() < 1e-5,
        "right is clockwise"
    );
    w.step(&[]);
    let a2 = w.entities[key(&w, s)].angle;
    assert!((a1 - a2 - w.tuning.turn_per_tick).abs() < 1e-5, "held");
    // Sanitized: -128 acts as -127.
    w.step(&[(
        s,
        Input {
            thrust: 0,
            turn: -128,
            buttons: 0xff,
        },
    )]);
    let a3 = w.entities[key(&w, s)].angle;
    assert!((a3 - a2 - w.tuning.turn_per_tick).abs() < 1e-5);
    assert_eq!(
        ship(&w, s).input,
        Input {
            thrust: 0,
            turn: -127,
            buttons: BUTTON_FIRE | BUTTON_BOOST
        }
    );
    // Unknown ids and non-ships are ignored.
    let rock = asteroid_at(&mut w, 0, Vec2::new(200.0, 200.0), Vec2::ZERO);
    assert!(!w.set_input(rock, FIRE));
    assert!(!w.set_input(4242, FIRE));
    w.step(&[(4242, FIRE), (0, FIRE)]);
}

#[test]
fn rules_in_seconds_play_the_same_at_any_tick_rate() {
    let mut results = Vec::new();
    for rate in [60u16, 30, 20] {
        let mut w = World::new(quiet_arena(), rate, 1);
        let s = ship_at(&mut w, Vec2::new(100.0, 1000.0), 0.0);
        w.set_input(
            s,
            Input {
                thrust: 127,
                turn: 0,
                buttons: FIRE.buttons,
            },
        );
        let mut shots = 0;
        for _ in 0..rate * 2 {
            shots += w.step(&[]).shots_fired;
        }
        let e = &w.entities[key(&w, s)];
        results.push((rate, e.pos.x, e.vel.x, shots));
    }
    // Two seconds of full thrust and fire from rest: about the same distance, speed and shots.
    let (_, x60, v60, shots60) = results[0];
    assert!((v60 - 420.0).abs() < 1.0, "capped at max_speed: {v60}");
    for &(rate, x, v, shots) in &results[1..] {
        assert!((x - x60).abs() < x60 * 0.03, "rate {rate}: x {x} vs {x60}");
        assert!((v - v60).abs() < 1.0, "rate {rate}: v {v} vs {v60}");
        assert!(
            shots.abs_diff(shots60) <= 1,
            "rate {rate}: {shots} shots vs {shots60}"
        );
    }
}
