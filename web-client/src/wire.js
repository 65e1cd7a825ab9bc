// @ts-check
/**
 * @file Byte-level reading and writing for tickwire's wire format, mirroring game-core.
 *
 * Two integer encodings appear on the wire:
 * - bincode 2 `config::standard()` varints frame the messages (codec.js): a value below 251 is
 *   one byte; otherwise 251 ‖ u16 LE, 252 ‖ u32 LE or 253 ‖ u64 LE. Signed values are zigzagged.
 * - LEB128 varints (7 bits per byte, low group first) fill the inside of a delta (delta.js).
 *
 * Every read is bounds-checked: running out of bytes throws a {@link WireError}, never reads
 * garbage. Values beyond 2^53 cannot be represented exactly in JavaScript and are refused.
 */

/** Bytes that do not form a valid message or delta. */
export class WireError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'WireError';
  }
}

/** Reads primitives from a byte array, never past its end. */
export class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    /** @type {Uint8Array} */
    this.bytes = bytes;
    /** @type {number} */
    this.pos = 0;
    /** @type {DataView} */
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** @returns {number} bytes not yet read */
  remaining() {
    return this.bytes.length - this.pos;
  }

  /** @param {number} n */
  need(n) {
    if (this.remaining() < n) throw new WireError('truncated');
  }

  /** @returns {number} */
  u8() {
    this.need(1);
    return this.bytes[this.pos++];
  }

  /** @returns {number} */
  i8() {
    const v = this.u8();
    return v > 127 ? v - 256 : v;
  }

  /** @param {number} n @returns {Uint8Array} */
  take(n) {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** bincode unsigned varint. @returns {number} */
  varint() {
    const tag = this.u8();
    if (tag < 251) return tag;
    if (tag === 251) {
      this.need(2);
      const v = this.view.getUint16(this.pos, true);
      this.pos += 2;
      return v;
    }
    if (tag === 252) {
      this.need(4);
      const v = this.view.getUint32(this.pos, true);
      this.pos += 4;
      return v;
    }
    if (tag === 253) {
      this.need(8);
      const v = this.view.getBigUint64(this.pos, true);
      this.pos += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError('integer too large');
      return Number(v);
    }
    throw new WireError(`varint tag ${tag}`);
  }

  /** bincode varint checked against a maximum. @param {number} max @returns {number} */
  varintMax(max) {
    const v = this.varint();
    if (v > max) throw new WireError(`value ${v} above ${max}`);
    return v;
  }

  /** bincode zigzag varint. @returns {number} */
  svarint() {
    const u = this.varint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  /** LEB128 unsigned varint. @returns {number} */
  uleb() {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if (v > Number.MAX_SAFE_INTEGER) throw new WireError('integer too large');
      if ((b & 0x80) === 0) return v;
      scale *= 128;
    }
    throw new WireError('overlong varint');
  }

  /** LEB128 zigzag varint. @returns {number} */
  sleb() {
    const u = this.uleb();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  /** bincode String. @param {number} maxBytes @returns {string} */
  string(maxBytes) {
    const n = this.varintMax(maxBytes);
    return new TextDecoder('utf-8', { fatal: true }).decode(this.take(n));
  }
}

/** Appends primitives to a growing byte buffer. */
export class Writer {
  constructor() {
    /** @type {number[]} */
    this.out = [];
  }

  /** @param {number} v */
  u8(v) {
    this.out.push(v & 0xff);
  }

  /** @param {number} v */
  i8(v) {
    this.out.push(v & 0xff);
  }

  /** bincode unsigned varint (values up to 2^32 − 1). @param {number} v */
  varint(v) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new WireError(`cannot encode ${v}`);
    if (v < 251) this.out.push(v);
    else if (v <= 0xffff) this.out.push(251, v & 0xff, v >>> 8);
    else this.out.push(252, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  }

  /** @param {Uint8Array | number[]} bytes */
  bytes(bytes) {
    for (const b of bytes) this.out.push(b);
  }

  /** bincode String. @param {string} s */
  string(s) {
    const b = new TextEncoder().encode(s);
    this.varint(b.length);
    this.bytes(b);
  }

  /** @returns {Uint8Array} */
  finish() {
    return Uint8Array.from(this.out);
  }
}

/** @param {Uint8Array} bytes @returns {string} lowercase hex */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** @param {string} hex @returns {Uint8Array} */
export function fromHex(hex) {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) throw new WireError('not hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
