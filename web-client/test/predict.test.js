// Client-side prediction: replaying unacknowledged inputs from the server's state gives the
// same ship as flying them continuously, acknowledged inputs are dropped, and a dead ship is
// not predicted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Predictor } from '../src/predict.js';

const flight = { turn_rate: 240, thrust: 420, reverse_power: 0.5, drag: 0.6, max_speed: 420, boost_multiplier: 1.7 };
const ship = (x, y, vx, vy, angle, flags = 0) => ({ id: 7, kind: 0, x, y, vx, vy, angle, hp: 100, flags, var: 0, owner: 0, score: 0 });

test('reconcile replays what the server has not applied', () => {
  const p = new Predictor(flight, 60);
  p.reconcile(ship(1600, 1600, 0, 0, 0), 0);
  const inputs = Array.from({ length: 10 }, (_, i) => ({ thrust: 127, turn: i < 5 ? 127 : 0, buttons: 0 }));
  inputs.forEach((inp, i) => p.sent(i + 1, inp));
  const continuous = p.view();
  // The server acknowledges the first 4 and reports the state after them, exactly as flown.
  const q = new Predictor(flight, 60);
  q.reconcile(ship(1600, 1600, 0, 0, 0), 0);
  inputs.slice(0, 4).forEach((inp, i) => q.sent(i + 1, inp));
  const b = q.body;
  const server = ship(Math.round(b.x * 16), Math.round(b.y * 16), Math.round((b.vx / 60) * 256), Math.round((b.vy / 60) * 256), Math.round((b.angle / (2 * Math.PI)) * 65536));
  p.reconcile(server, 4);
  assert.equal(p.pending.length, 6);
  const after = p.view();
  assert.ok(Math.hypot(after.x - continuous.x, after.y - continuous.y) < 0.5, 'same place within quantization');
  assert.ok(Math.abs(after.angle - continuous.angle) < 0.01);
  assert.ok(after.x > 100, 'it flew forward');
});

test('a dead ship is drawn from the server, not predicted', () => {
  const p = new Predictor(flight, 60);
  p.reconcile(ship(0, 0, 0, 0, 0, 4), 0);
  assert.equal(p.view(), null);
});

test('turning right decreases the angle (clockwise), as in game-core', () => {
  const p = new Predictor(flight, 60);
  p.reconcile(ship(0, 0, 0, 0, 16384), 0);
  p.sent(1, { thrust: 0, turn: 127, buttons: 0 });
  assert.ok(p.view().angle < Math.PI / 2);
});
