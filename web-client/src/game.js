// @ts-check
/**
 * @file The play and spectate pages: one connection, the renderer, the HUD (score board,
 * kill feed, ping, transport), the room's chat and, for players, the keyboard and the chat
 * box. Exposes `window.tickwire` = `{ transport, tick, entities, desyncs, chat }` for tests
 * and the console.
 */

import { Connection, TRANSPORTS } from './net.js';
import { FLAG, POS_SCALE } from './snapshot.js';
import { Renderer, Timeline, kills, shipColor } from './view.js';
import { Predictor } from './predict.js';
import { ChatPanel, chatInput } from './chat.js';

const BUTTON_FIRE = 1;
const BUTTON_BOOST = 2;

/** @param {string} id @returns {HTMLElement} */
function el(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e;
}

/**
 * Starts a page.
 * @param {'player' | 'spectator'} role
 */
export function start(role) {
  const params = new URLSearchParams(location.search);
  const room = params.get('room') || 'default';
  const forced = params.get('transport');
  const transport = forced && /** @type {readonly string[]} */ (TRANSPORTS).includes(forced) ? /** @type {import('./net.js').Transport} */ (forced) : null;
  const canvas = /** @type {HTMLCanvasElement} */ (el('view'));
  const renderer = new Renderer(canvas);
  const timeline = new Timeline();
  /** @type {import('./snapshot.js').Snapshot | null} */
  let last = null;
  /** @type {string[]} */
  const feed = [];
  let follow = 0; // spectators: the ship to follow (0: whole arena)
  /** @type {Predictor | null} our own ship, predicted (players) */
  let predictor = null;
  const chat = new ChatPanel(el('chat-log'), { me: () => conn.entity, color: shipColor });

  const conn = new Connection({
    room,
    role,
    name: params.get('name') || localStorage.getItem('tickwire.name') || '',
    transport,
    onWelcome: (w) => {
      renderer.arena = w.arena;
    },
    onFrame: () => {
      const snap = conn.replica.state;
      if (!snap) return;
      for (const k of kills(last, snap)) {
        feed.unshift(k.killer ? `ship ${k.killer} destroyed ship ${k.victim}` : `ship ${k.victim} was destroyed`);
        feed.length = Math.min(feed.length, 5);
      }
      last = snap;
      timeline.push(snap);
      predictor?.reconcile(snap.entities.find((e) => e.id === conn.entity), conn.ack);
    },
    onStatus: (text) => {
      el('status').textContent = text;
    },
    onChat: (line) => chat.add(line),
  });

  /** What tests and curious users can read. */
  const api = {
    get transport() {
      return conn.transport;
    },
    get tick() {
      return conn.replica.tick;
    },
    get entities() {
      return conn.replica.state ? conn.replica.state.entities : [];
    },
    get desyncs() {
      return conn.replica.desyncs;
    },
    get entity() {
      return conn.entity;
    },
    get ack() {
      return conn.ack;
    },
    /** @type {{x: number, y: number} | null} where our ship was last drawn, world units */
    drawn: null,
    /** The chat lines shown, oldest first. */
    get chat() {
      return chat.lines;
    },
  };
  /** @type {any} */ (window).tickwire = api;

  // The arena and the flight rules from the room's info: polling has no Welcome to carry the
  // arena, and prediction needs the rules on every transport.
  el('room').textContent = room;
  fetch(`/api/rooms/${encodeURIComponent(room)}`)
    .then((r) => (r.ok ? r.json() : null))
    .then((info) => {
      if (!info) return;
      renderer.arena ??= info.arena;
      if (role === 'player' && info.flight) predictor = new Predictor(info.flight, info.tick_rate);
    })
    .catch(() => {});

  if (role === 'player') {
    const box = /** @type {HTMLInputElement} */ (el('chat-input'));
    chatInput(/** @type {HTMLFormElement} */ (el('chat-form')), box, chat, (text) => conn.sendChat(text));
    keyboard(conn, (seq, input) => predictor?.sent(seq, input), box);
  }
  if (role === 'spectator') {
    el('follow').addEventListener('click', () => {
      const ships = api.entities.filter((e) => e.kind === 0 && !(e.flags & FLAG.DEAD));
      const i = ships.findIndex((s) => s.id === follow);
      follow = i + 1 < ships.length ? ships[i + 1].id : 0;
      el('follow').textContent = follow ? `following ship ${follow}` : 'free camera';
    });
  }

  const frame = () => {
    const delay = 2000 / conn.sendRate;
    let entities = timeline.at(performance.now() - delay);
    // Our own ship is drawn where the prediction says it is now, not where it was.
    const mine = predictor?.view();
    if (mine) {
      entities = entities.map((e) => (e.id === conn.entity ? { ...e, x: mine.x * POS_SCALE, y: mine.y * POS_SCALE, angle: (mine.angle / (2 * Math.PI)) * 65536 } : e));
    }
    const me = role === 'player' ? conn.entity : follow;
    const focusShip = me ? entities.find((e) => e.id === me) : undefined;
    const focus = focusShip ? { x: focusShip.x / POS_SCALE, y: focusShip.y / POS_SCALE } : null;
    if (role === 'player') api.drawn = focus;
    renderer.draw(entities, focus, role === 'player' ? conn.entity : 0);
    hud(conn, api.entities, feed);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  conn.start();
  addEventListener('pagehide', () => conn.close());
}

/** @param {Connection} conn @param {import('./snapshot.js').Entity[]} entities @param {string[]} feed */
function hud(conn, entities, feed) {
  const ships = entities.filter((e) => e.kind === 0).sort((a, b) => b.score - a.score).slice(0, 8);
  el('scores').innerHTML = '';
  for (const s of ships) {
    const li = document.createElement('li');
    li.style.color = shipColor(s.id);
    // Text only, never markup: names and numbers come from the network.
    li.textContent = `${s.id === conn.entity ? '▶ ' : ''}ship ${s.id}${s.flags & FLAG.AI ? ' (ai)' : ''} — ${s.score}`;
    el('scores').append(li);
  }
  el('feed').textContent = feed.join('\n');
  el('net').textContent = `${conn.transport ?? '…'} · tick ${conn.replica.tick ?? '–'} · ${conn.transport === 'ws' ? `ping ${Math.round(conn.rtt)} ms` : 'no ping over HTTP'} · desyncs ${conn.replica.desyncs}`;
}

/**
 * Keyboard controls, sent once per tick (60 Hz), like the bots. Keys typed into the chat box
 * are text, not controls; Enter opens the chat box.
 * @param {Connection} conn
 * @param {(seq: number, input: import('./codec.js').Input) => void} sent
 * @param {HTMLInputElement} chatBox
 */
function keyboard(conn, sent, chatBox) {
  const down = new Set();
  addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLInputElement) return;
    if (e.key === 'Enter') {
      e.preventDefault();
      down.clear();
      chatBox.focus();
      return;
    }
    down.add(e.code);
    if (['Space', 'ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight'].includes(e.code)) e.preventDefault();
  });
  addEventListener('keyup', (e) => down.delete(e.code));
  chatBox.addEventListener('focus', () => down.clear());
  addEventListener('blur', () => down.clear());
  touchControls(down);
  setInterval(() => {
    if (conn.replica.tick === null) return;
    const up = down.has('ArrowUp') || down.has('KeyW');
    const back = down.has('ArrowDown') || down.has('KeyS');
    const left = down.has('ArrowLeft') || down.has('KeyA');
    const right = down.has('ArrowRight') || down.has('KeyD');
    const input = {
      thrust: up ? 127 : back ? -127 : 0,
      turn: right && !left ? 127 : left && !right ? -127 : 0,
      buttons: (down.has('Space') ? BUTTON_FIRE : 0) | (down.has('ShiftLeft') || down.has('ShiftRight') ? BUTTON_BOOST : 0),
    };
    sent(conn.sendInput(input), input);
  }, 1000 / 60);
}

/**
 * On touch screens, four on-screen buttons press the same keys: turn left, turn right,
 * thrust, fire.
 * @param {Set<string>} down
 */
function touchControls(down) {
  if (!matchMedia('(pointer: coarse)').matches) return;
  const pad = document.createElement('div');
  pad.id = 'touch';
  for (const [label, code] of [['◀', 'ArrowLeft'], ['▶', 'ArrowRight'], ['▲', 'ArrowUp'], ['●', 'Space']]) {
    const b = document.createElement('button');
    b.textContent = label;
    b.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      down.add(code);
    });
    for (const end of ['pointerup', 'pointercancel', 'pointerleave']) b.addEventListener(end, () => down.delete(code));
    pad.append(b);
  }
  document.body.append(pad);
}
