// @ts-check
/**
 * @file Client-side prediction of the player's own ship. Inputs are applied locally the tick
 * they are sent, with the same flight rules as game-core's `fly_ships`/`move_bodies` (turn,
 * thrust or reverse, boost, drag, speed cap, then move); when a frame arrives, the prediction
 * restarts from the server's state of the ship and replays the inputs the server has not yet
 * acknowledged (seq > ack). Small disagreements (walls, hits) are blended out over ~100 ms
 * instead of snapping, so the ship does not rubber-band.
 */

import { POS_SCALE, VEL_SCALE, FLAG } from './snapshot.js';

/**
 * @typedef {{turn_rate: number, thrust: number, reverse_power: number, drag: number,
 *   max_speed: number, boost_multiplier: number}} Flight
 * @typedef {{x: number, y: number, vx: number, vy: number, angle: number}} Body
 * @typedef {import('./codec.js').Input} Input
 */

const TAU = Math.PI * 2;

export class Predictor {
  /** @param {Flight} flight @param {number} tickRate */
  constructor(flight, tickRate) {
    this.flight = flight;
    this.dt = 1 / tickRate;
    this.tickRate = tickRate;
    /** @type {{seq: number, input: Input}[]} inputs sent, not yet acknowledged */
    this.pending = [];
    /** @type {Body | null} predicted state, world units and units per second */
    this.body = null;
    /** correction still being blended out, world units */
    this.offset = { x: 0, y: 0 };
    this.lastBlend = performance.now();
  }

  /** One tick of flight. @param {Body} b @param {Input} input */
  step(b, input) {
    const f = this.flight;
    const turn = Math.max(-1, input.turn / 127);
    const thrust = Math.max(-1, input.thrust / 127);
    b.angle = (((b.angle - turn * ((f.turn_rate * Math.PI) / 180) * this.dt) % TAU) + TAU) % TAU;
    const boost = input.buttons & 2 && thrust > 0 ? f.boost_multiplier : 1;
    const accel = thrust >= 0 ? thrust * f.thrust * boost : thrust * f.thrust * f.reverse_power;
    b.vx += Math.cos(b.angle) * accel * this.dt;
    b.vy += Math.sin(b.angle) * accel * this.dt;
    const drag = Math.exp(-f.drag * this.dt);
    b.vx *= drag;
    b.vy *= drag;
    const cap = f.max_speed * boost;
    const speed = Math.hypot(b.vx, b.vy);
    if (speed > cap) {
      const slower = Math.max(cap, speed - f.thrust * f.boost_multiplier * this.dt);
      b.vx *= slower / speed;
      b.vy *= slower / speed;
    }
    b.x += b.vx * this.dt;
    b.y += b.vy * this.dt;
  }

  /** Records and applies an input sent with `seq`. @param {number} seq @param {Input} input */
  sent(seq, input) {
    this.pending.push({ seq, input });
    if (this.pending.length > 256) this.pending.shift();
    if (this.body) this.step(this.body, input);
  }

  /**
   * Restarts from the server's state of our ship and replays what it has not applied yet.
   * @param {import('./snapshot.js').Entity | undefined} ship @param {number} ack
   */
  reconcile(ship, ack) {
    this.pending = this.pending.filter((p) => p.seq > ack);
    if (!ship || ship.flags & FLAG.DEAD) {
      this.body = null;
      return;
    }
    const before = this.view();
    /** @type {Body} */
    const b = {
      x: ship.x / POS_SCALE,
      y: ship.y / POS_SCALE,
      vx: (ship.vx / VEL_SCALE) * this.tickRate,
      vy: (ship.vy / VEL_SCALE) * this.tickRate,
      angle: (ship.angle / 65536) * TAU,
    };
    for (const p of this.pending) this.step(b, p.input);
    this.body = b;
    if (before) {
      const dx = before.x - b.x;
      const dy = before.y - b.y;
      // Blend small corrections; jump on big ones (respawn, teleport).
      this.offset = Math.hypot(dx, dy) < 80 ? { x: dx, y: dy } : { x: 0, y: 0 };
    }
  }

  /** Where to draw our ship now, or null when the server's state should be drawn. */
  view() {
    if (!this.body) return null;
    const now = performance.now();
    const k = Math.exp(-(now - this.lastBlend) / 100);
    this.lastBlend = now;
    this.offset.x *= k;
    this.offset.y *= k;
    return { x: this.body.x + this.offset.x, y: this.body.y + this.offset.y, angle: this.body.angle };
  }
}
