//! Hits and their consequences: bullets against ships and asteroids (swept, nearest hit wins),
//! ships against asteroids and pickups, damage, shields, death, and kill credit.

use glam::Vec2;

use super::entity::{Attacker, Role};
use super::grid::Class;
use super::physics::{bounce_walls, overlaps, push_out, segment_hits_circle};
use super::{EntityKey, Kill, StepReport, World};
use crate::snapshot::{NetId, PickupKind};

impl World {
    /// Each live bullet hits the first ship or asteroid along its path this tick (never its
    /// own shooter) and is spent.
    pub(super) fn resolve_bullets(&mut self, report: &mut StepReport) {
        let bullets = std::mem::take(&mut self.scratch.bullets);
        let reach = self.arena.rules.gun.bullet_radius;
        for &bk in &bullets {
            let Some(e) = self.entities.get(bk) else {
                continue;
            };
            let Role::Bullet(b) = &e.role else { continue };
            // Swept over this tick's move (bullets fly straight, so the start is exact enough).
            let (from, to) = (e.pos - e.vel * self.tuning.dt, e.pos);
            let (owner, owner_key) = (b.owner, b.owner_key);
            let mut best: Option<(f32, EntityKey)> = None;
            for item in self.grid.query(from.min(to) - reach, from.max(to) + reach) {
                if item.class == Class::Pickup || item.key == owner_key {
                    continue;
                }
                let Some(t) = segment_hits_circle(from, to, item.pos, item.radius + reach) else {
                    continue;
                };
                if best.is_some_and(|(bt, _)| bt <= t) {
                    continue;
                }
                // Still there? An earlier bullet this tick may have destroyed or killed it.
                let alive = self
                    .entities
                    .get(item.key)
                    .is_some_and(|t| !t.gone && t.ship().is_none_or(|s| !s.is_dead()));
                if alive {
                    best = Some((t, item.key));
                }
            }
            let Some((_, target)) = best else { continue };
            if let Some(e) = self.entities.get_mut(bk) {
                e.gone = true;
                self.scratch.gone.push(bk);
            }
            let damage = i32::from(self.arena.rules.gun.bullet_damage);
            let attacker = Attacker {
                id: owner,
                key: owner_key,
                tick: self.tick,
            };
            self.damage(target, damage, Some(attacker), report);
        }
        self.scratch.bullets = bullets;
    }

    /// Each live ship bounces off the asteroids it touches (taking their contact damage unless
    /// shielded or in its grace period) and takes the pickups it touches.
    pub(super) fn resolve_ships(&mut self, report: &mut StepReport) {
        let ships = std::mem::take(&mut self.scratch.ships);
        let mut near = std::mem::take(&mut self.scratch.near);
        let bounce = self.arena.rules.ship.bounce;
        let (w, h) = (self.arena.width, self.arena.height);
        for &sk in &ships {
            let Some(e) = self.entities.get(sk) else {
                continue;
            };
            if e.ship().is_none_or(|s| s.is_dead()) {
                continue;
            }
            let (pos, r) = (e.pos, e.radius);
            near.clear();
            near.extend(
                self.grid
                    .query(pos - r, pos + r)
                    .filter(|i| i.class != Class::Ship),
            );
            for item in &near {
                let Some(other) = self.entities.get(item.key) else {
                    continue;
                };
                if other.gone {
                    continue;
                }
                let (centre, cr, other_vel) = (other.pos, other.radius, other.vel);
                match &other.role {
                    Role::Asteroid(a) => {
                        let tier = usize::from(a.tier);
                        let Some(e) = self.entities.get_mut(sk) else {
                            break;
                        };
                        if !push_out(
                            &mut e.pos, &mut e.vel, e.radius, centre, cr, other_vel, bounce,
                        ) {
                            continue;
                        }
                        bounce_walls(&mut e.pos, &mut e.vel, e.radius, w, h, bounce);
                        let Role::Ship(ship) = &mut e.role else { break };
                        if self.tick < ship.grace_until {
                            continue;
                        }
                        ship.grace_until = self.tick.saturating_add(self.tuning.contact_grace);
                        let damage = self
                            .arena
                            .rules
                            .asteroids
                            .tiers
                            .get(tier)
                            .map_or(0, |t| t.contact_damage);
                        self.damage(sk, i32::from(damage), None, report);
                    }
                    Role::Pickup(kind) => {
                        let kind = *kind;
                        let Some(ship_pos) = self.entities.get(sk).map(|e| e.pos) else {
                            break;
                        };
                        if overlaps(ship_pos, r, centre, cr) {
                            self.take_pickup(item.key, sk, kind);
                            report.pickups_taken += 1;
                        }
                    }
                    Role::Ship(_) | Role::Bullet(_) => {}
                }
                if self
                    .entities
                    .get(sk)
                    .and_then(|e| e.ship())
                    .is_none_or(|s| s.is_dead())
                {
                    break;
                }
            }
        }
        self.scratch.near = near;
        self.scratch.ships = ships;
    }

    /// Damages a ship or an asteroid. A shielded ship takes nothing. A ship hurt by another
    /// remembers it for kill credit; an asteroid at 0 hp is destroyed (and breaks up later).
    pub(super) fn damage(
        &mut self,
        target: EntityKey,
        amount: i32,
        by: Option<Attacker>,
        report: &mut StepReport,
    ) {
        let tick = self.tick;
        let Some(e) = self.entities.get_mut(target) else {
            return;
        };
        let (id, pos, vel) = (e.id, e.pos, e.vel);
        match &mut e.role {
            Role::Asteroid(a) => {
                a.hp -= amount;
                if a.hp <= 0 {
                    let tier = a.tier;
                    e.gone = true;
                    self.scratch.gone.push(target);
                    self.scratch.broken.push((pos, vel, tier));
                    report.asteroids_destroyed += 1;
                }
            }
            Role::Ship(ship) => {
                if ship.is_dead() || ship.shielded(tick) {
                    return;
                }
                if let Some(by) = by.filter(|by| by.key != target) {
                    ship.attacker = Some(by);
                }
                ship.hp -= amount;
                if ship.hp > 0 {
                    return;
                }
                ship.hp = 0;
                ship.respawn_at = Some(tick.saturating_add(self.tuning.respawn_delay));
                // Thrust and boost end; FLAG_AI stays. The held input stays too (a dead ship
                // ignores it), so a button still held is still held after the respawn.
                ship.flags &= crate::snapshot::FLAG_AI;
                e.vel = Vec2::ZERO;
                let credit = ship
                    .attacker
                    .filter(|a| tick.saturating_sub(a.tick) <= self.tuning.kill_credit)
                    .map(|a| a.key);
                let killer = credit.and_then(|k| self.credit_kill(k));
                report.kills.push(Kill { killer, victim: id });
            }
            Role::Bullet(_) | Role::Pickup(_) => {}
        }
    }

    /// Adds the kill score to a ship that still exists; returns its id.
    fn credit_kill(&mut self, killer: EntityKey) -> Option<NetId> {
        let kill_score = self.arena.rules.kill_score;
        let e = self.entities.get_mut(killer)?;
        let Role::Ship(ship) = &mut e.role else {
            return None;
        };
        ship.score = ship.score.saturating_add(kill_score);
        Some(e.id)
    }

    /// A ship takes a pickup: the effect applies now, and a replacement is scheduled.
    fn take_pickup(&mut self, pickup: EntityKey, taker: EntityKey, kind: PickupKind) {
        let Some(p) = self.entities.get_mut(pickup) else {
            return;
        };
        p.gone = true;
        self.scratch.gone.push(pickup);
        self.pickup_timers
            .push(self.tick.saturating_add(self.tuning.pickup_respawn));
        let rules = &self.arena.rules;
        let Some(Role::Ship(ship)) = self.entities.get_mut(taker).map(|e| &mut e.role) else {
            return;
        };
        match kind {
            PickupKind::Health => {
                ship.hp =
                    (ship.hp + i32::from(rules.pickups.health)).min(i32::from(rules.ship.health));
            }
            PickupKind::Energy => {
                ship.energy = (ship.energy + rules.pickups.energy).min(rules.boost.energy)
            }
            PickupKind::Shield => {
                let until = self.tick.saturating_add(self.tuning.pickup_shield);
                ship.shield_until = ship.shield_until.max(until);
            }
        }
    }
}
