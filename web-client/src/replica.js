// @ts-check
/**
 * @file The browser's replica of a room: rebuilt from frames, proven by checksum after every
 * frame, exactly like game-core's `Replica`. A mismatch is a desync: counted, the state is
 * dropped, and the caller resumes from a keyframe.
 */

import { applyDelta } from './delta.js';
import { checksum } from './snapshot.js';

/** @typedef {import('./snapshot.js').Snapshot} Snapshot */
/** @typedef {import('./codec.js').Frame} Frame */

export class Replica {
  constructor() {
    /** @type {Snapshot | null} the verified state */
    this.state = null;
    /** frames applied and verified */
    this.frames = 0;
    /** checksum mismatches seen */
    this.desyncs = 0;
  }

  /** @returns {number | null} the tick to resume from */
  get tick() {
    return this.state === null ? null : this.state.tick;
  }

  /**
   * Applies a frame; returns the new verified state. Throws when the frame's baseline is not
   * what the replica holds or the delta is malformed (state unchanged), or on a checksum
   * mismatch (state dropped, `desyncs` counted).
   * @param {Frame} frame
   * @returns {Snapshot}
   */
  apply(frame) {
    let next;
    if (frame.base === null) {
      next = applyDelta({ tick: 0, entities: [] }, frame.tick, frame.delta);
    } else if (this.state !== null && this.state.tick === frame.base) {
      next = applyDelta(this.state, frame.tick, frame.delta);
    } else {
      throw new Error(`frame is a delta from tick ${frame.base}, but the replica holds ${this.tick}`);
    }
    const actual = checksum(next.entities);
    if (actual !== frame.checksum) {
      this.state = null;
      this.desyncs++;
      throw new Error(`desync at tick ${frame.tick}: server checksum ${frame.checksum}, replica ${actual}`);
    }
    this.frames++;
    this.state = next;
    return next;
  }

  /** Forgets the state: the next frame must be a keyframe. */
  reset() {
    this.state = null;
  }
}
