//! What the world is made of: one [`Entity`] per body, with kind-specific state in [`Role`],
//! and how an entity becomes its quantized [`EntityState`] for snapshots.

use glam::Vec2;

use crate::protocol::Input;
use crate::snapshot::{
    EntityKind, EntityState, FLAG_DEAD, FLAG_SHIELD, NetId, PickupKind, quantize_angle,
    quantize_pos, quantize_vel,
};

use super::EntityKey;

/// One body in the world. Velocities are in units per second.
#[derive(Clone, Debug)]
pub(super) struct Entity {
    pub id: NetId,
    pub pos: Vec2,
    pub vel: Vec2,
    /// Heading in radians, `[0, 2π)`, counter-clockwise from +x. Change it with
    /// [`Entity::set_angle`], which keeps `angle_q` in step.
    pub angle: f32,
    /// `angle` quantized, cached: most bodies never turn, and quantizing is the costly part
    /// of a snapshot.
    pub angle_q: u16,
    pub radius: f32,
    /// Spent this tick (a bullet that hit, a destroyed asteroid, a taken pickup): ignored by
    /// every later check and removed at the end of the tick.
    pub gone: bool,
    pub role: Role,
}

/// Kind-specific state.
#[derive(Clone, Debug)]
pub(super) enum Role {
    /// Boxed: ships are few and big, and keeping them out of line keeps every other entity
    /// small, so the passes over all entities touch less memory.
    Ship(Box<Ship>),
    Bullet(Bullet),
    Asteroid(Asteroid),
    Pickup(PickupKind),
}

/// Who last damaged a ship, for kill credit.
#[derive(Clone, Copy, Debug)]
pub(super) struct Attacker {
    pub id: NetId,
    /// The key, so a kill is never credited to a later entity that reused the id.
    pub key: EntityKey,
    pub tick: u32,
}

#[derive(Clone, Debug)]
pub(super) struct Ship {
    /// The held controls.
    pub input: Input,
    pub hp: i32,
    pub energy: f32,
    /// Ticks until the gun can fire again.
    pub cooldown: u32,
    /// `FLAG_THRUST`, `FLAG_BOOST` (this tick) and `FLAG_AI`; dead and shield are derived.
    pub flags: u8,
    pub score: u16,
    pub attacker: Option<Attacker>,
    /// While dead: the tick it respawns.
    pub respawn_at: Option<u32>,
    /// Shielded while `tick < shield_until`.
    pub shield_until: u32,
    /// Asteroids do no damage while `tick < grace_until`.
    pub grace_until: u32,
}

impl Ship {
    pub fn is_dead(&self) -> bool {
        self.respawn_at.is_some()
    }

    pub fn shielded(&self, tick: u32) -> bool {
        tick < self.shield_until
    }
}

#[derive(Clone, Debug)]
pub(super) struct Bullet {
    pub owner: NetId,
    pub owner_key: EntityKey,
    /// Removed once `tick >= expires`.
    pub expires: u32,
}

#[derive(Clone, Debug)]
pub(super) struct Asteroid {
    pub tier: u8,
    pub hp: i32,
}

impl Entity {
    /// A new entity (its id is given when it is inserted).
    pub fn new(pos: Vec2, vel: Vec2, angle: f32, radius: f32, role: Role) -> Self {
        Self {
            id: 0,
            pos,
            vel,
            angle,
            angle_q: quantize_angle(angle),
            radius,
            gone: false,
            role,
        }
    }

    pub fn set_angle(&mut self, angle: f32) {
        self.angle = angle;
        self.angle_q = quantize_angle(angle);
    }

    pub fn kind(&self) -> EntityKind {
        match self.role {
            Role::Ship(_) => EntityKind::Ship,
            Role::Bullet(_) => EntityKind::Bullet,
            Role::Asteroid(_) => EntityKind::Asteroid,
            Role::Pickup(_) => EntityKind::Pickup,
        }
    }

    /// The ship state, if this is a ship.
    pub fn ship(&self) -> Option<&Ship> {
        match &self.role {
            Role::Ship(s) => Some(s),
            _ => None,
        }
    }

    /// The quantized network view (see the field table in [`crate::snapshot`]).
    pub fn state(&self, tick: u32, dt: f32, max_energy: f32) -> EntityState {
        let mut s = EntityState {
            x: quantize_pos(self.pos.x),
            y: quantize_pos(self.pos.y),
            vx: quantize_vel(self.vel.x * dt),
            vy: quantize_vel(self.vel.y * dt),
            angle: self.angle_q,
            ..EntityState::new(self.id, self.kind())
        };
        match &self.role {
            Role::Ship(ship) => {
                s.hp = clamp_u8(ship.hp);
                s.flags = ship.flags;
                if ship.is_dead() {
                    s.flags |= FLAG_DEAD;
                } else if ship.shielded(tick) {
                    s.flags |= FLAG_SHIELD;
                }
                s.var = (ship.energy / max_energy * 255.0).round().clamp(0.0, 255.0) as u8;
                s.owner = ship.attacker.map_or(0, |a| a.id);
                s.score = ship.score;
            }
            Role::Bullet(b) => s.owner = b.owner,
            Role::Asteroid(a) => {
                s.hp = clamp_u8(a.hp);
                s.var = a.tier;
            }
            Role::Pickup(kind) => s.var = *kind as u8,
        }
        s
    }
}

fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}
