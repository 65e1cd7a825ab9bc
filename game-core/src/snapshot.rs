//! Snapshots: the quantized, networked state of a world at one tick.
//!
//! The world simulates in `f32` (see [`crate::world`]); once per send the server takes a
//! [`Snapshot`], which is the only form of the state that ever crosses the network. Quantizing
//! here, once, means every replica (server ring, bot, browser) holds bit-identical integers, so
//! a checksum of them proves two copies agree.
//!
//! ```text
//! field   type  unit
//! x, y    i32   1/16 world unit              (POS_SCALE)
//! vx, vy  i16   1/256 world unit per tick    (VEL_SCALE; 16 per grid step)
//! angle   u16   1/65536 of a turn, 0 = +x, counter-clockwise
//! hp      u8    health points
//! flags   u8    FLAG_* bits
//! var     u8    ship: boost energy; asteroid: size tier; pickup: PickupKind
//! owner   u16   bullet: shooter's id; ship: last ship that hit it (kill credit); else 0
//! score   u16   ship: kills
//! ```
//!
//! Entities are sorted by [`NetId`], unique, and ids are small integers (never slotmap keys),
//! so deltas can walk two snapshots in one merge pass.

/// A network id: small, stable for the life of an entity, never 0.
pub type NetId = u16;

/// Grid steps per world unit for positions.
pub const POS_SCALE: f32 = 16.0;
/// Velocity steps per world unit per tick (16 per position grid step, for sub-grid precision).
pub const VEL_SCALE: f32 = 256.0;
/// Angle steps per full turn.
pub const ANGLE_STEPS: f32 = 65536.0;

/// Ship is thrusting (for the flame).
pub const FLAG_THRUST: u8 = 1;
/// Ship is boosting.
pub const FLAG_BOOST: u8 = 2;
/// Ship is dead and waiting to respawn; not drawn, not collidable.
pub const FLAG_DEAD: u8 = 4;
/// Ship has just respawned and cannot be hurt yet.
pub const FLAG_SHIELD: u8 = 8;
/// Ship is driven by the server's AI pilot.
pub const FLAG_AI: u8 = 16;

/// What an entity is. Its numeric value is its wire value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EntityKind {
    /// A player's (or AI pilot's) ship.
    Ship = 0,
    /// A bullet with a lifetime.
    Bullet = 1,
    /// A drifting asteroid; `var` is its size tier.
    Asteroid = 2,
    /// A pickup; `var` is its [`PickupKind`].
    Pickup = 3,
}

impl EntityKind {
    /// Every kind, in wire order.
    pub const ALL: [EntityKind; 4] = [Self::Ship, Self::Bullet, Self::Asteroid, Self::Pickup];

    /// The kind for a wire byte, if there is one.
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(usize::from(v)).copied()
    }
}

/// What a pickup gives; stored in a pickup's `var`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PickupKind {
    /// Restores health.
    Health = 0,
    /// Refills boost energy.
    Energy = 1,
    /// A few seconds of shield.
    Shield = 2,
}

impl PickupKind {
    /// Every kind, in wire order.
    pub const ALL: [PickupKind; 3] = [Self::Health, Self::Energy, Self::Shield];
}

/// One entity as the network sees it. See the module docs for units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // fields are documented in the module's table
pub struct EntityState {
    pub id: NetId,
    pub kind: EntityKind,
    pub x: i32,
    pub y: i32,
    pub vx: i16,
    pub vy: i16,
    pub angle: u16,
    pub hp: u8,
    pub flags: u8,
    pub var: u8,
    pub owner: u16,
    pub score: u16,
}

impl EntityState {
    /// An entity of `kind` at the origin with every other field zero.
    pub fn new(id: NetId, kind: EntityKind) -> Self {
        Self {
            id,
            kind,
            x: 0,
            y: 0,
            vx: 0,
            vy: 0,
            angle: 0,
            hp: 0,
            flags: 0,
            var: 0,
            owner: 0,
            score: 0,
        }
    }

    /// Position in world units.
    pub fn pos(&self) -> glam::Vec2 {
        glam::Vec2::new(self.x as f32, self.y as f32) / POS_SCALE
    }

    /// Velocity in world units per tick.
    pub fn vel_per_tick(&self) -> glam::Vec2 {
        glam::Vec2::new(f32::from(self.vx), f32::from(self.vy)) / VEL_SCALE
    }

    /// Heading in radians, in `[0, 2π)`.
    pub fn heading(&self) -> f32 {
        f32::from(self.angle) / ANGLE_STEPS * std::f32::consts::TAU
    }

    /// Whether a flag bit is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Quantizes a world-space coordinate to the position grid (saturating).
pub fn quantize_pos(v: f32) -> i32 {
    (v * POS_SCALE).round() as i32
}

/// Quantizes a velocity in world units per tick (saturating to `i16`).
pub fn quantize_vel(v_per_tick: f32) -> i16 {
    (v_per_tick * VEL_SCALE)
        .round()
        .clamp(i16::MIN.into(), i16::MAX.into()) as i16
}

/// Quantizes an angle in radians (any value) to 16 bits.
pub fn quantize_angle(radians: f32) -> u16 {
    let turns = (radians / std::f32::consts::TAU).rem_euclid(1.0);
    // `as` saturates, and 1.0 * 65536 wraps to 0 through the u32 step.
    ((turns * ANGLE_STEPS).round() as u32 & 0xffff) as u16
}

/// The networked state at one tick: entities sorted by id, ids unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The tick this state is the result of.
    pub tick: u32,
    /// Entities, sorted by ascending `id`, no duplicates.
    pub entities: Vec<EntityState>,
}

impl Snapshot {
    /// The empty snapshot at tick 0: the baseline of every keyframe.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds a snapshot, sorting entities by id. Duplicate ids keep the first occurrence.
    pub fn new(tick: u32, mut entities: Vec<EntityState>) -> Self {
        entities.sort_by_key(|e| e.id);
        entities.dedup_by_key(|e| e.id);
        Self { tick, entities }
    }

    /// The entity with `id`, if present.
    pub fn get(&self, id: NetId) -> Option<&EntityState> {
        self.entities
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| &self.entities[i])
    }

    /// Whether entities are strictly ascending by id (the invariant every decoder checks).
    pub fn is_sorted(&self) -> bool {
        self.entities.windows(2).all(|w| w[0].id < w[1].id)
    }

    /// A fast 32-bit checksum of the entities (not the tick).
    ///
    /// MurmurHash3 (x86, 32-bit) over six little-endian words per entity, in id order, seeded
    /// with the entity count:
    ///
    /// ```text
    /// w0 = id | kind << 16 | hp << 24      w3 = vx as u16 | (vy as u16) << 16
    /// w1 = x as u32                        w4 = angle | flags << 16 | var << 24
    /// w2 = y as u32                        w5 = owner | score << 16
    /// ```
    ///
    /// The browser computes the same function with `Math.imul`.
    pub fn checksum(&self) -> u32 {
        let mut h = Murmur3::new(self.entities.len() as u32);
        for e in &self.entities {
            h.word(u32::from(e.id) | u32::from(e.kind as u8) << 16 | u32::from(e.hp) << 24);
            h.word(e.x as u32);
            h.word(e.y as u32);
            h.word(u32::from(e.vx as u16) | u32::from(e.vy as u16) << 16);
            h.word(u32::from(e.angle) | u32::from(e.flags) << 16 | u32::from(e.var) << 24);
            h.word(u32::from(e.owner) | u32::from(e.score) << 16);
        }
        h.finish()
    }
}

/// MurmurHash3 x86_32, fed whole words.
struct Murmur3 {
    h: u32,
    len: u32,
}

impl Murmur3 {
    fn new(seed: u32) -> Self {
        Self { h: seed, len: 0 }
    }

    fn word(&mut self, k: u32) {
        let k = k
            .wrapping_mul(0xcc9e_2d51)
            .rotate_left(15)
            .wrapping_mul(0x1b87_3593);
        self.h = (self.h ^ k)
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
        self.len = self.len.wrapping_add(4);
    }

    fn finish(self) -> u32 {
        let mut h = self.h ^ self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ship(id: NetId) -> EntityState {
        EntityState {
            x: 100,
            y: -50,
            hp: 100,
            ..EntityState::new(id, EntityKind::Ship)
        }
    }

    #[test]
    fn new_sorts_and_dedups() {
        let s = Snapshot::new(3, vec![ship(5), ship(1), ship(5), ship(2)]);
        assert_eq!(
            s.entities.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1, 2, 5]
        );
        assert!(s.is_sorted());
        assert_eq!(s.get(2).map(|e| e.id), Some(2));
        assert!(s.get(3).is_none());
    }

    #[test]
    fn checksum_sees_every_field() {
        let base = Snapshot::new(1, vec![ship(1), ship(2)]);
        let c = base.checksum();
        let edits: [fn(&mut EntityState); 11] = [
            |e| e.x += 1,
            |e| e.y -= 1,
            |e| e.vx = 1,
            |e| e.vy = -1,
            |e| e.angle = 1,
            |e| e.hp -= 1,
            |e| e.flags = FLAG_DEAD,
            |e| e.var = 9,
            |e| e.owner = 2,
            |e| e.score = 1,
            |e| e.kind = EntityKind::Asteroid,
        ];
        for edit in edits {
            let mut s = base.clone();
            edit(&mut s.entities[1]);
            assert_ne!(s.checksum(), c, "{:?}", s.entities[1]);
        }
        // The tick is not content.
        assert_eq!(
            Snapshot {
                tick: 99,
                ..base.clone()
            }
            .checksum(),
            c
        );
        // Known value, shared with the JavaScript client's tests through the golden vectors.
        assert_eq!(Snapshot::empty().checksum(), 0);
    }

    #[test]
    fn quantizers_round_and_saturate() {
        assert_eq!(quantize_pos(1.0), 16);
        assert_eq!(quantize_pos(-0.03), 0);
        assert_eq!(quantize_vel(1e9), i16::MAX);
        assert_eq!(quantize_vel(-1e9), i16::MIN);
        assert_eq!(quantize_angle(0.0), 0);
        assert_eq!(quantize_angle(std::f32::consts::PI), 32768);
        assert_eq!(quantize_angle(std::f32::consts::TAU), 0);
        assert_eq!(quantize_angle(-std::f32::consts::FRAC_PI_2), 49152);
        assert_eq!(quantize_angle(f32::NAN), 0);
    }
}
