//! The simulation: ships, bullets, asteroids and pickups in an [`Arena`], one fixed tick at a
//! time.
//!
//! The server's room task owns a [`World`]: each tick it passes the inputs it received to
//! [`World::step`] and takes a [`World::snapshot`] to publish. Nothing here reads a clock or
//! does I/O, and every random choice comes from the world's seeded [`Rng`], so the same arena,
//! seed and input sequence give identical snapshots tick for tick.
//!
//! One tick, in order:
//!
//! ```text
//! 1. inputs      listed ships get their new controls (the rest keep holding theirs)
//! 2. respawn     dead ships whose delay is over come back, shielded, at a free spot
//! 3. fly         turn, thrust / reverse, boost and energy, drag, speed cap, fire
//! 4. move        integrate; bounce off walls and obstacles; expire bullets; build the grid
//! 5. bullets     swept hits on ships and asteroids; damage, death, kill credit
//! 6. ships       bounce off asteroids (contact damage), take pickups
//! 7. sweep       remove spent bullets, destroyed asteroids, taken pickups
//! 8. replenish   break asteroids into smaller tiers, top the field up from the edges,
//!                replace pickups whose delay is over
//! ```
//!
//! Entities live in a `SlotMap`; the network only ever sees their [`NetId`]s (see `ids`).
//! Collisions go through a uniform grid rebuilt each tick (see `grid`), so a tick costs
//! O(entities), not O(entities²). Asteroids do not collide with each other, nor ships with
//! ships.

mod combat;
mod entity;
mod grid;
mod ids;
mod motion;
mod physics;
mod spawn;
#[cfg(test)]
mod tests;

use slotmap::SlotMap;

use crate::arena::Arena;
use crate::protocol::Input;
use crate::rng::Rng;
use crate::snapshot::{EntityKind, EntityState, NetId, Snapshot};
use entity::{Entity, Role};
use grid::Grid;
use ids::Ids;

slotmap::new_key_type! {
    /// The world's private handle on an entity. Never sent over the network.
    struct EntityKey;
}

/// Something a tick did that the server may want to announce or count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Ships that died this tick, with who gets the credit.
    pub kills: Vec<Kill>,
    /// Bullets fired.
    pub shots_fired: u32,
    /// Asteroids destroyed (each may have broken into smaller ones).
    pub asteroids_destroyed: u32,
    /// Pickups taken.
    pub pickups_taken: u32,
}

/// A ship's death.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kill {
    /// The ship credited with the kill (the last to damage the victim, within the arena's
    /// `kill_credit_time`), or `None` (an asteroid with nobody to blame).
    pub killer: Option<NetId>,
    /// The ship that died.
    pub victim: NetId,
}

/// The rules that depend on the tick rate, converted once.
#[derive(Clone, Debug)]
struct Tuning {
    /// Seconds per tick.
    dt: f32,
    /// Radians turned per tick at full stick.
    turn_per_tick: f32,
    /// Velocity multiplier per tick from drag.
    drag_factor: f32,
    /// Boost energy used / regained per tick.
    energy_drain: f32,
    energy_recharge: f32,
    /// Durations in ticks.
    fire_cooldown: u32,
    bullet_life: u32,
    respawn_delay: u32,
    spawn_shield: u32,
    contact_grace: u32,
    kill_credit: u32,
    pickup_respawn: u32,
    pickup_shield: u32,
}

impl Tuning {
    fn new(arena: &Arena, tick_rate: u16) -> Self {
        let rate = f32::from(tick_rate);
        let dt = 1.0 / rate;
        let r = &arena.rules;
        // `as` saturates, and a NaN from an unvalidated arena becomes 0.
        let ticks = |secs: f32| (secs * rate).round() as u32;
        Self {
            dt,
            turn_per_tick: r.ship.turn_rate.to_radians() * dt,
            drag_factor: (-r.ship.drag * dt).exp(),
            energy_drain: r.boost.drain * dt,
            energy_recharge: r.boost.recharge * dt,
            fire_cooldown: ticks(r.gun.cooldown).max(1),
            bullet_life: ticks(r.gun.bullet_lifetime).max(1),
            respawn_delay: ticks(r.ship.respawn_delay),
            spawn_shield: ticks(r.ship.spawn_shield),
            contact_grace: ticks(r.ship.contact_grace),
            kill_credit: ticks(r.kill_credit_time),
            pickup_respawn: ticks(r.pickups.respawn_delay),
            pickup_shield: ticks(r.pickups.shield_time),
        }
    }
}

/// Live entities of each counted kind.
#[derive(Clone, Debug, Default)]
struct Counts {
    ships: usize,
    asteroids: usize,
    pickups: usize,
}

/// Buffers reused every tick so a step does not allocate.
#[derive(Clone, Default)]
struct Scratch {
    bullets: Vec<EntityKey>,
    ships: Vec<EntityKey>,
    gone: Vec<EntityKey>,
    new_bullets: Vec<Entity>,
    /// Destroyed asteroids: where, how fast, which tier.
    broken: Vec<(glam::Vec2, glam::Vec2, u8)>,
    near: Vec<grid::Item>,
}

/// The authoritative game state and its rules.
#[derive(Clone)]
pub struct World {
    arena: Arena,
    tuning: Tuning,
    tick_rate: u16,
    tick: u32,
    rng: Rng,
    entities: SlotMap<EntityKey, Entity>,
    ids: Ids,
    counts: Counts,
    /// Every ship's key, in the order they joined: the per-ship passes walk this instead of
    /// every entity.
    ship_keys: Vec<EntityKey>,
    /// Ticks at which a taken pickup is replaced.
    pickup_timers: Vec<u32>,
    grid: Grid,
    scratch: Scratch,
}

impl std::fmt::Debug for World {
    /// A summary: the full state is a [`Snapshot`] away.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("tick", &self.tick)
            .field("tick_rate", &self.tick_rate)
            .field("entities", &self.entities.len())
            .field("ships", &self.counts.ships)
            .field("asteroids", &self.counts.asteroids)
            .field("pickups", &self.counts.pickups)
            .finish_non_exhaustive()
    }
}

impl World {
    /// A world at tick 0 with the arena's asteroids and pickups in place and no ships.
    /// `tick_rate` (Hz, 0 is taken as 1) fixes the step to `1 / tick_rate` seconds.
    ///
    /// The arena should be valid ([`Arena::from_toml`] and [`Arena::validate`] check it); an
    /// invalid one does not make the world panic, but may make it behave oddly.
    pub fn new(arena: Arena, tick_rate: u16, seed: u64) -> World {
        let tick_rate = tick_rate.max(1);
        let tuning = Tuning::new(&arena, tick_rate);
        let r = &arena.rules;
        let biggest = r
            .asteroids
            .tiers
            .iter()
            .map(|t| t.radius)
            .fold(r.ship.radius, f32::max);
        // Cells about one body each at full house, and never smaller than the biggest body.
        let bodies = r.asteroids.count as f32 + r.pickups.count as f32 + r.max_ships as f32;
        let per_body = (arena.width * arena.height / bodies.max(1.0)).sqrt();
        let grid = Grid::new(
            arena.width,
            arena.height,
            per_body.max(biggest * 2.0).max(64.0),
        );
        let mut world = World {
            tuning,
            tick_rate,
            tick: 0,
            rng: Rng::new(seed),
            entities: SlotMap::with_key(),
            ids: Ids::new(),
            counts: Counts::default(),
            ship_keys: Vec::new(),
            pickup_timers: Vec::new(),
            grid,
            scratch: Scratch::default(),
            arena,
        };
        world.seed_asteroids();
        for _ in 0..world.arena.rules.pickups.count {
            if !world.spawn_pickup() {
                break;
            }
        }
        world
    }

    /// Adds a player's ship at a free spot, shielded for the spawn-shield time. `None` when
    /// the arena's `max_ships` is reached.
    pub fn add_ship(&mut self) -> Option<NetId> {
        self.spawn_ship(false)
    }

    /// Adds a ship flown by the AI (`FLAG_AI` set); otherwise like [`World::add_ship`]. The
    /// caller drives it with an [`crate::ai::Pilot`].
    pub fn add_ai_ship(&mut self) -> Option<NetId> {
        self.spawn_ship(true)
    }

    /// Removes a ship (a player left). Its bullets fly on. Returns false if `id` is not a ship.
    pub fn remove_ship(&mut self, id: NetId) -> bool {
        match self.ids.key(id) {
            Some(key) if self.entities.get(key).is_some_and(|e| e.ship().is_some()) => {
                self.remove_key(key).is_some()
            }
            _ => false,
        }
    }

    /// Sets the controls a ship holds from now on. Returns false if `id` is not a ship.
    pub fn set_input(&mut self, id: NetId, input: Input) -> bool {
        let Some(e) = self.ids.key(id).and_then(|k| self.entities.get_mut(k)) else {
            return false;
        };
        let Role::Ship(ship) = &mut e.role else {
            return false;
        };
        ship.input = input.sanitized();
        true
    }

    /// Advances one tick. The listed ships get new controls first; every other ship keeps
    /// the controls it held (inputs are held, not pulses). Unknown ids are ignored.
    pub fn step(&mut self, inputs: &[(NetId, Input)]) -> StepReport {
        for &(id, input) in inputs {
            self.set_input(id, input);
        }
        self.tick = self.tick.wrapping_add(1);
        let mut report = StepReport::default();
        self.respawn_ships();
        self.fly_ships(&mut report);
        self.move_bodies();
        self.resolve_bullets(&mut report);
        self.resolve_ships(&mut report);
        self.sweep();
        self.replenish();
        report
    }

    /// The quantized state after the last step, sorted by id.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::empty();
        self.snapshot_into(&mut s);
        s
    }

    /// Like [`World::snapshot`], reusing `out`'s allocation.
    pub fn snapshot_into(&self, out: &mut Snapshot) {
        out.tick = self.tick;
        out.entities.clear();
        out.entities
            .resize(self.entities.len(), EntityState::new(0, EntityKind::Ship));
        let max_energy = self.arena.rules.boost.energy;
        // Read entities in memory order and write each straight to its sorted place: its
        // id's rank among the ids in use. No sort, and no random reads.
        let ranks = self.ids.ranks();
        for e in self.entities.values() {
            if let Some(slot) = out.entities.get_mut(ranks.rank(e.id)) {
                *slot = e.state(self.tick, self.tuning.dt, max_energy);
            }
        }
    }

    /// The quantized state of one entity, as the next snapshot will show it.
    pub fn entity(&self, id: NetId) -> Option<EntityState> {
        let e = self.entities.get(self.ids.key(id)?)?;
        Some(e.state(self.tick, self.tuning.dt, self.arena.rules.boost.energy))
    }

    /// Ids of every ship (alive or dead), ascending.
    pub fn ship_ids(&self) -> Vec<NetId> {
        let mut ids: Vec<NetId> = self
            .ship_keys
            .iter()
            .filter_map(|&k| self.entities.get(k))
            .map(|e| e.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Ships in the world, alive or dead.
    pub fn ship_count(&self) -> usize {
        self.counts.ships
    }

    /// Asteroids in the world.
    pub fn asteroid_count(&self) -> usize {
        self.counts.asteroids
    }

    /// Entities of every kind.
    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    /// Entities of one kind.
    pub fn count_of(&self, kind: EntityKind) -> usize {
        match kind {
            EntityKind::Ship => self.counts.ships,
            EntityKind::Asteroid => self.counts.asteroids,
            EntityKind::Pickup => self.counts.pickups,
            EntityKind::Bullet => self.entities.values().filter(|e| e.kind() == kind).count(),
        }
    }

    /// The tick the current state is the result of (0 before the first step). A `u32`: at
    /// 60 Hz it would wrap after 2.2 years, far beyond any room's life.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// Ticks per second.
    pub fn tick_rate(&self) -> u16 {
        self.tick_rate
    }

    /// Seconds per tick.
    pub fn dt(&self) -> f32 {
        self.tuning.dt
    }

    /// The arena and its rules.
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// Checks the world's invariants: every position, velocity and angle finite; every body
    /// inside the arena; the id table and the entities agreeing. For tests and debug
    /// assertions; O(entities).
    pub fn is_consistent(&self) -> bool {
        let (w, h) = (self.arena.width, self.arena.height);
        let bodies_ok = self.entities.iter().all(|(key, e)| {
            e.pos.is_finite()
                && e.vel.is_finite()
                && e.angle.is_finite()
                && physics::inside(e.pos, w, h)
                && e.id != 0
                && self.ids.key(e.id) == Some(key)
        });
        let counted = self.entities.values().fold(Counts::default(), |mut c, e| {
            match e.role {
                Role::Ship(_) => c.ships += 1,
                Role::Asteroid(_) => c.asteroids += 1,
                Role::Pickup(_) => c.pickups += 1,
                Role::Bullet(_) => {}
            }
            c
        });
        let ships_listed = self.ship_keys.len() == self.counts.ships
            && self
                .ship_keys
                .iter()
                .all(|&k| self.entities.get(k).is_some_and(|e| e.ship().is_some()));
        bodies_ok
            && ships_listed
            && self.ids.len() == self.entities.len()
            && counted.ships == self.counts.ships
            && counted.asteroids == self.counts.asteroids
            && counted.pickups == self.counts.pickups
    }
}
