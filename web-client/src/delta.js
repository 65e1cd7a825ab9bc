// @ts-check
/**
 * @file Applying a delta to a snapshot — the JavaScript mirror of game-core/src/delta.rs,
 * where the format is documented in full. In short: removed ids, added entities in full, and
 * changed entities as a head byte (id gap in bits 0–1, field mask in bits 2–7) with only the
 * changed fields; positions are residuals from dead reckoning, and every surviving entity
 * without a record moves by its own velocity. A keyframe is a delta from the empty snapshot.
 */

import { Reader, WireError } from './wire.js';

const POS_SMALL = 1 << 2;
const POS_WIDE = 1 << 3;
const VEL = 1 << 4;
const ANGLE = 1 << 5;
const STATUS = 1 << 6;
const META = 1 << 7;
const MIN_FULL_BYTES = 11;

/** @typedef {import('./snapshot.js').Entity} Entity */
/** @typedef {import('./snapshot.js').Snapshot} Snapshot */

/** @param {number} p0 @param {number} v0 @param {number} v1 @param {number} k */
function predict(p0, v0, v1, k) {
  return p0 + Math.floor(((v0 + v1) * k + 16) / 32);
}

/** @param {number} v @param {number} lo @param {number} hi @param {number} id */
function inRange(v, lo, hi, id) {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new WireError(`value for id ${id} out of range`);
  return v;
}

const I32 = [-2147483648, 2147483647];
const I16 = [-32768, 32767];

/** @param {Reader} r @param {number} max @param {number} minItem */
function readCount(r, max, minItem) {
  const n = r.uleb();
  if (n > max || n > Math.floor(r.remaining() / minItem)) throw new WireError(`list of ${n} is larger than possible`);
  return n;
}

/** @param {{last: number}} s @param {number} gap */
function nextId(s, gap) {
  if (gap === 0) throw new WireError('ids not ascending');
  const id = s.last + gap;
  if (id > 0xffff) throw new WireError('id beyond 65535');
  s.last = id;
  return id;
}

/** @param {Reader} r @param {{last: number}} s @returns {Entity} */
function readFull(r, s) {
  const id = nextId(s, r.uleb());
  const kind = r.u8();
  if (kind > 3) throw new WireError(`unknown entity kind ${kind}`);
  return {
    id,
    kind,
    x: inRange(r.sleb(), I32[0], I32[1], id),
    y: inRange(r.sleb(), I32[0], I32[1], id),
    vx: inRange(r.sleb(), I16[0], I16[1], id),
    vy: inRange(r.sleb(), I16[0], I16[1], id),
    angle: inRange(r.uleb(), 0, 0xffff, id),
    hp: r.u8(),
    flags: r.u8(),
    var: r.u8(),
    owner: inRange(r.uleb(), 0, 0xffff, id),
    score: inRange(r.uleb(), 0, 0xffff, id),
  };
}

/**
 * The entity after `k` ticks of dead reckoning with no record.
 * @param {Entity} e @param {number} k @returns {Entity}
 */
function drift(e, k) {
  if (k === 0 || (e.vx === 0 && e.vy === 0)) return e;
  return {
    ...e,
    x: inRange(predict(e.x, e.vx, e.vx, k), I32[0], I32[1], e.id),
    y: inRange(predict(e.y, e.vy, e.vy, k), I32[0], I32[1], e.id),
  };
}

/**
 * Applies a delta payload to `base`, giving the snapshot at `tick`. Throws {@link WireError}
 * on any payload the encoder could not have produced from `base`.
 * @param {Snapshot} base
 * @param {number} tick
 * @param {Uint8Array} payload
 * @returns {Snapshot}
 */
export function applyDelta(base, tick, payload) {
  const r = new Reader(payload);
  const k = tick - base.tick;

  const removed = new Set();
  const rs = { last: -1 };
  for (let i = readCount(r, base.entities.length, 1); i > 0; i--) removed.add(nextId(rs, r.uleb()));

  const added = [];
  const as = { last: -1 };
  for (let i = readCount(r, 65536, MIN_FULL_BYTES); i > 0; i--) added.push(readFull(r, as));

  let changesLeft = readCount(r, base.entities.length, 1);
  const cs = { last: -1 };
  /** @type {{head: number, id: number} | null} */
  let pending = null;
  const peek = () => {
    if (pending === null && changesLeft > 0) {
      changesLeft--;
      const head = r.u8();
      const gap = (head & 3) === 3 ? r.uleb() : (head & 3) + 1;
      pending = { head, id: nextId(cs, gap) };
    }
    return pending;
  };

  /** @type {Entity[]} */
  const kept = [];
  let removedSeen = 0;
  for (const e of base.entities) {
    const gone = removed.has(e.id);
    if (gone) removedSeen++;
    const p = peek();
    if (p !== null && p.id < e.id) throw new WireError(`delta refers to id ${p.id}, which the baseline does not have`);
    if (p !== null && p.id === e.id) {
      if (gone) throw new WireError(`contradictory change for id ${e.id}`);
      pending = null;
      kept.push(applyChange(r, p.head, e, k));
    } else if (!gone) {
      kept.push(drift(e, k));
    }
  }
  if (removedSeen !== removed.size) throw new WireError('delta removes an id the baseline does not have');
  if (peek() !== null) throw new WireError('delta changes an id the baseline does not have');
  if (r.remaining() !== 0) throw new WireError(`${r.remaining()} trailing bytes`);

  // Merge the added entities (ascending) into the kept ones (ascending).
  /** @type {Entity[]} */
  const out = [];
  let i = 0;
  for (const a of added) {
    while (i < kept.length && kept[i].id < a.id) out.push(kept[i++]);
    if (i < kept.length && kept[i].id === a.id) throw new WireError(`delta adds id ${a.id}, which already exists`);
    out.push(a);
  }
  while (i < kept.length) out.push(kept[i++]);
  return { tick, entities: out };
}

/** @param {Reader} r @param {number} head @param {Entity} a @param {number} k @returns {Entity} */
function applyChange(r, head, a, k) {
  const id = a.id;
  if (head & POS_SMALL && head & POS_WIDE) throw new WireError(`contradictory change for id ${id}`);
  let rx = 0;
  let ry = 0;
  if (head & POS_SMALL) {
    const b = r.u8();
    rx = (b & 0x0f) - 8;
    ry = (b >> 4) - 8;
  }
  if (head & POS_WIDE) {
    rx = r.sleb();
    ry = r.sleb();
  }
  const b = { ...a };
  if (head & VEL) {
    b.vx = inRange(a.vx + r.sleb(), I16[0], I16[1], id);
    b.vy = inRange(a.vy + r.sleb(), I16[0], I16[1], id);
  }
  if (head & ANGLE) {
    const d = inRange(r.sleb(), I16[0], I16[1], id);
    b.angle = (a.angle + d + 0x10000) & 0xffff;
  }
  if (head & STATUS) {
    b.hp = r.u8();
    b.flags = r.u8();
    b.var = r.u8();
  }
  if (head & META) {
    b.owner = inRange(r.uleb(), 0, 0xffff, id);
    b.score = inRange(r.uleb(), 0, 0xffff, id);
  }
  b.x = inRange(predict(a.x, a.vx, b.vx, k) + rx, I32[0], I32[1], id);
  b.y = inRange(predict(a.y, a.vy, b.vy, k) + ry, I32[0], I32[1], id);
  return b;
}
