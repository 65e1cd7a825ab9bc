//! Rule tests: each sets up a small scene in a quiet arena (no obstacles, asteroids or pickups
//! unless the test adds them) and checks one rule through the public API and snapshots.

mod combat;
mod field;
mod flight;

use glam::Vec2;

use super::entity::{Asteroid, Bullet, Entity, Role, Ship};
use super::*;
use crate::protocol::{BUTTON_BOOST, BUTTON_FIRE};
use crate::snapshot::{FLAG_AI, FLAG_BOOST, FLAG_DEAD, FLAG_SHIELD, FLAG_THRUST, PickupKind};

const RATE: u16 = 30;

fn quiet_arena() -> Arena {
    let mut a = Arena::standard();
    a.obstacles.clear();
    a.rules.asteroids.count = 0;
    a.rules.pickups.count = 0;
    a
}

fn quiet_world() -> World {
    World::new(quiet_arena(), RATE, 1)
}

fn key(w: &World, id: NetId) -> EntityKey {
    w.ids.key(id).expect("id in use")
}

fn body(w: &mut World, id: NetId) -> &mut Entity {
    let k = key(w, id);
    &mut w.entities[k]
}

fn ship(w: &World, id: NetId) -> &Ship {
    w.entities[key(w, id)].ship().expect("a ship")
}

fn ship_mut(w: &mut World, id: NetId) -> &mut Ship {
    match &mut body(w, id).role {
        Role::Ship(s) => s,
        _ => panic!("not a ship"),
    }
}

/// A ship at `pos` facing `angle`, at rest, unshielded.
fn ship_at(w: &mut World, pos: Vec2, angle: f32) -> NetId {
    let id = w.add_ship().expect("room for a ship");
    let e = body(w, id);
    e.pos = pos;
    e.set_angle(angle);
    e.vel = Vec2::ZERO;
    ship_mut(w, id).shield_until = 0;
    id
}

fn asteroid_at(w: &mut World, tier: u8, pos: Vec2, vel: Vec2) -> NetId {
    let t = &w.arena.rules.asteroids.tiers[usize::from(tier)];
    let e = Entity::new(
        pos,
        vel,
        0.0,
        t.radius,
        Role::Asteroid(Asteroid {
            tier,
            hp: i32::from(t.hp),
        }),
    );
    w.insert(e).expect("id").0
}

fn pickup_at(w: &mut World, kind: PickupKind, pos: Vec2) -> NetId {
    let r = w.arena.rules.pickups.radius;
    let e = Entity::new(pos, Vec2::ZERO, 0.0, r, Role::Pickup(kind));
    w.insert(e).expect("id").0
}

fn state(w: &World, id: NetId) -> EntityState {
    w.entity(id).expect("entity exists")
}

const FIRE: Input = Input {
    thrust: 0,
    turn: 0,
    buttons: BUTTON_FIRE,
};

#[test]
fn a_new_world_has_its_asteroids_and_pickups() {
    let w = World::new(Arena::standard(), RATE, 5);
    let rules = &w.arena().rules;
    assert_eq!(w.asteroid_count(), rules.asteroids.count as usize);
    assert_eq!(w.count_of(EntityKind::Pickup), rules.pickups.count as usize);
    assert_eq!(w.ship_count(), 0);
    assert_eq!(w.tick(), 0);
    assert!(w.is_consistent());
    let s = w.snapshot();
    assert!(s.is_sorted());
    assert_eq!(s.entities.len(), w.entity_count());
    // Asteroids start clear of obstacles.
    for e in s.entities.iter().filter(|e| e.kind == EntityKind::Asteroid) {
        for o in &w.arena().obstacles {
            assert!(
                e.pos().distance(Vec2::new(o.x, o.y)) >= o.radius,
                "{e:?} in {o:?}"
            );
        }
    }
}

#[test]
fn ship_limit_removal_and_id_reuse() {
    let mut arena = quiet_arena();
    arena.rules.max_ships = 3;
    let mut w = World::new(arena, RATE, 2);
    let a = w.add_ship().expect("1");
    let b = w.add_ai_ship().expect("2");
    let c = w.add_ship().expect("3");
    assert_eq!(w.add_ship(), None);
    assert_eq!(w.add_ai_ship(), None);
    assert!(state(&w, b).has(FLAG_AI));
    assert!(!state(&w, a).has(FLAG_AI));
    assert!(state(&w, a).has(FLAG_SHIELD), "spawn shield");
    assert_eq!(w.ship_ids(), [a, b, c]);
    assert!(w.remove_ship(b));
    assert!(!w.remove_ship(b));
    assert!(!w.remove_ship(0));
    let d = w.add_ship().expect("room again");
    assert_ne!(d, b, "a just-freed id is not handed straight back");
    assert_eq!(w.ship_count(), 3);
    // AI ships stay AI through death and respawn; flags never lose FLAG_AI.
    let kb = key(&w, d);
    let mut r = StepReport::default();
    ship_mut(&mut w, d).shield_until = 0;
    w.damage(kb, 1000, None, &mut r);
    assert!(state(&w, d).has(FLAG_DEAD));
    assert!(w.is_consistent());
}

#[test]
fn ships_spawn_apart() {
    let mut arena = Arena::standard();
    arena.rules.max_ships = 32;
    let mut w = World::new(arena, RATE, 77);
    let ids: Vec<NetId> = (0..16).filter_map(|_| w.add_ship()).collect();
    w.step(&[]);
    let snap = w.snapshot();
    let ships: Vec<Vec2> = ids
        .iter()
        .filter_map(|&id| snap.get(id))
        .map(|e| e.pos())
        .collect();
    let r = w.arena.rules.ship.radius;
    for (i, p) in ships.iter().enumerate() {
        for q in &ships[i + 1..] {
            assert!(p.distance(*q) > 2.0 * r, "{p} {q}");
        }
        for o in &w.arena.obstacles {
            assert!(p.distance(Vec2::new(o.x, o.y)) >= o.radius + r - 1e-3);
        }
    }
}

#[test]
fn snapshot_fields_follow_the_table() {
    let mut arena = Arena::standard();
    arena.rules.pickups.count = 2;
    let mut w = World::new(arena, RATE, 3);
    let s = w.add_ship().expect("ship");
    body(&mut w, s).vel = Vec2::new(60.0, -30.0);
    w.step(&[(s, FIRE)]);
    let snap = w.snapshot();
    assert_eq!(snap.tick, 1);
    assert!(snap.is_sorted());
    assert_eq!(snap.entities.len(), w.entity_count());
    let mut reused = Snapshot {
        tick: 99,
        entities: vec![EntityState::new(1, EntityKind::Ship); 3],
    };
    w.snapshot_into(&mut reused);
    assert_eq!(reused, snap);
    for e in &snap.entities {
        assert!(e.id != 0);
        match e.kind {
            EntityKind::Ship => {
                assert_eq!(e.var, 255);
                assert_eq!(e.hp, w.arena.rules.ship.health);
                let v = e.vel_per_tick() * f32::from(RATE);
                assert!(v.x > 0.0 && v.y < 0.0, "velocity per tick: {v}");
            }
            EntityKind::Bullet => assert_eq!(e.owner, s),
            EntityKind::Asteroid => {
                let t = &w.arena.rules.asteroids.tiers[usize::from(e.var)];
                assert!(e.hp <= t.hp && e.hp > 0);
                assert_eq!(e.owner, 0);
            }
            EntityKind::Pickup => assert!(usize::from(e.var) < PickupKind::ALL.len()),
        }
        let p = e.pos();
        assert!(p.x >= 0.0 && p.y >= 0.0 && p.x <= w.arena.width && p.y <= w.arena.height);
    }
}
