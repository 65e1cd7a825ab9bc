// Browser end-to-end tests: the real server binary, Debian's chromium driven by playwright-core.
// The play page connects over WebSocket and our ship moves when keys are pressed; the spectate
// page follows the match over every fallback with zero desyncs; with WebSocket made to fail,
// the client falls back by itself. Screenshots go to test-artifacts/.
//
// Needs TICKWIRE_SERVER_BIN (scripts/test builds the server and sets it) and CHROMIUM
// (default /usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('..', import.meta.url));
const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
mkdirSync(artifacts, { recursive: true });

/** @type {import('node:child_process').ChildProcess} */
let server;
/** @type {string} */
let base;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  const bin = process.env.TICKWIRE_SERVER_BIN;
  assert.ok(bin, 'set TICKWIRE_SERVER_BIN to the server binary (scripts/test does)');
  server = spawn(bin, ['--listen', '127.0.0.1:0', '--web-root', root], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 15000);
    server.stdout.on('data', (d) => {
      const m = /http:\/\/(\S+)/.exec(String(d));
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    });
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

/** Waits until `window.tickwire` satisfies `pred` (evaluated in the page with `arg`). */
async function until(page, pred, what, ms = 15000, arg = null) {
  await page.waitForFunction(pred, arg, { timeout: ms }).catch((e) => {
    throw new Error(`${what}: ${e.message}`);
  });
}

test('the lobby lists the default room', async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  await page.waitForSelector('#rooms tr');
  assert.match(await page.textContent('#rooms'), /default/);
  await page.screenshot({ path: `${artifacts}/lobby.png` });
  await page.close();
});

test('play over WebSocket: our ship moves when keys are pressed', async () => {
  const page = await browser.newPage({ viewport: { width: 1024, height: 640 } });
  await page.goto(`${base}/play.html?room=default`);
  await until(page, () => window.tickwire?.transport === 'ws' && window.tickwire.entities.some((e) => e.id === window.tickwire.entity), 'joined over ws');
  const start = await page.evaluate(() => window.tickwire.entities.find((e) => e.id === window.tickwire.entity));
  // Record where our ship is drawn on every animation frame while thrusting.
  await page.evaluate(() => {
    window.track = [];
    const rec = () => {
      if (window.tickwire.drawn) window.track.push({ ...window.tickwire.drawn });
      if (window.track.length < 100000) requestAnimationFrame(rec);
    };
    requestAnimationFrame(rec);
  });
  await page.keyboard.down('ArrowUp');
  await page.waitForTimeout(1500);
  await page.keyboard.up('ArrowUp');
  // Predicted and reconciled: the drawn ship only ever moves forward along its path (no
  // rubber-banding back to older server positions), apart from bounces off walls.
  const track = await page.evaluate(() => window.track);
  assert.ok(track.length > 20, `frames drawn: ${track.length}`);
  const first = track[0];
  const last = track[track.length - 1];
  const dir = { x: last.x - first.x, y: last.y - first.y };
  const len = Math.hypot(dir.x, dir.y) || 1;
  let back = 0;
  for (let i = 1; i < track.length; i++) {
    const step = ((track[i].x - track[i - 1].x) * dir.x + (track[i].y - track[i - 1].y) * dir.y) / len;
    back = Math.min(back, step);
  }
  assert.ok(back > -2, `the drawn ship jumped back ${-back} units`);
  const after = await page.evaluate(() => ({ me: window.tickwire.entities.find((e) => e.id === window.tickwire.entity), desyncs: window.tickwire.desyncs, ack: window.tickwire.ack }));
  assert.ok(after.ack > 0, 'inputs acknowledged');
  const moved = Math.hypot(after.me.x - start.x, after.me.y - start.y);
  assert.ok(moved > 16 * 20, `the ship moved ${moved / 16} units under thrust`);
  assert.equal(after.desyncs, 0);
  await page.screenshot({ path: `${artifacts}/play-ws.png` });
  await page.close();
});

for (const transport of ['sse', 'stream', 'longpoll', 'poll', 'ws']) {
  test(`spectate over ${transport} with zero desyncs`, async () => {
    const page = await browser.newPage({ viewport: { width: 800, height: 500 } });
    await page.goto(`${base}/spectate.html?room=default&transport=${transport}`);
    await until(page, (t) => window.tickwire?.transport === t && window.tickwire.tick !== null, `following over ${transport}`, 15000, transport);
    const t0 = await page.evaluate(() => window.tickwire.tick);
    await page.waitForTimeout(2000);
    const s = await page.evaluate(() => ({ tick: window.tickwire.tick, desyncs: window.tickwire.desyncs, n: window.tickwire.entities.length, transport: window.tickwire.transport }));
    assert.equal(s.transport, transport);
    assert.ok(s.tick > t0 + 30, `the match advanced: ${t0} → ${s.tick}`);
    assert.ok(s.n > 10, 'the arena has entities');
    assert.equal(s.desyncs, 0);
    await page.screenshot({ path: `${artifacts}/spectate-${transport}.png` });
    await page.close();
  });
}

test('when WebSocket fails, the client falls back by itself and still plays', async () => {
  const page = await browser.newPage();
  // A proxy that blocks upgrades: every WebSocket fails to open.
  await page.addInitScript(() => {
    window.WebSocket = class extends EventTarget {
      constructor() {
        super();
        this.readyState = 3;
        setTimeout(() => this.onclose?.({ code: 1006, reason: '' }), 10);
      }
      send() {}
      close() {}
    };
    window.WebSocket.OPEN = 1;
  });
  await page.goto(`${base}/play.html?room=default`);
  await until(page, () => window.tickwire?.transport === 'sse' && window.tickwire.tick !== null, 'fell back to sse', 20000);
  await page.keyboard.down('ArrowUp');
  await until(page, () => window.tickwire.ack > 0, 'inputs by POST acknowledged', 10000);
  await page.keyboard.up('ArrowUp');
  assert.equal(await page.evaluate(() => window.tickwire.desyncs), 0);
  await page.screenshot({ path: `${artifacts}/fallback.png` });
  await page.close();
});
