// @ts-check
/**
 * @file Getting state from the server over whatever the network allows, like Socket.IO and
 * Phoenix do: WebSocket first; when it fails or stalls, SSE, then HTTP streaming, then long
 * polling, then polling. What worked is remembered for the session; reconnects back off with
 * jitter and resume by tick (the replica's cursor), so a drop costs a delta, not a restart.
 * Players who fall back keep playing: they join over HTTP and post inputs in batches.
 *
 * Chat comes in on every transport (a `Chat` message, an SSE `chat` event, a record before a
 * frame) and goes to `onChat`; players send it over the WebSocket or by `POST …/chat`. The
 * server re-sends what a resuming client may have missed, so the lines that arrive again after
 * a reconnect, before its first frame, are recognised and dropped.
 */

import { PROTOCOL_VERSION, SERVER_MSG_LIMIT, decodeServer, encodeClient } from './codec.js';
import { ChatDedup } from './chat.js';
import { Replica } from './replica.js';
import { WireError } from './wire.js';

/** Every transport, in the order they are tried. */
export const TRANSPORTS = /** @type {const} */ (['ws', 'sse', 'stream', 'longpoll', 'poll']);
/** @typedef {typeof TRANSPORTS[number]} Transport */
/** @typedef {import('./codec.js').ServerMsg} ServerMsg */
/** @typedef {import('./codec.js').Input} Input */

/** A frame must arrive this soon after connecting, or the transport counts as stalled. */
const STALL_MS = 4000;
/** Largest poll answer read: a frame at its limit plus the chat lines before it. */
export const MAX_POLL_BODY = 2 * SERVER_MSG_LIMIT;

/** @typedef {import('./chat.js').ChatLine} ChatLine */
/** @typedef {import('./codec.js').Frame} Frame */

/**
 * Splits bytes into length-prefixed records (`u32` little-endian length ‖ message), as HTTP
 * streaming and polling send them. Returns the whole records and the bytes of an unfinished
 * one. A record longer than a server message may be is an error.
 * @param {Uint8Array} buf
 * @returns {{records: Uint8Array[], rest: Uint8Array}}
 */
export function splitRecords(buf) {
  /** @type {Uint8Array[]} */
  const records = [];
  let at = 0;
  while (buf.length - at >= 4) {
    const n = new DataView(buf.buffer, buf.byteOffset + at, 4).getUint32(0, true);
    if (n > SERVER_MSG_LIMIT) throw new WireError('record too large');
    if (buf.length - at < 4 + n) break;
    records.push(buf.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return { records, rest: buf.subarray(at) };
}

/**
 * Reads a `200` poll answer: zero or more `Chat` records, then exactly one `Frame`, which is
 * last. Anything else (another message, a second frame, bytes left over) is an error.
 * @param {Uint8Array} body
 * @returns {{chats: ChatLine[], frame: Frame}}
 */
export function parsePollBody(body) {
  if (body.length > MAX_POLL_BODY) throw new WireError('poll answer too large');
  const { records, rest } = splitRecords(body);
  if (rest.length !== 0) throw new WireError('poll: a record is cut short');
  /** @type {ChatLine[]} */
  const chats = [];
  /** @type {Frame | null} */
  let frame = null;
  for (const r of records) {
    const msg = decodeServer(r);
    if (frame !== null) throw new WireError('poll: records after the frame');
    if (msg.type === 'Chat') chats.push({ from: msg.from, name: msg.name, text: msg.text });
    else if (msg.type === 'Frame') frame = msg;
    else throw new WireError(`poll: unexpected ${msg.type}`);
  }
  if (frame === null) throw new WireError('poll: no frame');
  return { chats, frame };
}

/**
 * @typedef {{
 *   room: string, role: 'player' | 'spectator', name?: string, transport?: Transport | null,
 *   onWelcome?: (w: {entity: number, tick_rate: number, send_rate: number, arena: import('./codec.js').ArenaInfo}) => void,
 *   onFrame?: (ack: number) => void, onStatus?: (text: string) => void,
 *   onChat?: (line: ChatLine) => void,
 * }} Options
 */

/** One session with a room: transport negotiation, the replica, inputs. */
export class Connection {
  /** @param {Options} opts */
  constructor(opts) {
    this.opts = opts;
    this.replica = new Replica();
    /** @type {Transport | null} */
    this.transport = null;
    /** @type {string | null} the player's session token */
    this.token = null;
    this.entity = 0;
    this.sendRate = 30;
    this.tickRate = 60;
    this.seq = 0;
    this.ack = 0;
    this.rtt = 0;
    this.closed = false;
    /** @type {{seq: number, thrust: number, turn: number, buttons: number}[]} inputs waiting to be posted */
    this.outbox = [];
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {(() => void) | null} stops the current transport */
    this.stop = null;
    this.failures = 0;
    this.chat = new ChatDedup();
  }

  /** The transports to try, best first: forced, or remembered, or all. @returns {Transport[]} */
  candidates() {
    if (this.opts.transport) return [this.opts.transport];
    const known = /** @type {Transport | null} */ (sessionStorage.getItem('tickwire.transport'));
    const all = [...TRANSPORTS];
    return known && all.includes(known) ? [known, ...all.filter((t) => t !== known)] : all;
  }

  /** Connects, falling back transport by transport until one delivers frames. */
  async start() {
    const order = this.candidates();
    let i = 0;
    while (!this.closed) {
      const t = order[i % order.length];
      this.status(`connecting over ${t}…`);
      const ok = await this.run(t);
      if (this.closed) return;
      if (ok) {
        this.failures = 0;
      } else {
        i++;
        this.failures++;
      }
      // Jittered exponential backoff between attempts, capped at 5 s.
      const delay = Math.min(5000, 250 * 2 ** Math.min(this.failures, 5)) * (0.5 + Math.random());
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** @param {string} text */
  status(text) {
    this.opts.onStatus?.(text);
  }

  /**
   * Runs one transport until it ends. Resolves true if it delivered frames (a drop worth
   * resuming on the same transport), false if it never did (try the next one).
   * @param {Transport} t
   * @returns {Promise<boolean>}
   */
  async run(t) {
    let delivered = false;
    this.chat.reconnect();
    const gotFrame = () => {
      if (!delivered) {
        delivered = true;
        this.transport = t;
        if (!this.opts.transport) sessionStorage.setItem('tickwire.transport', t);
        this.status(`connected over ${t}`);
      }
    };
    try {
      if (t === 'ws') await this.runWs(gotFrame);
      else {
        // A player joins over HTTP (resuming the session if we hold a token from any transport).
        if (this.opts.role === 'player') await this.join();
        if (t === 'sse') await this.runSse(gotFrame);
        else if (t === 'stream') await this.runStream(gotFrame);
        else await this.runPoll(t === 'longpoll' ? 25 : 0, gotFrame);
      }
    } catch (e) {
      this.status(`${t}: ${e instanceof Error ? e.message : e}`);
    }
    return delivered;
  }

  /** Applies one server message. @param {ServerMsg} msg @param {() => void} gotFrame */
  handle(msg, gotFrame) {
    if (msg.type === 'Welcome') {
      this.entity = msg.entity || this.entity;
      if (msg.token) this.token = msg.token;
      this.tickRate = msg.tick_rate;
      this.sendRate = msg.send_rate;
      this.opts.onWelcome?.({ entity: this.entity, tick_rate: msg.tick_rate, send_rate: msg.send_rate, arena: msg.arena });
    } else if (msg.type === 'Frame') {
      try {
        this.replica.apply(msg);
      } catch (e) {
        // A desync (or a baseline we do not hold): resync from a keyframe.
        this.replica.reset();
        throw e;
      }
      this.ack = Math.max(this.ack, msg.ack);
      this.chat.frame();
      gotFrame();
      this.opts.onFrame?.(msg.ack);
    } else if (msg.type === 'Pong') {
      const sent = this.pings.get(msg.id);
      if (sent !== undefined) this.rtt = performance.now() - sent;
      this.pings.delete(msg.id);
    } else if (msg.type === 'Chat') {
      const line = { from: msg.from, name: msg.name, text: msg.text };
      if (this.chat.fresh(line)) this.opts.onChat?.(line);
    } else if (msg.type === 'Close') {
      throw new Error(`closed ${msg.code}: ${msg.reason}`);
    }
  }

  /** @type {Map<number, number>} */
  pings = new Map();

  /** @param {() => void} gotFrame */
  runWs(gotFrame) {
    return new Promise((resolve, reject) => {
      const url = new URL(`/api/rooms/${encodeURIComponent(this.opts.room)}/ws`, location.href);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      if (this.opts.role === 'spectator') url.searchParams.set('spectate', '1');
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      let frames = 0;
      const stall = setTimeout(() => frames === 0 && ws.close(4100, 'stalled'), STALL_MS);
      const pinger = setInterval(() => {
        if (ws.readyState !== WebSocket.OPEN) return;
        const id = (this.pings.size + Date.now()) >>> 0;
        this.pings.set(id, performance.now());
        if (this.pings.size > 16) this.pings.delete(this.pings.keys().next().value ?? 0);
        ws.send(encodeClient({ type: 'Ping', id }));
      }, 1000);
      this.stop = () => ws.close(1000, 'left');
      ws.onopen = () => {
        ws.send(encodeClient({ type: 'Hello', version: PROTOCOL_VERSION, name: this.opts.name ?? '', token: this.token, last_tick: this.replica.tick }));
      };
      ws.onmessage = (ev) => {
        try {
          const msg = decodeServer(new Uint8Array(ev.data));
          if (msg.type === 'Frame') frames++;
          this.handle(msg, gotFrame);
        } catch (e) {
          ws.close(4101, 'resync');
          if (!(e instanceof WireError)) this.status(String(e));
        }
      };
      ws.onclose = (ev) => {
        clearTimeout(stall);
        clearInterval(pinger);
        this.ws = null;
        if (ev.code === 4001) this.token = null; // the session expired: join anew
        if (frames > 0) resolve(undefined);
        else reject(new Error(`websocket closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`));
      };
    });
  }

  /** POST …/join (or resume with the token we hold). */
  async join() {
    const res = await fetch(`/api/rooms/${encodeURIComponent(this.opts.room)}/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(this.token ? { token: this.token } : { name: this.opts.name ?? '' }),
    });
    if (!res.ok) {
      this.token = null;
      throw new Error(`join: ${res.status}`);
    }
    const j = await res.json();
    this.token = j.token;
    this.entity = j.entity;
  }

  /** The URL of an HTTP transport with cursor and token. @param {string} leaf @param {Record<string, string>} extra */
  httpUrl(leaf, extra = {}) {
    const url = new URL(`/api/rooms/${encodeURIComponent(this.opts.room)}/${leaf}`, location.href);
    if (this.replica.tick !== null) url.searchParams.set('since', String(this.replica.tick));
    if (this.token && this.opts.role === 'player') url.searchParams.set('token', this.token);
    for (const [k, v] of Object.entries(extra)) url.searchParams.set(k, v);
    return url;
  }

  /** @param {() => void} gotFrame */
  runSse(gotFrame) {
    return new Promise((resolve, reject) => {
      const es = new EventSource(this.httpUrl('sse'));
      let frames = 0;
      const stall = setTimeout(() => frames === 0 && finish(new Error('stalled')), STALL_MS);
      /** @param {Error | null} err */
      const finish = (err) => {
        clearTimeout(stall);
        es.close();
        if (err && frames === 0) reject(err);
        else resolve(undefined);
      };
      this.stop = () => finish(null);
      /** @param {MessageEvent} ev */
      const onData = (ev) => {
        try {
          const bytes = Uint8Array.from(atob(ev.data), (c) => c.charCodeAt(0));
          const msg = decodeServer(bytes);
          if (msg.type === 'Frame') frames++;
          this.handle(msg, gotFrame);
        } catch (e) {
          finish(e instanceof Error ? e : new Error(String(e)));
        }
      };
      es.addEventListener('welcome', onData);
      es.addEventListener('frame', onData);
      es.addEventListener('chat', onData);
      es.addEventListener('close', onData);
      // EventSource reconnects by itself; we resume on our own terms instead.
      es.onerror = () => finish(new Error('event stream failed'));
      this.startPosting();
    });
  }

  /** @param {() => void} gotFrame */
  async runStream(gotFrame) {
    const ctl = new AbortController();
    this.stop = () => ctl.abort();
    const res = await fetch(this.httpUrl('stream'), { signal: ctl.signal });
    if (!res.ok || !res.body) throw new Error(`stream: ${res.status}`);
    const reader = res.body.getReader();
    this.startPosting();
    let buf = new Uint8Array(0);
    let frames = 0;
    const stall = setTimeout(() => frames === 0 && ctl.abort(), STALL_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const joined = new Uint8Array(buf.length + value.length);
        joined.set(buf);
        joined.set(value, buf.length);
        const { records, rest } = splitRecords(joined);
        buf = rest.slice();
        for (const r of records) {
          const msg = decodeServer(r);
          if (msg.type === 'Frame') frames++;
          this.handle(msg, gotFrame);
        }
      }
    } finally {
      clearTimeout(stall);
    }
    if (frames === 0) throw new Error('stream ended without frames');
  }

  /** @param {number} wait seconds to hold each request @param {() => void} gotFrame */
  async runPoll(wait, gotFrame) {
    let stopped = false;
    const ctl = new AbortController();
    this.stop = () => {
      stopped = true;
      ctl.abort();
    };
    this.startPosting();
    let frames = 0;
    while (!stopped && !this.closed) {
      const started = performance.now();
      const res = await fetch(this.httpUrl('poll', { wait: String(wait) }), { signal: ctl.signal, cache: 'no-store' });
      if (res.status === 200) {
        if (Number(res.headers.get('content-length')) > MAX_POLL_BODY) throw new Error('poll answer too large');
        // Chat lines first, then the frame they came with.
        const { chats, frame } = parsePollBody(new Uint8Array(await res.arrayBuffer()));
        for (const c of chats) this.handle({ type: 'Chat', ...c }, gotFrame);
        frames++;
        this.handle(frame, gotFrame);
      } else if (res.status !== 204) {
        throw new Error(`poll: ${res.status}`);
      }
      if (wait === 0) {
        // Polling: one request per send interval.
        const left = 1000 / this.sendRate - (performance.now() - started);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
      }
    }
    if (frames === 0) throw new Error('no frames');
  }

  /** @type {ReturnType<typeof setInterval> | null} */
  poster = null;

  /** For HTTP players: posts queued inputs once per send interval. */
  startPosting() {
    if (this.opts.role !== 'player' || this.poster !== null) return;
    this.poster = setInterval(() => this.flush(), 1000 / this.sendRate);
  }

  async flush() {
    if (this.outbox.length === 0 || !this.token || this.ws) return;
    const inputs = this.outbox.splice(0, 32);
    try {
      await fetch(`/api/rooms/${encodeURIComponent(this.opts.room)}/input?token=${this.token}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs }),
      });
    } catch {
      // The poll loop notices a dead server; inputs are per tick and not worth retrying.
    }
  }

  /**
   * Sends one tick's input (players only): over the WebSocket at once, or queued for the next
   * POST. Returns its sequence number.
   * @param {Input} input
   */
  sendInput(input) {
    const seq = ++this.seq;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(encodeClient({ type: 'Input', seq, input }));
    } else {
      this.outbox.push({ seq, ...input });
      if (this.outbox.length > 64) this.outbox.splice(0, this.outbox.length - 64);
    }
    return seq;
  }

  /**
   * Says a line in the room's chat (players only): over the WebSocket, or by `POST …/chat`
   * for a player on an HTTP transport. Everyone in the room, this page included, gets it back
   * as a chat line. Resolves to `null` when it was sent, or why it was not.
   * @param {string} text
   * @returns {Promise<string | null>}
   */
  async sendChat(text) {
    if (this.opts.role !== 'player') return 'spectators cannot chat';
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(encodeClient({ type: 'Chat', text }));
      return null;
    }
    // A WebSocket session's token is not an HTTP player's: wait for the socket to come back.
    if (!this.token || this.transport === 'ws' || this.transport === null) return 'not connected; try again in a moment';
    try {
      const res = await fetch(`/api/rooms/${encodeURIComponent(this.opts.room)}/chat?token=${encodeURIComponent(this.token)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text }),
      });
      if (res.ok) return null;
      const body = await res.json().catch(() => null);
      return body?.error?.message ?? `chat refused (${res.status})`;
    } catch {
      return 'chat not sent: the server did not answer';
    }
  }

  /** Ends the session. */
  close() {
    this.closed = true;
    this.stop?.();
    if (this.poster !== null) clearInterval(this.poster);
  }
}
