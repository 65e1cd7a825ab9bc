// Browser end-to-end tests: the real server binary, Debian's chromium driven by playwright-core.
// The play page connects over WebSocket and our ship moves when keys are pressed; the spectate
// page follows the match over every fallback with zero desyncs; with WebSocket made to fail,
// the client falls back by itself. Chat typed on one play page shows on the others and on
// spectate pages, over WebSocket and the HTTP transports. The dashboard's figures and charts
// move while bots play, over SSE and, with SSE blocked, by polling. Screenshots go to
// test-artifacts/; the dashboard's also to web-client/e2e/artifacts/dashboard.png.
//
// Needs TICKWIRE_SERVER_BIN (scripts/test builds the server and sets it), the bots binary
// (TICKWIRE_BOTS_BIN, default: next to the server binary) and CHROMIUM (default
// /usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('..', import.meta.url));
const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
mkdirSync(artifacts, { recursive: true });
const ownArtifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));
mkdirSync(ownArtifacts, { recursive: true });

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
  // A collision the prediction could not know of (an asteroid or a ship in the way) is an
  // honest correction: one run of backward steps on consecutive drawn frames, as the client
  // smooths the error away over a few frames. Rubber-banding would be a new run every time a
  // frame arrives (about 45 in these 1.5 s).
  const runs = [];
  let inRun = false;
  for (let i = 1; i < track.length; i++) {
    const step = ((track[i].x - track[i - 1].x) * dir.x + (track[i].y - track[i - 1].y) * dir.y) / len;
    const back = step < -2;
    if (back && !inRun) runs.push([]);
    if (back) runs[runs.length - 1].push(-step);
    inRun = back;
  }
  const shown = runs.map((r) => r.map((b) => b.toFixed(1)).join(' ')).join(' | ');
  assert.ok(runs.length <= 2, `the drawn ship jumped back ${runs.length} times (runs of backward steps: ${shown})`);
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

/** Starts the bots load tool against the server; resolves when it exits. */
function runBots(args) {
  const bin = process.env.TICKWIRE_BOTS_BIN || join(dirname(process.env.TICKWIRE_SERVER_BIN ?? ''), 'bots');
  assert.ok(existsSync(bin), `no bots binary at ${bin}: build it (cargo build -p bots) or set TICKWIRE_BOTS_BIN`);
  const child = spawn(bin, ['--url', base, '--quiet', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited };
}

test('the dashboard renders and its figures and charts move while bots play', async () => {
  // Players and spectators over every transport, in the default room.
  const bots = runBots(['--room', 'default', '--players', '4', '--spectators', '3', '--transport', 'mix', '--duration', '12', '--drain', '1']);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    await page.goto(`${base}/dashboard`);
    await until(page, () => window.dashboard?.transport === 'sse', 'the dashboard follows the stats stream');
    const first = await page.evaluate(() => window.dashboard.latest.seq);
    // Figures that move: frames, bytes and inputs going out while the bots play, seen in two
    // fresh samples, and every chart with a line of at least two points.
    await until(
      page,
      (seq) => {
        const d = window.dashboard;
        const recent = d.history.filter((f) => f.seq > seq && f.frames_per_sec.total > 0 && f.inputs_per_sec > 0);
        return recent.length >= 2 && d.latest.connections.total.player >= 1 && d.charts.every((c) => c.points >= 2);
      },
      'frames/s > 0 over two samples and every chart drawn',
      20000,
      first,
    );
    const d = await page.evaluate(() => ({ latest: window.dashboard.latest, charts: window.dashboard.charts, seqs: window.dashboard.history.map((f) => f.seq) }));
    assert.ok(d.latest.seq > first, `samples arrive: ${first} → ${d.latest.seq}`);
    assert.ok(d.seqs.every((s, i) => i === 0 || s > d.seqs[i - 1]), 'the history is in order');
    assert.ok(d.latest.tick.p99_us > 0, 'tick p99');
    const transports = ['ws', 'sse', 'stream', 'longpoll', 'poll'].filter((t) => d.latest.connections[t].player + d.latest.connections[t].spectator > 0);
    assert.ok(transports.length >= 3, `clients over several transports: ${transports}`);
    // What a person sees: the numbers, a room row, and lines on the canvases.
    const tiles = await page.$$eval('.tile', (ts) => Object.fromEntries(ts.map((t) => [t.querySelector('span')?.textContent, t.querySelector('b')?.textContent])));
    assert.notEqual(tiles['frames /s'], '0');
    assert.notEqual(tiles['frames /s'], '–');
    assert.match(tiles['RSS'] ?? '', /MiB/);
    assert.match(await page.textContent('#rooms'), /default/);
    assert.match(await page.textContent('#transport'), /sse/);
    const inked = await page.$$eval('.chart canvas', (cs) =>
      cs.map((c) => {
        const ctx = c.getContext('2d');
        if (!ctx) return 0;
        const px = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
        return n;
      }),
    );
    assert.ok(inked.every((n) => n > 200), `every canvas has a chart drawn: ${inked}`);
    const shot = join(ownArtifacts, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    await page.screenshot({ path: `${artifacts}/dashboard.png`, fullPage: true });
    console.log(`dashboard screenshot: ${shot}`);
    await page.close();
  } finally {
    bots.child.kill('SIGINT');
    await bots.exited;
  }
});

test('with SSE blocked the dashboard polls /api/stats and says so', async () => {
  const page = await browser.newPage();
  // A proxy that refuses event streams: every EventSource fails at once.
  await page.addInitScript(() => {
    window.EventSource = class extends EventTarget {
      constructor() {
        super();
        setTimeout(() => this.onerror?.(new Event('error')), 10);
      }
      close() {}
    };
  });
  await page.goto(`${base}/dashboard`);
  await until(page, () => window.dashboard?.transport === 'poll', 'fell back to polling');
  const first = await page.evaluate(() => window.dashboard.latest.seq);
  await until(page, (seq) => window.dashboard.latest.seq >= seq + 2 && window.dashboard.charts.every((c) => c.points >= 2), 'samples keep coming by polling', 10000, first);
  assert.match(await page.textContent('#transport'), /poll/);
  assert.match(await page.textContent('#status'), /polling/);
  await page.screenshot({ path: `${artifacts}/dashboard-poll.png` });
  await page.close();
});

/** Types a line into a play page's chat box and presses Enter. */
async function say(page, text) {
  await page.focus('#chat-input');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

/** Waits until a page's chat list shows `text`. */
async function sees(page, text, who) {
  await page.waitForFunction((t) => [...document.querySelectorAll('#chat-log li')].some((li) => li.textContent?.includes(t)), text, { timeout: 10000 }).catch((e) => {
    throw new Error(`${who} never showed ${JSON.stringify(text)}: ${e.message}`);
  });
}

test('chat typed on one play page shows on the others and on spectate pages, over every transport', async () => {
  const room = `chat-${Date.now() % 100000}`;
  const made = await fetch(`${base}/api/rooms`, { method: 'POST', body: JSON.stringify({ id: room }) });
  assert.equal(made.status, 201);
  const open = async (path, ready) => {
    const page = await browser.newPage({ viewport: { width: 720, height: 480 } });
    await page.goto(`${base}${path}`);
    await until(page, ready, `${path} connected`, 20000);
    return page;
  };
  const ana = await open(`/play.html?room=${room}&name=ana`, () => window.tickwire?.transport === 'ws' && window.tickwire.tick !== null);
  // A player behind a proxy without WebSocket: SSE down, chat up by POST.
  const bo = await open(`/play.html?room=${room}&name=bo&transport=sse`, () => window.tickwire?.transport === 'sse' && window.tickwire.tick !== null);
  const watchWs = await open(`/spectate.html?room=${room}`, () => window.tickwire?.transport === 'ws' && window.tickwire.tick !== null);
  // Long polling: chat lines arrive as records before the frame in a poll answer.
  const watchPoll = await open(`/spectate.html?room=${room}&transport=longpoll`, () => window.tickwire?.transport === 'longpoll' && window.tickwire.tick !== null);
  const watchStream = await open(`/spectate.html?room=${room}&transport=stream`, () => window.tickwire?.transport === 'stream' && window.tickwire.tick !== null);
  const everyone = { ana, bo, watchWs, watchPoll, watchStream };

  await say(ana, 'hello from ws');
  for (const [who, page] of Object.entries(everyone)) await sees(page, 'ana:hello from ws', who);
  await say(bo, 'hello by post');
  for (const [who, page] of Object.entries(everyone)) await sees(page, 'bo:hello by post', who);

  // Markup is shown as text, never made into elements.
  const markup = '<b>bold</b><img src=x onerror="window.pwned=1">';
  await say(ana, markup);
  for (const [who, page] of Object.entries(everyone)) {
    await sees(page, markup, who);
    assert.equal(await page.$$eval('#chat-log b, #chat-log img', (els) => els.length), 0, `${who}: no markup`);
    assert.equal(await page.evaluate(() => window.pwned), undefined, who);
  }

  // Over the rate (5 lines per 10 s): the server tells ana alone, as a notice. Sent from the
  // page in one go, so the allowance cannot refill in between however slow the machine is.
  await ana.evaluate(() => {
    const input = /** @type {HTMLInputElement} */ (document.querySelector('#chat-input'));
    const form = /** @type {HTMLFormElement} */ (document.querySelector('#chat-form'));
    for (let i = 0; i < 12; i++) {
      input.value = `spam ${i}`;
      form.requestSubmit();
    }
  });
  await ana.waitForSelector('#chat-log li.notice', { timeout: 10000 });
  assert.match(await ana.textContent('#chat-log li.notice'), /server:/);
  await sees(watchWs, 'ana:spam 0', 'watchWs');
  for (const [who, page] of Object.entries({ bo, watchWs, watchPoll, watchStream })) {
    assert.equal(await page.$$eval('#chat-log li.notice', (els) => els.length), 0, `${who} got no private notice`);
  }
  // What each page shows, in order, is the same conversation.
  const lines = async (page) => (await page.evaluate(() => window.tickwire.chat.filter((l) => l.from !== 0).map((l) => `${l.name}:${l.text}`)));
  const ref = await lines(watchWs);
  assert.ok(ref.length >= 4, `lines: ${ref}`);
  for (const [who, page] of Object.entries(everyone)) {
    const got = await lines(page);
    assert.deepEqual(got.slice(0, 3), ref.slice(0, 3), `${who}: same lines in the same order, none twice`);
  }
  await ana.screenshot({ path: `${artifacts}/chat-play.png` });
  await watchPoll.screenshot({ path: `${artifacts}/chat-spectate.png` });

  // Spectators have no chat box; a newcomer gets the last lines before its first frame.
  assert.equal(await watchWs.$$eval('#chat-input', (els) => els.length), 0);
  const late = await open(`/spectate.html?room=${room}&transport=poll`, () => window.tickwire?.transport === 'poll' && window.tickwire.tick !== null);
  await sees(late, 'spam', 'a late spectator');
  assert.ok((await lines(late)).length <= 10, 'the backlog is the last 10 lines');
  for (const page of [...Object.values(everyone), late]) await page.close();
});
