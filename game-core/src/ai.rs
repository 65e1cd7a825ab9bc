//! The AI pilot: flies a ship from what a player can see.
//!
//! A [`Pilot`] looks only at a quantized [`Snapshot`] and the [`ArenaInfo`] — exactly what a
//! client holds — so the same code flies the server's filler ships (from the room's latest
//! snapshot) and the headless bots (from their replica). It does not know the rules: it learns
//! its turn rate and muzzle speed from what it observes, starting from sensible guesses.
//!
//! Each think: pick a target (the nearest visible live, unshielded enemy ship, else the
//! nearest asteroid; keep it for a while so it does not dither), aim with lead, hold a
//! preferred distance with forward and reverse thrust, fire when roughly lined up and in
//! range, boost to close long gaps, and steer away from walls, obstacles and rocks in the way.
//! Per-pilot randomness (preferred range, aim error, boldness, wandering) keeps a crowd of
//! them from moving in lockstep.

use std::f32::consts::{PI, TAU};

use glam::Vec2;

use crate::protocol::{ArenaInfo, BUTTON_BOOST, BUTTON_FIRE, Input};
use crate::rng::Rng;
use crate::snapshot::{EntityKind, EntityState, FLAG_DEAD, FLAG_SHIELD, NetId, Snapshot};

/// Guessed muzzle speed, units per tick, until the pilot has seen its own bullets.
const GUESS_MUZZLE: f32 = 30.0;
/// Guessed turn rate, radians per tick at full stick, until observed.
const GUESS_TURN: f32 = 0.14;
/// Distance from a wall or obstacle at which the pilot starts steering away.
const WALL_MARGIN: f32 = 160.0;
/// Ships farther than this are ignored in favour of a nearer asteroid.
const HUNT_RANGE: f32 = 1400.0;
/// Rough radius of a ship, for aim tolerance.
const SHIP_SIZE: f32 = 20.0;

/// One AI pilot. Keep one per ship: it remembers its target and what it has learned.
#[derive(Clone, Debug)]
pub struct Pilot {
    rng: Rng,
    /// Distance it likes to fight at.
    preferred: f32,
    /// How far it shoots from.
    fire_range: f32,
    /// Radians of aim error, re-drawn now and then.
    aim_error: f32,
    /// Chance per think of boosting when far from the target.
    boldness: f32,
    target: Option<NetId>,
    /// Thinks left before the target is reconsidered.
    keep_target: u32,
    /// Heading to drift towards with nothing to chase.
    wander: f32,
    /// Learned: units per tick a bullet leaves the ship at.
    muzzle: f32,
    /// Learned: radians per tick at full stick.
    turn_rate: f32,
    /// What it did last think, to learn its turn rate.
    last: Option<(u32, f32, i8)>,
}

/// What the pilot sees of one thing, in world units and units per tick.
#[derive(Clone, Copy)]
struct Seen {
    id: NetId,
    pos: Vec2,
    vel: Vec2,
    radius: f32,
}

impl Seen {
    fn of(e: &EntityState) -> Self {
        let radius = match e.kind {
            EntityKind::Asteroid => [64.0, 36.0, 18.0]
                .get(usize::from(e.var))
                .copied()
                .unwrap_or(18.0),
            _ => SHIP_SIZE,
        };
        Self {
            id: e.id,
            pos: e.pos(),
            vel: e.vel_per_tick(),
            radius,
        }
    }
}

impl Pilot {
    /// A pilot whose personality and choices all come from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5851_f42d_4c95_7f2d);
        Self {
            preferred: rng.range_f32(260.0, 480.0),
            fire_range: rng.range_f32(650.0, 850.0),
            aim_error: 0.0,
            boldness: rng.range_f32(0.02, 0.12),
            target: None,
            keep_target: 0,
            wander: rng.angle(),
            muzzle: GUESS_MUZZLE,
            turn_rate: GUESS_TURN,
            last: None,
            rng,
        }
    }

    /// The input for ship `me` given what is visible. Neutral input when `me` is not in view
    /// or is dead.
    pub fn think(&mut self, me: NetId, view: &Snapshot, arena: &ArenaInfo) -> Input {
        let Some(my) = view.get(me) else {
            return Input::default();
        };
        if my.has(FLAG_DEAD) {
            self.target = None;
            self.last = None;
            return Input::default();
        }
        let heading = my.heading();
        self.learn_turn(view.tick, heading);
        let me_seen = Seen::of(my);

        // One pass: learn the muzzle speed, find candidate targets and rocks in the way.
        let mut nearest_ship: Option<(f32, Seen)> = None;
        let mut nearest_rock: Option<(f32, Seen)> = None;
        let mut current: Option<Seen> = None;
        let mut avoid = Vec2::ZERO;
        for e in &view.entities {
            if e.id == me {
                continue;
            }
            let seen = Seen::of(e);
            let d = seen.pos.distance(me_seen.pos);
            match e.kind {
                EntityKind::Bullet if e.owner == me => {
                    let speed = (seen.vel - me_seen.vel).length();
                    if speed > 1.0 {
                        self.muzzle += (speed - self.muzzle) * 0.05;
                    }
                }
                EntityKind::Ship if !e.has(FLAG_DEAD) && !e.has(FLAG_SHIELD) => {
                    if Some(e.id) == self.target {
                        current = Some(seen);
                    }
                    if nearest_ship.is_none_or(|(nd, _)| d < nd) {
                        nearest_ship = Some((d, seen));
                    }
                }
                EntityKind::Asteroid => {
                    if Some(e.id) == self.target {
                        current = Some(seen);
                    }
                    if nearest_rock.is_none_or(|(nd, _)| d < nd) {
                        nearest_rock = Some((d, seen));
                    }
                    // Rocks about to be rammed push the desired course away.
                    let gap = d - seen.radius - me_seen.radius;
                    if gap < 90.0 {
                        let away = (me_seen.pos - seen.pos).normalize_or_zero();
                        avoid += away * (1.0 - gap.max(0.0) / 90.0) * 1.5;
                    }
                }
                _ => {}
            }
        }

        // Keep the target for a while; otherwise prefer ships in hunting range, then rocks.
        self.keep_target = self.keep_target.saturating_sub(1);
        let target = match current {
            Some(t) if self.keep_target > 0 => Some(t),
            _ => {
                let pick = match (nearest_ship, nearest_rock) {
                    (Some((ds, s)), Some((dr, r))) => Some(if ds < HUNT_RANGE || ds < dr * 2.0 {
                        s
                    } else {
                        r
                    }),
                    (Some((_, s)), None) => Some(s),
                    (None, Some((_, r))) => Some(r),
                    (None, None) => None,
                };
                self.target = pick.map(|t| t.id);
                self.keep_target = 20 + self.rng.below(40);
                self.aim_error = self.rng.range_f32(-0.08, 0.08);
                pick
            }
        };

        avoid += self.wall_push(me_seen.pos, me_seen.vel, arena);
        let mut input = Input::default();
        let desired = match target {
            Some(t) => {
                let rel = t.pos - me_seen.pos;
                let dist = rel.length();
                let aim = self.lead(rel, t.vel - me_seen.vel);
                let aim_angle = aim.y.atan2(aim.x) + self.aim_error;
                let err = wrap(aim_angle - heading).abs();
                // Fire when lined up well enough to hit something of that size.
                let tolerance = ((t.radius + 6.0) / dist.max(1.0)).atan() + 0.03;
                if err < tolerance && dist < self.fire_range {
                    input.buttons |= BUTTON_FIRE;
                }
                // Hold the preferred distance: close in, back off (reverse keeps the aim).
                let facing = err < 0.6;
                if dist > self.preferred * 1.25 {
                    input.thrust = if facing { 127 } else { 40 };
                    if facing && dist > self.preferred * 2.5 && self.rng.chance(self.boldness * 4.0)
                    {
                        input.buttons |= BUTTON_BOOST;
                    }
                } else if dist < self.preferred * 0.7 {
                    input.thrust = if facing { -127 } else { 0 };
                } else {
                    input.thrust = if facing { 30 } else { 0 };
                }
                aim_angle
            }
            None => {
                self.wander = (self.wander + self.rng.range_f32(-0.2, 0.2)).rem_euclid(TAU);
                input.thrust = 90;
                self.wander
            }
        };

        // Danger overrides the course: turn away and get out under power.
        let desired = if avoid.length() > 0.6 {
            let away = avoid.y.atan2(avoid.x);
            let err = wrap(away - heading).abs();
            input.thrust = if err < 1.2 { 127 } else { 20 };
            input.buttons &= !BUTTON_BOOST;
            away
        } else {
            desired
        };

        let err = wrap(desired - heading);
        // Positive turn is clockwise (angle decreasing); full stick when the error is more
        // than a tick's worth of turning.
        let turn = (-err / self.turn_rate.max(0.01) * 127.0).clamp(-127.0, 127.0);
        input.turn = turn.round() as i8;
        self.last = Some((view.tick, heading, input.turn));
        input
    }

    /// Updates the turn-rate estimate from how far the last full-stick turn went.
    fn learn_turn(&mut self, tick: u32, heading: f32) {
        if let Some((last_tick, last_heading, last_turn)) = self.last {
            let ticks = tick.wrapping_sub(last_tick);
            if last_turn.unsigned_abs() == 127 && (1..=4).contains(&ticks) {
                let seen = wrap(heading - last_heading).abs() / ticks as f32;
                if seen > 0.005 && seen < 1.0 {
                    self.turn_rate += (seen - self.turn_rate) * 0.3;
                }
            }
        }
    }

    /// Where to aim to hit something at `rel` moving at `rel_vel` (per tick, relative to us):
    /// solves |rel + rel_vel·t| = muzzle·t for the first t > 0; aims straight at it otherwise.
    fn lead(&self, rel: Vec2, rel_vel: Vec2) -> Vec2 {
        let s = self.muzzle.max(1.0);
        let a = rel_vel.length_squared() - s * s;
        let b = 2.0 * rel.dot(rel_vel);
        let c = rel.length_squared();
        let t = if a.abs() < 1e-6 {
            if b.abs() > 1e-6 { -c / b } else { -1.0 }
        } else {
            let disc = b * b - 4.0 * a * c;
            if disc < 0.0 {
                -1.0
            } else {
                let r = disc.sqrt();
                let (t1, t2) = ((-b - r) / (2.0 * a), (-b + r) / (2.0 * a));
                match (t1 > 0.0, t2 > 0.0) {
                    (true, true) => t1.min(t2),
                    (true, false) => t1,
                    (false, true) => t2,
                    (false, false) => -1.0,
                }
            }
        };
        if t > 0.0 && t < 200.0 {
            rel + rel_vel * t
        } else {
            rel
        }
    }

    /// A push away from walls and obstacles that are close and being approached.
    fn wall_push(&self, pos: Vec2, vel: Vec2, arena: &ArenaInfo) -> Vec2 {
        // Look a few ticks ahead, so fast ships turn earlier.
        let ahead = pos + vel * 8.0;
        let (w, h) = (arena.width as f32, arena.height as f32);
        let mut push = Vec2::ZERO;
        let near = |gap: f32| (1.0 - gap / WALL_MARGIN).clamp(0.0, 1.0);
        push.x += near(ahead.x) - near(w - ahead.x);
        push.y += near(ahead.y) - near(h - ahead.y);
        for &(x, y, r) in &arena.obstacles {
            let c = Vec2::new(x as f32, y as f32);
            let d = ahead - c;
            let gap = d.length() - r as f32 - SHIP_SIZE;
            if gap < WALL_MARGIN {
                push += d.normalize_or(Vec2::X) * near(gap.max(0.0)) * 1.2;
            }
        }
        push
    }
}

/// An angle difference brought into `(-π, π]`.
fn wrap(a: f32) -> f32 {
    let a = (a + PI).rem_euclid(TAU) - PI;
    if a.is_finite() { a } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Arena;
    use crate::world::World;

    #[test]
    fn wrap_and_lead() {
        assert!((wrap(3.0 * PI) - PI).abs() < 1e-5 || (wrap(3.0 * PI) + PI).abs() < 1e-5);
        assert!((wrap(-0.5) + 0.5).abs() < 1e-6);
        assert_eq!(wrap(f32::NAN), 0.0);
        let p = Pilot::new(1);
        // Still target: aim straight at it.
        assert_eq!(
            p.lead(Vec2::new(100.0, 0.0), Vec2::ZERO),
            Vec2::new(100.0, 0.0)
        );
        // Crossing target: aim ahead of it, on the side it moves to.
        let aim = p.lead(Vec2::new(300.0, 0.0), Vec2::new(0.0, 5.0));
        assert!(aim.y > 0.0 && aim.x == 300.0);
        // A target faster than the bullet going away: no solution, aim at it.
        assert_eq!(
            p.lead(Vec2::new(100.0, 0.0), Vec2::new(100.0, 0.0)),
            Vec2::new(100.0, 0.0)
        );
    }

    #[test]
    fn neutral_when_absent_or_dead_and_aims_at_a_target() {
        let arena = Arena::standard();
        let info = arena.info();
        let mut p = Pilot::new(3);
        assert_eq!(p.think(7, &Snapshot::empty(), &info), Input::default());
        let mut me = EntityState::new(1, EntityKind::Ship);
        (me.x, me.y) = (16 * 1000, 16 * 1000);
        let mut enemy = EntityState::new(2, EntityKind::Ship);
        (enemy.x, enemy.y) = (16 * 1000, 16 * 1400); // straight "down" (+y), 400 away
        let view = Snapshot::new(5, vec![me, enemy]);
        let input = p.think(1, &view, &info);
        // Heading 0 (+x), target at +y (counter-clockwise): turn left, i.e. negative.
        assert!(input.turn < -100, "{input:?}");
        assert!(input.is_valid());
        let dead = EntityState {
            flags: FLAG_DEAD,
            ..me
        };
        assert_eq!(
            p.think(1, &Snapshot::new(6, vec![dead, enemy]), &info),
            Input::default()
        );
    }

    #[test]
    fn steers_away_from_walls() {
        let info = Arena::standard().info();
        let mut p = Pilot::new(9);
        let mut me = EntityState::new(1, EntityKind::Ship);
        (me.x, me.y) = (16 * 40, 16 * 1000); // near the left wall, facing it
        me.angle = 32768;
        let input = p.think(1, &Snapshot::new(1, vec![me]), &info);
        assert!(input.turn.unsigned_abs() == 127, "{input:?}");
    }

    /// A match of AI ships looks alive: within two simulated minutes they shoot asteroids,
    /// kill each other, and do not all sit still.
    #[test]
    fn an_ai_match_is_lively() {
        let rate = 30;
        let mut world = World::new(Arena::standard(), rate, 2024);
        let info = world.arena().info();
        let mut pilots: Vec<(NetId, Pilot)> = (0..8)
            .filter_map(|i| world.add_ai_ship().map(|id| (id, Pilot::new(i))))
            .collect();
        assert_eq!(pilots.len(), 8);
        let mut view = world.snapshot();
        let mut inputs = Vec::new();
        let (mut kills, mut credited, mut rocks, mut shots) = (0, 0, 0, 0);
        let mut first_kill = None;
        for tick in 0..u32::from(rate) * 120 {
            inputs.clear();
            inputs.extend(
                pilots
                    .iter_mut()
                    .map(|(id, p)| (*id, p.think(*id, &view, &info))),
            );
            let r = world.step(&inputs);
            kills += r.kills.len();
            credited += r.kills.iter().filter(|k| k.killer.is_some()).count();
            rocks += r.asteroids_destroyed;
            shots += r.shots_fired;
            if first_kill.is_none() && credited > 0 {
                first_kill = Some(tick);
            }
            world.snapshot_into(&mut view);
        }
        assert!(world.is_consistent());
        assert!(shots > 500, "shots {shots}");
        assert!(rocks >= 20, "asteroids destroyed {rocks}");
        assert!(credited >= 5, "kills {kills}, credited {credited}");
        assert!(
            first_kill.is_some_and(|t| t < u32::from(rate) * 60),
            "first kill at {first_kill:?}"
        );
        let scores: u32 = view
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::Ship)
            .map(|e| u32::from(e.score))
            .sum();
        assert_eq!(scores as usize, credited);
    }
}
