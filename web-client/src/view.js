// @ts-check
/**
 * @file Drawing the arena on a canvas at the display's frame rate, independent of the send
 * rate. Remote entities are interpolated between received snapshots, rendered about two send
 * intervals in the past so there is always a pair to blend; the world's y axis points up, so
 * the canvas is flipped (turning right is clockwise on screen, as in the simulation).
 */

import { FLAG, KINDS, POS_SCALE } from './snapshot.js';

/** @typedef {import('./snapshot.js').Entity} Entity */
/** @typedef {import('./snapshot.js').Snapshot} Snapshot */
/** @typedef {import('./codec.js').ArenaInfo} ArenaInfo */

/** Asteroid radii by size tier (the standard arena's tiers). */
const ASTEROID_RADIUS = [64, 36, 18];
const PICKUP_COLORS = ['#4ade80', '#60a5fa', '#facc15'];

/** @param {number} id */
export function shipColor(id) {
  return `hsl(${(id * 137.5) % 360} 80% 60%)`;
}

/** Received snapshots with their arrival times, for interpolation. */
export class Timeline {
  constructor() {
    /** @type {{at: number, snap: Snapshot}[]} */
    this.items = [];
  }

  /** @param {Snapshot} snap */
  push(snap) {
    this.items.push({ at: performance.now(), snap });
    if (this.items.length > 32) this.items.shift();
  }

  /**
   * Entities as they were at `t` (ms, performance.now clock), blending the two snapshots
   * around it; the newest snapshot when `t` is past it.
   * @param {number} t
   * @returns {Entity[]}
   */
  at(t) {
    const n = this.items.length;
    if (n === 0) return [];
    if (n === 1 || t >= this.items[n - 1].at) return this.items[n - 1].snap.entities;
    let i = n - 1;
    while (i > 0 && this.items[i - 1].at > t) i--;
    if (i === 0) return this.items[0].snap.entities;
    const a = this.items[i - 1];
    const b = this.items[i];
    const f = Math.min(1, Math.max(0, (t - a.at) / Math.max(1, b.at - a.at)));
    const before = new Map(a.snap.entities.map((e) => [e.id, e]));
    return b.snap.entities.map((e) => {
      const p = before.get(e.id);
      // Blend only what moved a plausible distance (not a respawn or a wall teleport).
      if (!p || p.kind !== e.kind || Math.abs(p.x - e.x) + Math.abs(p.y - e.y) > 200 * POS_SCALE) return e;
      let da = e.angle - p.angle;
      if (da > 32768) da -= 65536;
      if (da < -32768) da += 65536;
      return { ...e, x: p.x + (e.x - p.x) * f, y: p.y + (e.y - p.y) * f, angle: p.angle + da * f };
    });
  }
}

/** Draws one frame of the world. */
export class Renderer {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2d canvas');
    this.ctx = ctx;
    /** @type {ArenaInfo | null} */
    this.arena = null;
  }

  /**
   * @param {Entity[]} entities
   * @param {{x: number, y: number} | null} focus world units to center on, or the whole arena
   * @param {number} me our ship's id (0: none)
   */
  draw(entities, focus, me) {
    const { canvas, ctx, arena } = this;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#05070d';
    ctx.fillRect(0, 0, w, h);
    if (!arena) return;
    const scale = focus ? Math.min(w, h) / 1100 : Math.min(w / arena.width, h / arena.height) * 0.95;
    const cx = focus ? focus.x : arena.width / 2;
    const cy = focus ? focus.y : arena.height / 2;
    // World (y up) to screen (y down).
    ctx.setTransform(dpr * scale, 0, 0, -dpr * scale, dpr * (w / 2 - cx * scale), dpr * (h / 2 + cy * scale));
    ctx.strokeStyle = '#334155';
    ctx.lineWidth = 4 / scale;
    ctx.strokeRect(0, 0, arena.width, arena.height);
    ctx.fillStyle = '#1e293b';
    for (const [x, y, r] of arena.obstacles) {
      ctx.beginPath();
      ctx.arc(x, y, r, 0, Math.PI * 2);
      ctx.fill();
    }
    for (const e of entities) this.entity(e, e.id === me, scale);
  }

  /** @param {Entity} e @param {boolean} mine @param {number} scale */
  entity(e, mine, scale) {
    const ctx = this.ctx;
    const x = e.x / POS_SCALE;
    const y = e.y / POS_SCALE;
    const kind = KINDS[e.kind];
    if (kind === 'asteroid') {
      ctx.strokeStyle = '#94a3b8';
      ctx.lineWidth = 2 / scale;
      ctx.beginPath();
      ctx.arc(x, y, ASTEROID_RADIUS[e.var] ?? 20, 0, Math.PI * 2);
      ctx.stroke();
    } else if (kind === 'bullet') {
      ctx.fillStyle = '#fde68a';
      ctx.fillRect(x - 2, y - 2, 4, 4);
    } else if (kind === 'pickup') {
      ctx.fillStyle = PICKUP_COLORS[e.var] ?? '#fff';
      ctx.beginPath();
      ctx.arc(x, y, 10, 0, Math.PI * 2);
      ctx.fill();
    } else if (kind === 'ship' && !(e.flags & FLAG.DEAD)) {
      const a = (e.angle / 65536) * Math.PI * 2;
      ctx.save();
      ctx.translate(x, y);
      ctx.rotate(a);
      ctx.fillStyle = shipColor(e.id);
      ctx.beginPath();
      ctx.moveTo(22, 0);
      ctx.lineTo(-14, 12);
      ctx.lineTo(-8, 0);
      ctx.lineTo(-14, -12);
      ctx.closePath();
      ctx.fill();
      if (e.flags & FLAG.THRUST) {
        ctx.fillStyle = e.flags & FLAG.BOOST ? '#f97316' : '#fbbf24';
        ctx.beginPath();
        ctx.moveTo(-10, 5);
        ctx.lineTo(-24 - Math.random() * 8, 0);
        ctx.lineTo(-10, -5);
        ctx.fill();
      }
      if (e.flags & FLAG.SHIELD || mine) {
        ctx.strokeStyle = e.flags & FLAG.SHIELD ? '#38bdf8' : 'rgba(255,255,255,0.35)';
        ctx.lineWidth = 2 / scale;
        ctx.beginPath();
        ctx.arc(0, 0, 28, 0, Math.PI * 2);
        ctx.stroke();
      }
      ctx.restore();
    }
  }
}

/**
 * Kill feed entries from two consecutive snapshots: a ship that just died, credited to the
 * ship in its `owner` field (the last one that hit it).
 * @param {Snapshot | null} before @param {Snapshot} after @returns {{killer: number, victim: number}[]}
 */
export function kills(before, after) {
  if (!before) return [];
  const was = new Map(before.entities.map((e) => [e.id, e]));
  const out = [];
  for (const e of after.entities) {
    const p = was.get(e.id);
    if (e.kind === 0 && p && !(p.flags & FLAG.DEAD) && e.flags & FLAG.DEAD) out.push({ killer: e.owner, victim: e.id });
  }
  return out;
}
