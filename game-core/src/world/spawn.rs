//! Entities coming and going: ids for new entities, free spots to (re)spawn ships and pickups,
//! asteroids drifting in from the edges and breaking into smaller ones, and the end-of-tick
//! sweep of spent entities.

use glam::Vec2;

use super::entity::{Asteroid, Entity, Role, Ship};
use super::grid::Class;
use super::{EntityKey, World};
use crate::protocol::Input;
use crate::snapshot::{FLAG_AI, NetId, PickupKind};

/// Candidate spots tried when looking for a free place.
const SPOT_TRIES: usize = 16;
/// Room wanted around a spawning ship beyond touching, in ship radii.
const SHIP_ROOM: f32 = 4.0;

impl World {
    /// Adds an entity with a fresh id; `None` (and nothing added) when ids run out.
    pub(super) fn insert(&mut self, mut e: Entity) -> Option<(NetId, EntityKey)> {
        let id = self.ids.alloc()?;
        e.id = id;
        let is_ship = matches!(e.role, Role::Ship(_));
        match e.role {
            Role::Ship(_) => self.counts.ships += 1,
            Role::Asteroid(_) => self.counts.asteroids += 1,
            Role::Pickup(_) => self.counts.pickups += 1,
            Role::Bullet(_) => {}
        }
        let key = self.entities.insert(e);
        self.ids.bind(id, key);
        if is_ship {
            self.ship_keys.push(key);
        }
        Some((id, key))
    }

    /// Removes an entity and frees its id.
    pub(super) fn remove_key(&mut self, key: EntityKey) -> Option<Entity> {
        let e = self.entities.remove(key)?;
        self.ids.free(e.id);
        match e.role {
            Role::Ship(_) => {
                self.counts.ships -= 1;
                self.ship_keys.retain(|&k| k != key);
            }
            Role::Asteroid(_) => self.counts.asteroids -= 1,
            Role::Pickup(_) => self.counts.pickups -= 1,
            Role::Bullet(_) => {}
        }
        Some(e)
    }

    /// Removes every entity spent this tick.
    pub(super) fn sweep(&mut self) {
        let mut gone = std::mem::take(&mut self.scratch.gone);
        for key in gone.drain(..) {
            self.remove_key(key);
        }
        self.scratch.gone = gone;
    }

    /// A place for a body of radius `r`, clear of obstacles and at least `room` away from
    /// ships and asteroids if such a spot turns up in a few random tries; otherwise the
    /// roomiest one tried. Uses the grid of the last tick, which is at most one tick stale.
    pub(super) fn free_spot(&mut self, r: f32, room: f32) -> Vec2 {
        let (w, h) = (self.arena.width, self.arena.height);
        let mut best = (f32::NEG_INFINITY, Vec2::new(w / 2.0, h / 2.0));
        for _ in 0..SPOT_TRIES {
            let p = Vec2::new(self.rng.range_f32(r, w - r), self.rng.range_f32(r, h - r));
            let mut clearance = room;
            for o in &self.arena.obstacles {
                clearance = clearance.min(p.distance(Vec2::new(o.x, o.y)) - o.radius - r);
            }
            let reach = r + room;
            for item in self.grid.query(p - reach, p + reach) {
                if item.class != Class::Pickup {
                    clearance = clearance.min(p.distance(item.pos) - item.radius - r);
                }
            }
            if clearance >= room {
                return p;
            }
            if clearance > best.0 {
                best = (clearance, p);
            }
        }
        best.1
    }

    /// A fresh ship at a free spot, facing the centre, shielded. `None` when the arena's ship
    /// limit or the id space is full.
    pub(super) fn spawn_ship(&mut self, ai: bool) -> Option<NetId> {
        if self.counts.ships >= self.arena.rules.max_ships as usize {
            return None;
        }
        let rules = &self.arena.rules;
        let r = rules.ship.radius;
        let ship = Box::new(Ship {
            input: Input::default(),
            hp: i32::from(rules.ship.health),
            energy: rules.boost.energy,
            cooldown: 0,
            flags: if ai { FLAG_AI } else { 0 },
            score: 0,
            attacker: None,
            respawn_at: None,
            shield_until: self.tick.saturating_add(self.tuning.spawn_shield),
            grace_until: 0,
        });
        let pos = self.free_spot(r, r * SHIP_ROOM);
        let e = Entity::new(
            pos,
            Vec2::ZERO,
            self.facing_centre(pos),
            r,
            Role::Ship(ship),
        );
        self.insert(e).map(|(id, _)| id)
    }

    fn facing_centre(&self, pos: Vec2) -> f32 {
        let to_centre = Vec2::new(self.arena.width, self.arena.height) / 2.0 - pos;
        to_centre
            .y
            .atan2(to_centre.x)
            .rem_euclid(std::f32::consts::TAU)
    }

    /// Brings back dead ships whose delay is over: full health and energy, a free spot, a
    /// spawn shield, no attacker.
    pub(super) fn respawn_ships(&mut self) {
        let tick = self.tick;
        let mut due = std::mem::take(&mut self.scratch.ships);
        due.clear();
        due.extend(self.ship_keys.iter().copied().filter(|&k| {
            let at = self
                .entities
                .get(k)
                .and_then(|e| e.ship())
                .and_then(|s| s.respawn_at);
            at.is_some_and(|at| tick >= at)
        }));
        let r = self.arena.rules.ship.radius;
        for &key in &due {
            let pos = self.free_spot(r, r * SHIP_ROOM);
            let angle = self.facing_centre(pos);
            let rules = &self.arena.rules;
            let Some(e) = self.entities.get_mut(key) else {
                continue;
            };
            let Role::Ship(ship) = &mut e.role else {
                continue;
            };
            ship.respawn_at = None;
            ship.hp = i32::from(rules.ship.health);
            ship.energy = rules.boost.energy;
            ship.cooldown = 0;
            ship.attacker = None;
            ship.grace_until = 0;
            ship.shield_until = tick.saturating_add(self.tuning.spawn_shield);
            e.pos = pos;
            e.vel = Vec2::ZERO;
            e.set_angle(angle);
        }
        self.scratch.ships = due;
    }

    /// An asteroid of `tier` at `pos` drifting in direction `heading` at a speed drawn from
    /// its tier. `None` if the tier does not exist or ids ran out.
    fn spawn_asteroid(
        &mut self,
        tier: u8,
        pos: Vec2,
        heading: f32,
        base_vel: Vec2,
    ) -> Option<NetId> {
        let t = self.arena.rules.asteroids.tiers.get(usize::from(tier))?;
        let (radius, hp, lo, hi) = (t.radius, t.hp, t.speed_min, t.speed_max);
        let speed = self.rng.range_f32(lo, hi);
        let (w, h) = (self.arena.width, self.arena.height);
        let pos = pos.clamp(
            Vec2::splat(radius),
            Vec2::new(w - radius, h - radius).max(Vec2::splat(radius)),
        );
        let vel = base_vel + Vec2::from_angle(heading) * speed;
        let angle = self.rng.angle();
        let e = Entity::new(
            pos,
            vel,
            angle,
            radius,
            Role::Asteroid(Asteroid {
                tier,
                hp: i32::from(hp),
            }),
        );
        self.insert(e).map(|(id, _)| id)
    }

    /// Fills the field with asteroids at random free spots (a new world).
    pub(super) fn seed_asteroids(&mut self) {
        let radius = self
            .arena
            .rules
            .asteroids
            .tiers
            .first()
            .map_or(0.0, |t| t.radius);
        for _ in 0..self.arena.rules.asteroids.count {
            let pos = self.free_spot(radius, 0.0);
            let heading = self.rng.angle();
            if self.spawn_asteroid(0, pos, heading, Vec2::ZERO).is_none() {
                break;
            }
        }
    }

    /// Breaks destroyed asteroids into the next tier, then tops the field up to its count with
    /// new asteroids drifting in from a random edge, and replaces pickups whose delay is over.
    pub(super) fn replenish(&mut self) {
        let mut broken = std::mem::take(&mut self.scratch.broken);
        for (pos, vel, tier) in broken.drain(..) {
            let Some(parent) = self.arena.rules.asteroids.tiers.get(usize::from(tier)) else {
                continue;
            };
            let splits = parent.splits;
            let child = tier + 1;
            let Some(child_radius) = self
                .arena
                .rules
                .asteroids
                .tiers
                .get(usize::from(child))
                .map(|t| t.radius)
            else {
                continue;
            };
            let base = self.rng.angle();
            for i in 0..splits {
                let heading = base + std::f32::consts::TAU * f32::from(i) / f32::from(splits);
                let offset = Vec2::from_angle(heading) * child_radius * 0.7;
                self.spawn_asteroid(child, pos + offset, heading, vel * 0.5);
            }
        }
        self.scratch.broken = broken;

        let target = self.arena.rules.asteroids.count as usize;
        while self.counts.asteroids < target {
            if !self.asteroid_from_edge() {
                break;
            }
        }

        let tick = self.tick;
        let due = self.pickup_timers.iter().filter(|&&at| tick >= at).count();
        self.pickup_timers.retain(|&at| tick < at);
        for _ in 0..due {
            self.spawn_pickup();
        }
    }

    /// A tier-0 asteroid entering from a random point of the edge, heading into the arena.
    /// Tries a few points to avoid landing on a ship. Returns false when none could be added.
    fn asteroid_from_edge(&mut self) -> bool {
        let Some(r) = self.arena.rules.asteroids.tiers.first().map(|t| t.radius) else {
            return false;
        };
        let (w, h) = (self.arena.width, self.arena.height);
        let ship_r = self.arena.rules.ship.radius;
        let mut pos = Vec2::new(r, r);
        for _ in 0..4 {
            let along = self.rng.next_f32();
            pos = match self.rng.below(4) {
                0 => Vec2::new(r + along * (w - 2.0 * r), r),
                1 => Vec2::new(r + along * (w - 2.0 * r), h - r),
                2 => Vec2::new(r, r + along * (h - 2.0 * r)),
                _ => Vec2::new(w - r, r + along * (h - 2.0 * r)),
            };
            let reach = r + ship_r * SHIP_ROOM;
            let crowded = self
                .grid
                .query(pos - reach, pos + reach)
                .any(|i| i.class == Class::Ship && i.pos.distance(pos) < reach + i.radius);
            if !crowded {
                break;
            }
        }
        // Aim at a random point in the middle half of the arena.
        let aim = Vec2::new(
            self.rng.range_f32(0.25, 0.75) * w,
            self.rng.range_f32(0.25, 0.75) * h,
        );
        let d = aim - pos;
        self.spawn_asteroid(0, pos, d.y.atan2(d.x), Vec2::ZERO)
            .is_some()
    }

    /// A pickup of a random kind at a free spot.
    pub(super) fn spawn_pickup(&mut self) -> bool {
        let r = self.arena.rules.pickups.radius;
        let pos = self.free_spot(r, r * 2.0);
        let kind = PickupKind::ALL[self.rng.below(PickupKind::ALL.len() as u32) as usize];
        let e = Entity::new(pos, Vec2::ZERO, 0.0, r, Role::Pickup(kind));
        self.insert(e).is_some()
    }
}
