// @ts-check
/**
 * @file The tickwire protocol in JavaScript: ClientMsg encoding and ServerMsg decoding,
 * byte for byte what game-core's codec (bincode 2, `config::standard()`) writes and reads.
 * Held to it by the golden vectors in test/vectors/vectors.json.
 *
 * Messages are plain objects tagged by `type`, with game-core's field names:
 * `{type: 'Hello', version, name, token, last_tick}`, `{type: 'Input', seq, input: {thrust,
 * turn, buttons}}`, `{type: 'Frame', tick, base, checksum, ack, delta}` and so on. Tokens are
 * 32 lowercase hex digits; `delta` is a Uint8Array.
 */

import { Reader, Writer, WireError, toHex, fromHex } from './wire.js';

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;
/** Largest server message accepted, in bytes (game-core `SERVER_MSG_LIMIT`). */
export const SERVER_MSG_LIMIT = 4 << 20;
/** Longest player name, in characters. */
export const MAX_NAME_CHARS = 24;
/** Longest chat line, in characters. */
export const MAX_CHAT_CHARS = 200;

const CLIENT_VARIANTS = ['Hello', 'Input', 'Ping', 'Pong', 'Chat', 'Leave'];
const SERVER_VARIANTS = ['Welcome', 'Frame', 'Pong', 'Ping', 'Chat', 'Close'];

/**
 * @typedef {{thrust: number, turn: number, buttons: number}} Input
 * @typedef {{type: 'Hello', version: number, name: string, token: string|null, last_tick: number|null}
 *   | {type: 'Input', seq: number, input: Input}
 *   | {type: 'Ping', id: number} | {type: 'Pong', id: number}
 *   | {type: 'Chat', text: string} | {type: 'Leave'}} ClientMsg
 * @typedef {{width: number, height: number, obstacles: number[][]}} ArenaInfo
 * @typedef {{type: 'Frame', tick: number, base: number|null, checksum: number, ack: number, delta: Uint8Array}} Frame
 * @typedef {{type: 'Welcome', version: number, room: string, entity: number, token: string|null,
 *   tick_rate: number, send_rate: number, tick: number, arena: ArenaInfo}
 *   | Frame
 *   | {type: 'Pong', id: number, tick: number} | {type: 'Ping', id: number}
 *   | {type: 'Chat', from: number, name: string, text: string}
 *   | {type: 'Close', code: number, reason: string}} ServerMsg
 */

/** @param {Writer} w @param {string|null} token */
function writeToken(w, token) {
  if (token === null) {
    w.u8(0);
    return;
  }
  const bytes = fromHex(token);
  if (bytes.length !== 16) throw new WireError('a token is 16 bytes');
  w.u8(1);
  w.bytes(bytes);
}

/** @param {Writer} w @param {number} v */
function writeI8(w, v) {
  if (!Number.isInteger(v) || v < -128 || v > 127) throw new WireError(`${v} is not an i8`);
  w.i8(v);
}

/**
 * Encodes a client message.
 * @param {ClientMsg} msg
 * @returns {Uint8Array}
 */
export function encodeClient(msg) {
  const w = new Writer();
  w.varint(CLIENT_VARIANTS.indexOf(msg.type));
  switch (msg.type) {
    case 'Hello':
      w.varint(msg.version);
      w.string(msg.name);
      writeToken(w, msg.token);
      if (msg.last_tick === null) w.u8(0);
      else {
        w.u8(1);
        w.varint(msg.last_tick);
      }
      break;
    case 'Input':
      w.varint(msg.seq);
      writeI8(w, msg.input.thrust);
      writeI8(w, msg.input.turn);
      w.u8(msg.input.buttons);
      break;
    case 'Ping':
    case 'Pong':
      w.varint(msg.id);
      break;
    case 'Chat':
      w.string(msg.text);
      break;
    case 'Leave':
      break;
    default:
      throw new WireError('unknown client message');
  }
  return w.finish();
}

/** @param {Reader} r @returns {string|null} */
function readToken(r) {
  const tag = r.u8();
  if (tag === 0) return null;
  if (tag !== 1) throw new WireError('bad option tag');
  return toHex(r.take(16));
}

/** @param {Reader} r @returns {number|null} */
function readOptU32(r) {
  const tag = r.u8();
  if (tag === 0) return null;
  if (tag !== 1) throw new WireError('bad option tag');
  return r.varintMax(0xffffffff);
}

const U16 = 0xffff;
const U32 = 0xffffffff;

/**
 * Decodes an untrusted server message. Throws {@link WireError} on anything malformed,
 * oversized or followed by trailing bytes.
 * @param {Uint8Array} bytes
 * @returns {ServerMsg}
 */
export function decodeServer(bytes) {
  if (bytes.length > SERVER_MSG_LIMIT) throw new WireError('message too large');
  const r = new Reader(bytes);
  const variant = r.varint();
  /** @type {ServerMsg} */
  let msg;
  switch (SERVER_VARIANTS[variant]) {
    case 'Welcome': {
      const version = r.varintMax(U16);
      const room = r.string(256);
      const entity = r.varintMax(U16);
      const token = readToken(r);
      const tick_rate = r.varintMax(U16);
      const send_rate = r.varintMax(U16);
      const tick = r.varintMax(U32);
      const width = r.varintMax(U32);
      const height = r.varintMax(U32);
      const n = r.varintMax(r.remaining());
      const obstacles = [];
      for (let i = 0; i < n; i++) obstacles.push([r.svarint(), r.svarint(), r.varintMax(U32)]);
      msg = { type: 'Welcome', version, room, entity, token, tick_rate, send_rate, tick, arena: { width, height, obstacles } };
      break;
    }
    case 'Frame': {
      const tick = r.varintMax(U32);
      const base = readOptU32(r);
      const checksum = r.varintMax(U32);
      const ack = r.varintMax(U32);
      const delta = r.take(r.varintMax(r.remaining()));
      msg = { type: 'Frame', tick, base, checksum, ack, delta };
      break;
    }
    case 'Pong':
      msg = { type: 'Pong', id: r.varintMax(U32), tick: r.varintMax(U32) };
      break;
    case 'Ping':
      msg = { type: 'Ping', id: r.varintMax(U32) };
      break;
    case 'Chat':
      msg = { type: 'Chat', from: r.varintMax(U16), name: r.string(4 * MAX_NAME_CHARS), text: r.string(4 * MAX_CHAT_CHARS) };
      break;
    case 'Close':
      msg = { type: 'Close', code: r.varintMax(U16), reason: r.string(123) };
      break;
    default:
      throw new WireError(`unknown server message ${variant}`);
  }
  if (r.remaining() !== 0) throw new WireError(`${r.remaining()} trailing bytes`);
  return msg;
}
