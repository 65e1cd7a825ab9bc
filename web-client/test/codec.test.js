// The JavaScript codec, delta decoder, checksum and replica against game-core's golden vectors:
// the same values must have exactly the same bytes on both sides of the wire.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { encodeClient, decodeServer } from '../src/codec.js';
import { applyDelta } from '../src/delta.js';
import { checksum } from '../src/snapshot.js';
import { Replica } from '../src/replica.js';
import { WireError, fromHex, toHex } from '../src/wire.js';

const vectors = JSON.parse(readFileSync(new URL('./vectors/vectors.json', import.meta.url), 'utf8'));
const stream = JSON.parse(readFileSync(new URL('./vectors/stream.json', import.meta.url), 'utf8'));

const ofType = (t) => vectors.vectors.filter((v) => v.type === t);

test('vectors cover every message and several deltas', () => {
  assert.equal(vectors.protocol_version, 1);
  assert.ok(ofType('client').length >= 6);
  assert.ok(ofType('server').length >= 6);
  assert.ok(ofType('delta').length >= 4);
});

for (const v of ofType('client')) {
  test(`client message encodes exactly: ${v.name}`, () => {
    assert.equal(toHex(encodeClient(v.value)), v.hex);
  });
}

for (const v of ofType('server')) {
  test(`server message decodes exactly: ${v.name}`, () => {
    const msg = decodeServer(fromHex(v.hex));
    const plain = msg.type === 'Frame' ? { ...msg, delta: toHex(msg.delta) } : msg;
    assert.deepEqual(plain, v.value);
  });
}

for (const v of ofType('delta')) {
  test(`delta applies exactly and the checksum matches: ${v.name}`, () => {
    const out = applyDelta(v.base, v.target.tick, fromHex(v.hex));
    assert.deepEqual(out, v.target);
    assert.equal(checksum(out.entities), v.checksum);
  });
}

test('malformed server bytes are typed errors, never garbage', () => {
  const frame = fromHex(ofType('server').find((v) => v.name === 'frame delta').hex);
  for (let cut = 0; cut < frame.length; cut++) {
    assert.throws(() => decodeServer(frame.subarray(0, cut)), WireError, `cut at ${cut}`);
  }
  assert.throws(() => decodeServer(Uint8Array.from([...frame, 0])), /trailing/);
  assert.throws(() => decodeServer(Uint8Array.from([9])), /unknown server message/);
  // A string length that claims more bytes than there are.
  assert.throws(() => decodeServer(Uint8Array.from([5, 232, 3, 100, 65])), WireError);
});

test('malformed deltas are refused', () => {
  const base = { tick: 5, entities: [{ id: 1, kind: 0, x: 0, y: 0, vx: 0, vy: 0, angle: 0, hp: 0, flags: 0, var: 0, owner: 0, score: 0 }] };
  const cases = [
    [],
    [0, 0, 0, 0],
    [2, 1, 1, 0, 0],
    [1, 3, 0, 0],
    [0, 0, 1, 0b0000_1101, 0, 0, 0],
    [0, 0, 1, 0b0000_0011, 0],
    [0, 0, 1, 0b0001_0001, 0x80, 0x80, 0x04, 0],
  ];
  for (const c of cases) assert.throws(() => applyDelta(base, 6, Uint8Array.from(c)), WireError, JSON.stringify(c));
  // Random bytes: an error or a sorted snapshot, never an exception of another kind.
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
  for (let i = 0; i < 2000; i++) {
    const bytes = Uint8Array.from({ length: 1 + (rand() % 40) }, rand);
    try {
      const s = applyDelta(base, 6, bytes);
      for (let j = 1; j < s.entities.length; j++) assert.ok(s.entities[j - 1].id < s.entities[j].id);
    } catch (e) {
      assert.ok(e instanceof WireError, String(e));
    }
  }
});

test('a replica follows a recorded match with zero desyncs', () => {
  const replica = new Replica();
  for (const hex of stream.frames) {
    const msg = decodeServer(fromHex(hex));
    assert.equal(msg.type, 'Frame');
    replica.apply(msg);
  }
  assert.equal(replica.frames, stream.frames.length);
  assert.equal(replica.desyncs, 0);
  assert.deepEqual(replica.state, stream.final);
});

test('a replica reports a desync and drops its state', () => {
  const replica = new Replica();
  const frames = stream.frames.map((h) => decodeServer(fromHex(h)));
  replica.apply(frames[0]);
  assert.throws(() => replica.apply({ ...frames[1], checksum: (frames[1].checksum + 1) >>> 0 }), /desync/);
  assert.equal(replica.desyncs, 1);
  assert.equal(replica.state, null);
  assert.throws(() => replica.apply(frames[2]), /replica holds null/);
  replica.apply(frames[0]);
  assert.equal(replica.tick, frames[0].tick);
});
