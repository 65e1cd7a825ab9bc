// @ts-check
/**
 * @file Snapshots as game-core quantizes them, and their checksum (MurmurHash3 x86_32 over six
 * words per entity, seeded with the entity count) — the same function as
 * `Snapshot::checksum` in game-core/src/snapshot.rs.
 */

/** Grid steps per world unit. */
export const POS_SCALE = 16;
/** Velocity steps per world unit per tick. */
export const VEL_SCALE = 256;
/** Entity kinds by wire value. */
export const KINDS = ['ship', 'bullet', 'asteroid', 'pickup'];
/** Flag bits. */
export const FLAG = { THRUST: 1, BOOST: 2, DEAD: 4, SHIELD: 8, AI: 16 };

/**
 * One entity: quantized integers, as on the wire.
 * @typedef {{id: number, kind: number, x: number, y: number, vx: number, vy: number,
 *   angle: number, hp: number, flags: number, var: number, owner: number, score: number}} Entity
 * @typedef {{tick: number, entities: Entity[]}} Snapshot
 */

/** @param {number} h @param {number} k @returns {number} */
function mix(h, k) {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * The checksum of a snapshot's entities (sorted by id).
 * @param {Entity[]} entities
 * @returns {number} unsigned 32-bit
 */
export function checksum(entities) {
  let h = entities.length | 0;
  for (const e of entities) {
    h = mix(h, (e.id | (e.kind << 16) | (e.hp << 24)) | 0);
    h = mix(h, e.x | 0);
    h = mix(h, e.y | 0);
    h = mix(h, (e.vx & 0xffff) | ((e.vy & 0xffff) << 16));
    h = mix(h, e.angle | (e.flags << 16) | (e.var << 24));
    h = mix(h, e.owner | (e.score << 16));
  }
  h ^= (entities.length * 24) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
