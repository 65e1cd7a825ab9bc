//! Flying and moving: the controls of every live ship (turn, thrust, boost, drag, speed cap,
//! the gun), then one integration step for every body with wall and obstacle collisions, and
//! the filing of collidable bodies into this tick's grid.

use glam::Vec2;

use super::entity::{Bullet, Entity, Role};
use super::grid::{Class, Item};
use super::physics::{bounce_walls, inside, overlaps, push_out};
use super::{StepReport, World};
use crate::protocol::{BUTTON_BOOST, BUTTON_FIRE};
use crate::snapshot::{FLAG_BOOST, FLAG_THRUST, quantize_angle};

impl World {
    /// Applies each live ship's held input: turn, thrust (reverse at reduced power), boost and
    /// its energy, drag, the speed cap, and the gun. New bullets join the world at the muzzle.
    pub(super) fn fly_ships(&mut self, report: &mut StepReport) {
        let rules = &self.arena.rules;
        let t = &self.tuning;
        let dt = t.dt;
        let mut new_bullets = std::mem::take(&mut self.scratch.new_bullets);
        for &key in &self.ship_keys {
            let Some(e) = self.entities.get_mut(key) else {
                continue;
            };
            let Role::Ship(ship) = &mut e.role else {
                continue;
            };
            if ship.is_dead() {
                continue;
            }
            let input = ship.input.sanitized();
            let turn = f32::from(input.turn) / 127.0;
            let thrust = f32::from(input.thrust) / 127.0;
            // Positive turn is to the right: clockwise, so the angle decreases.
            if turn != 0.0 {
                // Field by field (not `set_angle`): `ship` still borrows `e.role`.
                e.angle = (e.angle - turn * t.turn_per_tick).rem_euclid(std::f32::consts::TAU);
                e.angle_q = quantize_angle(e.angle);
            }
            let dir = Vec2::from_angle(e.angle);

            // A boost in progress runs until the tank is empty; a new one needs some energy.
            let was_boosting = ship.flags & FLAG_BOOST != 0;
            let enough = if was_boosting {
                0.0
            } else {
                rules.boost.min_to_start
            };
            let boosting =
                input.holds(BUTTON_BOOST) && thrust > 0.0 && ship.energy > enough.max(0.0);
            ship.energy = if boosting {
                (ship.energy - t.energy_drain).max(0.0)
            } else {
                (ship.energy + t.energy_recharge).min(rules.boost.energy)
            };
            let boost = if boosting {
                rules.boost.multiplier
            } else {
                1.0
            };
            let accel = if thrust >= 0.0 {
                thrust * rules.ship.thrust * boost
            } else {
                thrust * rules.ship.thrust * rules.ship.reverse_power
            };
            e.vel += dir * (accel * dt);
            e.vel *= t.drag_factor;
            // Over the cap (boost just ended, a bounce): brake at full thrust, not instantly.
            let cap = rules.ship.max_speed * boost;
            let speed = e.vel.length();
            if speed > cap {
                let slower = (speed - rules.ship.thrust * rules.boost.multiplier * dt).max(cap);
                e.vel *= slower / speed;
            }
            ship.flags &= !(FLAG_THRUST | FLAG_BOOST);
            if thrust != 0.0 {
                ship.flags |= FLAG_THRUST;
            }
            if boosting {
                ship.flags |= FLAG_BOOST;
            }

            ship.cooldown = ship.cooldown.saturating_sub(1);
            if input.holds(BUTTON_FIRE) && ship.cooldown == 0 {
                ship.cooldown = t.fire_cooldown;
                report.shots_fired += 1;
                new_bullets.push(Entity::new(
                    e.pos + dir * (e.radius + rules.gun.bullet_radius),
                    e.vel + dir * rules.gun.bullet_speed,
                    e.angle,
                    rules.gun.bullet_radius,
                    Role::Bullet(Bullet {
                        owner: e.id,
                        owner_key: key,
                        expires: self.tick.saturating_add(t.bullet_life),
                    }),
                ));
            }
        }
        for bullet in new_bullets.drain(..) {
            // Out of ids (65535 entities): the shot is simply not fired.
            let _ = self.insert(bullet);
        }
        self.scratch.new_bullets = new_bullets;
    }

    /// Moves every body one tick; bounces ships and asteroids off walls and obstacles, ends
    /// bullets that expire, leave the arena or hit an obstacle; files the collidable bodies
    /// into the grid and lists live bullets and ships for the collision passes.
    pub(super) fn move_bodies(&mut self) {
        let (w, h) = (self.arena.width, self.arena.height);
        let obstacles = &self.arena.obstacles;
        let bounce = self.arena.rules.ship.bounce;
        let dt = self.tuning.dt;
        let tick = self.tick;
        let s = &mut self.scratch;
        s.bullets.clear();
        s.ships.clear();
        self.grid.clear();
        for (key, e) in self.entities.iter_mut() {
            match &mut e.role {
                Role::Ship(ship) => {
                    if ship.is_dead() {
                        continue;
                    }
                    e.pos += e.vel * dt;
                    for o in obstacles {
                        push_out(
                            &mut e.pos,
                            &mut e.vel,
                            e.radius,
                            Vec2::new(o.x, o.y),
                            o.radius,
                            Vec2::ZERO,
                            bounce,
                        );
                    }
                    // Walls last, so whatever else pushed it, it ends inside the arena.
                    bounce_walls(&mut e.pos, &mut e.vel, e.radius, w, h, bounce);
                    s.ships.push(key);
                    self.grid.push(Item {
                        pos: e.pos,
                        radius: e.radius,
                        key,
                        class: Class::Ship,
                    });
                }
                Role::Asteroid(_) => {
                    e.pos += e.vel * dt;
                    for o in obstacles {
                        push_out(
                            &mut e.pos,
                            &mut e.vel,
                            e.radius,
                            Vec2::new(o.x, o.y),
                            o.radius,
                            Vec2::ZERO,
                            1.0,
                        );
                    }
                    bounce_walls(&mut e.pos, &mut e.vel, e.radius, w, h, 1.0);
                    self.grid.push(Item {
                        pos: e.pos,
                        radius: e.radius,
                        key,
                        class: Class::Asteroid,
                    });
                }
                Role::Bullet(b) => {
                    e.pos += e.vel * dt;
                    let blocked = obstacles
                        .iter()
                        .any(|o| overlaps(e.pos, e.radius, Vec2::new(o.x, o.y), o.radius));
                    if tick >= b.expires || !inside(e.pos, w, h) || blocked {
                        e.gone = true;
                        s.gone.push(key);
                    } else {
                        s.bullets.push(key);
                    }
                }
                Role::Pickup(_) => {
                    self.grid.push(Item {
                        pos: e.pos,
                        radius: e.radius,
                        key,
                        class: Class::Pickup,
                    });
                }
            }
        }
        self.grid.finish();
    }
}
