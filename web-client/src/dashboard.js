// @ts-check
/**
 * @file The live operations dashboard (`/dashboard`): the server's figures once a second from
 * the stats stream (`GET /api/stats/sse`), as numbers, small line charts of the last five
 * minutes and a table per room. When SSE is blocked or buffered (no event within a few
 * seconds) it falls back, like the game client, to polling `GET /api/stats` once a second,
 * and says which one it uses. `?transport=sse|poll` forces one.
 *
 * Exposes `window.dashboard` = `{ transport, latest, history, charts }` for tests and the
 * console. Every value from the server is written as text, never as markup.
 */

import { drawChart, format } from './chart.js';

/**
 * @template T
 * @typedef {{ws: T, sse: T, stream: T, longpoll: T, poll: T, total: T}} PerTransport
 */
/**
 * @typedef {{player: number, spectator: number}} ByRole
 * @typedef {{per_sec: number, p50_us: number | null, p99_us: number | null, mean_us: number | null,
 *   overruns_per_sec: number, overruns_total: number}} TickFigures
 * @typedef {{seq: number, time_ms: number, interval_secs: number, tick: TickFigures,
 *   dropped_ticks_per_sec: number, connections: PerTransport<ByRole>,
 *   frames_per_sec: PerTransport<number>, bytes_per_sec: PerTransport<number>,
 *   inputs_per_sec: number, rejections_per_sec: number, rejections_total: number,
 *   cpu_percent: number | null, rss_bytes: number | null, rooms_open: number,
 *   room_panics: number}} Figures
 * @typedef {{id: string, players: number, ai_ships: number, spectators: number, tick: number,
 *   ticks: TickFigures}} RoomFigures
 * @typedef {Figures & {rejections: Record<string, number>, rooms: RoomFigures[]}} Sample
 * @typedef {'sse' | 'poll'} FeedTransport
 */

/** Samples the charts keep: five minutes at one a second, as the server does. */
export const HISTORY = 300;
/** The charts' time axis at its longest and shortest, milliseconds. */
const WINDOW_MS = HISTORY * 1000;
const MIN_WINDOW_MS = 60_000;
/** An SSE stream must deliver a sample this soon, or it counts as blocked. */
const STALL_MS = 4000;
/** The transports, in the server's order, with their colours on every chart. */
const TRANSPORTS = /** @type {const} */ (['ws', 'sse', 'stream', 'longpoll', 'poll']);
const COLORS = { ws: '#38bdf8', sse: '#a3e635', stream: '#f472b6', longpoll: '#fbbf24', poll: '#c084fc', total: '#e2e8f0' };

/** The samples the charts draw: oldest first, one per `seq`, at most `cap`. */
export class History {
  constructor(cap = HISTORY) {
    this.cap = cap;
    /** @type {Figures[]} */
    this.samples = [];
  }

  /** Replaces every sample (a `history` event, or `?history=1`). @param {Figures[]} list */
  reset(list) {
    this.samples = list.slice(-this.cap);
  }

  /**
   * Adds a sample. A repeat of the last one is ignored; an older `seq` means the server
   * restarted, so the history starts over. Returns whether it was added.
   * @param {Figures} f
   */
  push(f) {
    const last = this.samples[this.samples.length - 1];
    if (last && f.seq === last.seq) return false;
    if (last && f.seq < last.seq) this.samples = [];
    this.samples.push(f);
    if (this.samples.length > this.cap) this.samples.splice(0, this.samples.length - this.cap);
    return true;
  }
}

/**
 * Gets samples over SSE, or by polling when SSE fails or stalls; reconnects with backoff.
 */
export class Feed {
  /**
   * @param {{transport?: FeedTransport | null, onHistory: (h: Figures[]) => void,
   *   onSample: (s: Sample) => void, onStatus: (t: FeedTransport | null, text: string) => void}} opts
   */
  constructor(opts) {
    this.opts = opts;
    /** @type {FeedTransport | null} */
    this.transport = null;
    this.closed = false;
    /** @type {(() => void) | null} */
    this.stop = null;
  }

  /** Runs until closed: the forced transport, or SSE and then polling. */
  async start() {
    /** @type {FeedTransport[]} */
    const order = this.opts.transport ? [this.opts.transport] : ['sse', 'poll'];
    let i = 0;
    let failures = 0;
    while (!this.closed) {
      const t = order[Math.min(i, order.length - 1)];
      this.opts.onStatus(null, `connecting over ${t}…`);
      let delivered = false;
      try {
        delivered = await (t === 'sse' ? this.runSse() : this.runPoll());
      } catch (e) {
        this.opts.onStatus(null, `${t}: ${e instanceof Error ? e.message : e}`);
      }
      if (this.closed) return;
      if (delivered) failures = 0;
      else {
        i++;
        failures++;
      }
      const delay = Math.min(5000, 250 * 2 ** Math.min(failures, 5)) * (0.5 + Math.random());
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** @param {FeedTransport} t */
  delivered(t) {
    if (this.transport !== t) {
      this.transport = t;
      this.opts.onStatus(t, t === 'sse' ? 'live over SSE' : 'polling /api/stats every second (SSE unavailable)');
    }
  }

  /** The stats stream, until it fails. Resolves whether it delivered a sample. @returns {Promise<boolean>} */
  runSse() {
    return new Promise((resolve, reject) => {
      const es = new EventSource('/api/stats/sse');
      let samples = 0;
      /** @param {Error | null} err */
      const finish = (err) => {
        clearTimeout(stall);
        es.close();
        if (err && samples === 0) reject(err);
        else resolve(samples > 0);
      };
      const stall = setTimeout(() => samples === 0 && finish(new Error('no sample (a proxy that buffers?)')), STALL_MS);
      this.stop = () => finish(null);
      es.addEventListener('history', (ev) => {
        try {
          this.opts.onHistory(JSON.parse(ev.data));
        } catch (e) {
          finish(e instanceof Error ? e : new Error(String(e)));
        }
      });
      es.addEventListener('stats', (ev) => {
        try {
          const s = JSON.parse(ev.data);
          samples++;
          this.delivered('sse');
          this.opts.onSample(s);
        } catch (e) {
          finish(e instanceof Error ? e : new Error(String(e)));
        }
      });
      // EventSource would reconnect by itself; we do, on our own terms (and fall back).
      es.onerror = () => finish(new Error('event stream failed'));
    });
  }

  /** Polls once a second, until a request fails. Resolves whether it delivered. @returns {Promise<boolean>} */
  async runPoll() {
    let stopped = false;
    const ctl = new AbortController();
    this.stop = () => {
      stopped = true;
      ctl.abort();
    };
    let samples = 0;
    let path = '/api/stats?history=1';
    try {
      while (!stopped && !this.closed) {
        const started = performance.now();
        const res = await fetch(path, { signal: ctl.signal, cache: 'no-store' });
        if (!res.ok) throw new Error(`GET /api/stats: ${res.status}`);
        const s = await res.json();
        if (Array.isArray(s.history)) this.opts.onHistory(s.history);
        delete s.history;
        samples++;
        this.delivered('poll');
        this.opts.onSample(s);
        path = '/api/stats';
        const left = 1000 - (performance.now() - started);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
      }
    } catch (e) {
      if (samples === 0) throw e;
    }
    return samples > 0;
  }

  close() {
    this.closed = true;
    this.stop?.();
  }
}

/** @param {string} id @returns {HTMLElement} */
function el(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e;
}

/** @param {number} v */
const round = (v) => Math.round(v);

/**
 * The charts: a title, a unit and series of {@link Figures}.
 * @type {{title: string, unit?: '' | 'bytes' | 'us' | '%', series: import('./chart.js').Series<Figures>[]}[]}
 */
export const CHARTS = [
  {
    title: 'tick duration',
    unit: 'us',
    series: [
      { label: 'p50', color: '#38bdf8', value: (f) => f.tick.p50_us },
      { label: 'p99', color: '#f87171', value: (f) => f.tick.p99_us },
    ],
  },
  {
    title: 'tick overruns and drops /s',
    series: [
      { label: 'overruns', color: '#f87171', value: (f) => f.tick.overruns_per_sec },
      { label: 'dropped', color: '#fbbf24', value: (f) => f.dropped_ticks_per_sec },
    ],
  },
  {
    title: 'connections by transport',
    series: TRANSPORTS.map((t) => ({ label: t, color: COLORS[t], value: (/** @type {Figures} */ f) => f.connections[t].player + f.connections[t].spectator })),
  },
  {
    title: 'frames /s',
    series: [{ label: 'total', color: COLORS.total, value: (f) => f.frames_per_sec.total }, ...TRANSPORTS.map((t) => ({ label: t, color: COLORS[t], value: (/** @type {Figures} */ f) => f.frames_per_sec[t] }))],
  },
  {
    title: 'bytes /s',
    unit: 'bytes',
    series: [{ label: 'total', color: COLORS.total, value: (f) => f.bytes_per_sec.total }, ...TRANSPORTS.map((t) => ({ label: t, color: COLORS[t], value: (/** @type {Figures} */ f) => f.bytes_per_sec[t] }))],
  },
  { title: 'inputs /s', series: [{ label: 'inputs', color: '#a3e635', value: (f) => f.inputs_per_sec }] },
  { title: 'rejections /s', series: [{ label: 'rejections', color: '#f87171', value: (f) => f.rejections_per_sec }] },
  { title: 'CPU (% of one core)', unit: '%', series: [{ label: 'cpu', color: '#fbbf24', value: (f) => f.cpu_percent }] },
  { title: 'memory (RSS)', unit: 'bytes', series: [{ label: 'rss', color: '#c084fc', value: (f) => f.rss_bytes }] },
];

/**
 * The headline numbers: label and text of a sample.
 * @type {[string, (s: Sample) => string][]}
 */
export const TILES = [
  ['rooms', (s) => format(s.rooms_open)],
  ['players', (s) => format(s.connections.total.player)],
  ['spectators', (s) => format(s.connections.total.spectator)],
  ['frames /s', (s) => format(round(s.frames_per_sec.total))],
  ['bytes /s', (s) => format(s.bytes_per_sec.total, 'bytes')],
  ['inputs /s', (s) => format(round(s.inputs_per_sec))],
  ['rejections /s', (s) => format(s.rejections_per_sec)],
  ['tick p50 / p99', (s) => `${format(s.tick.p50_us, 'us')} / ${format(s.tick.p99_us, 'us')}`],
  ['overruns /s', (s) => format(s.tick.overruns_per_sec)],
  ['CPU', (s) => format(s.cpu_percent, '%')],
  ['RSS', (s) => format(s.rss_bytes, 'bytes')],
];

/**
 * A table row of text cells.
 * @param {(string | Node)[]} cells
 */
function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    td.append(c);
    tr.append(td);
  }
  return tr;
}

/** Wires the dashboard page. */
export function dashboard() {
  const params = new URLSearchParams(location.search);
  const forced = params.get('transport');
  const history = new History();
  /** @type {Sample | null} */
  let latest = null;
  let received = 0;

  const tiles = TILES.map(([label]) => {
    const box = document.createElement('div');
    box.className = 'tile';
    const value = document.createElement('b');
    value.textContent = '–';
    const name = document.createElement('span');
    name.textContent = label;
    box.append(value, name);
    el('tiles').append(box);
    return value;
  });
  const charts = CHARTS.map((spec) => {
    const box = document.createElement('figure');
    box.className = 'chart';
    const title = document.createElement('figcaption');
    title.textContent = spec.title;
    const canvas = document.createElement('canvas');
    box.append(title, canvas);
    el('charts').append(box);
    return { spec, canvas, points: 0 };
  });

  const draw = () => {
    const dpr = devicePixelRatio || 1;
    // The time axis: what the history covers, at least a minute, at most five.
    const all = history.samples;
    const span = all.length ? Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, all[all.length - 1].time_ms - all[0].time_ms)) : MIN_WINDOW_MS;
    for (const c of charts) {
      const width = c.canvas.clientWidth;
      const height = c.canvas.clientHeight;
      if (width === 0 || height === 0) continue;
      if (c.canvas.width !== Math.round(width * dpr)) c.canvas.width = Math.round(width * dpr);
      if (c.canvas.height !== Math.round(height * dpr)) c.canvas.height = Math.round(height * dpr);
      const ctx = c.canvas.getContext('2d');
      if (!ctx) continue;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      drawChart(ctx, { width, height, window: span, unit: c.spec.unit, time: (f) => f.time_ms, series: c.spec.series }, history.samples);
      c.points = history.samples.filter((f) => c.spec.series[0].value(f) !== null).length;
    }
  };

  /** @param {Sample} s */
  const show = (s) => {
    TILES.forEach(([, text], i) => {
      tiles[i].textContent = text(s);
    });
    el('connections').replaceChildren(
      ...TRANSPORTS.map((t) =>
        row([t, format(s.connections[t].player), format(s.connections[t].spectator), format(round(s.frames_per_sec[t])), format(s.bytes_per_sec[t], 'bytes')]),
      ),
    );
    el('rooms').replaceChildren(
      ...s.rooms.map((r) => {
        const link = document.createElement('a');
        link.href = `/spectate.html?room=${encodeURIComponent(r.id)}`;
        link.textContent = r.id;
        return row([link, format(r.players), format(r.ai_ships), format(r.spectators), String(r.tick), format(r.ticks.per_sec), format(r.ticks.p50_us, 'us'), format(r.ticks.p99_us, 'us'), format(r.ticks.overruns_per_sec)]);
      }),
    );
    el('rooms-note').textContent = s.rooms.length < s.rooms_open ? `the ${s.rooms.length} busiest of ${s.rooms_open} rooms` : '';
    const rejected = Object.entries(s.rejections).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    el('rejections').replaceChildren(...(rejected.length ? rejected.map(([reason, n]) => row([reason, format(n)])) : [row(['none', ''])]));
    el('panics').textContent = s.room_panics ? `room panics: ${s.room_panics}` : '';
  };

  const feed = new Feed({
    transport: forced === 'sse' || forced === 'poll' ? forced : null,
    onHistory: (h) => {
      history.reset(h);
      draw();
    },
    onSample: (s) => {
      latest = s;
      received++;
      history.push(s);
      show(s);
      draw();
      el('updated').textContent = `sample ${s.seq} at ${new Date(s.time_ms).toLocaleTimeString()}`;
    },
    onStatus: (t, text) => {
      el('transport').textContent = t ?? '…';
      el('transport').className = t ?? '';
      el('status').textContent = text;
    },
  });

  // A sample is due every second: say so when they stop coming.
  let seen = 0;
  setInterval(() => {
    el('updated').classList.toggle('stale', received === seen);
    seen = received;
  }, 3000);
  addEventListener('resize', draw);

  /** @type {any} */ (window).dashboard = {
    get transport() {
      return feed.transport;
    },
    get latest() {
      return latest;
    },
    get history() {
      return history.samples;
    },
    get charts() {
      return charts.map((c) => ({ title: c.spec.title, points: c.points }));
    },
  };
  feed.start();
  addEventListener('pagehide', () => feed.close());
}
