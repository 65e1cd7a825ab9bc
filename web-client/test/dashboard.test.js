// The dashboard's pure parts: the chart history (one sample per seq, capped, restarts), the
// chart geometry and labels, and that drawing a chart draws a line through every sample.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { History, CHARTS, TILES } from '../src/dashboard.js';
import { niceMax, plot, format, drawChart } from '../src/chart.js';

/** A server sample as `GET /api/stats` gives it (see server/src/stats.rs). */
function sample(seq, over = {}) {
  const per = (v) => ({ ws: v, sse: 0, stream: 0, longpoll: 0, poll: 0, total: v });
  const role = (p, s) => ({ player: p, spectator: s });
  return {
    seq,
    time_ms: 1_700_000_000_000 + seq * 1000,
    interval_secs: 1,
    tick: { per_sec: 60, p50_us: 250, p99_us: 1000, mean_us: 200, overruns_per_sec: 0, overruns_total: 0 },
    dropped_ticks_per_sec: 0,
    connections: { ws: role(2, 1), sse: role(0, 3), stream: role(0, 0), longpoll: role(0, 0), poll: role(0, 0), total: role(2, 4) },
    frames_per_sec: per(90),
    bytes_per_sec: per(12345),
    inputs_per_sec: 120,
    rejections_per_sec: 0,
    rejections_total: 0,
    cpu_percent: 3.5,
    rss_bytes: 20 << 20,
    rooms_open: 1,
    room_panics: 0,
    rejections: { bad_token: 0 },
    rooms: [],
    ...over,
  };
}

test('the history keeps one sample per seq, the last 300, and starts over after a restart', () => {
  const h = new History(300);
  h.reset(Array.from({ length: 400 }, (_, i) => sample(i)));
  assert.equal(h.samples.length, 300);
  assert.equal(h.samples[0].seq, 100);
  assert.equal(h.push(sample(399)), false, 'the stats event that repeats the history');
  assert.equal(h.push(sample(400)), true);
  assert.equal(h.samples.length, 300);
  assert.equal(h.samples[299].seq, 400);
  assert.equal(h.samples[0].seq, 101);
  // A smaller seq: the server restarted.
  assert.equal(h.push(sample(0)), true);
  assert.deepEqual(h.samples.map((s) => s.seq), [0]);
});

test('axis maxima are round numbers at or above the data', () => {
  const cases = [[0, 1], [-3, 1], [NaN, 1], [0.7, 1], [1, 1], [1.2, 2], [2.2, 2.5], [3, 5], [7, 10], [90, 100], [101, 200], [12345, 20000], [250, 250]];
  for (const [v, want] of cases) assert.equal(niceMax(v), want, `niceMax(${v})`);
});

test('points spread over time and scale to the box; gaps stay gaps', () => {
  const box = { t0: 1000, t1: 3000, max: 100, width: 200, height: 50 };
  const pts = plot([0, 50, null, 100, 150], [1000, 2000, 2500, 3000, 3000], box);
  assert.deepEqual(pts, [{ x: 0, y: 50 }, { x: 100, y: 25 }, null, { x: 200, y: 0 }, { x: 200, y: 0 }]);
});

test('numbers read well', () => {
  assert.equal(format(null), '–');
  assert.equal(format(12), '12');
  assert.equal(format(2.345), '2.3');
  assert.equal(format(45678), '45.7k');
  assert.equal(format(3_400_000), '3.4M');
  assert.equal(format(512, 'bytes'), '512 B');
  assert.equal(format(1536, 'bytes'), '1.5 KiB');
  assert.equal(format(20 << 20, 'bytes'), '20.0 MiB');
  assert.equal(format(250, 'us'), '250 µs');
  assert.equal(format(16667, 'us'), '17 ms');
  assert.equal(format(3.456, '%'), '3.5 %');
});

/** A canvas context that records the lines drawn. */
function recorder() {
  const calls = [];
  const ctx = new Proxy(
    { measureText: (t) => ({ width: t.length * 5 }) },
    {
      get(target, key) {
        if (key in target) return target[key];
        return (...args) => calls.push([key, ...args]);
      },
      set(target, key, value) {
        target[key] = value;
        return true;
      },
    },
  );
  return { ctx, calls };
}

test('every chart draws a line through every sample and a legend with the latest value', () => {
  const samples = Array.from({ length: 5 }, (_, i) => sample(i, { frames_per_sec: { ws: i * 10, sse: 0, stream: 0, longpoll: 0, poll: 0, total: i * 10 } }));
  for (const spec of CHARTS) {
    const { ctx, calls } = recorder();
    drawChart(ctx, { width: 300, height: 120, window: 300_000, unit: spec.unit, time: (f) => f.time_ms, series: spec.series }, samples);
    // Per series: one moveTo and a lineTo per further sample (the three grid lines add a pair each).
    const lineTos = calls.filter((c) => c[0] === 'lineTo').length;
    assert.equal(lineTos, 3 + spec.series.length * (samples.length - 1), spec.title);
    const legend = calls.filter((c) => c[0] === 'fillText').map((c) => c[1]);
    for (const s of spec.series) assert.ok(legend.some((t) => t.startsWith(`${s.label} `)), `${spec.title}: legend ${s.label}`);
  }
  const frames = CHARTS.find((c) => c.title === 'frames /s');
  const { ctx, calls } = recorder();
  drawChart(ctx, { width: 300, height: 120, window: 300_000, time: (f) => f.time_ms, series: frames.series }, samples);
  assert.ok(calls.some((c) => c[0] === 'fillText' && c[1] === 'total 40'), 'the legend shows the latest total');
});

test('the headline numbers read from a sample', () => {
  const s = sample(3);
  const text = Object.fromEntries(TILES.map(([label, f]) => [label, f(s)]));
  assert.equal(text.players, '2');
  assert.equal(text.spectators, '4');
  assert.equal(text['frames /s'], '90');
  assert.equal(text['bytes /s'], '12.1 KiB');
  assert.equal(text['tick p50 / p99'], '250 µs / 1.0 ms');
  assert.equal(text.CPU, '3.5 %');
});
