// Chat in the client: poll answers with chat records before the frame, the records of HTTP
// streaming cut anywhere, lines a reconnect sends again, and the panel (text only, capped,
// server notices marked). Message bytes come from game-core's golden vectors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parsePollBody, splitRecords, MAX_POLL_BODY } from '../src/net.js';
import { ChatDedup, ChatPanel, chatProblem } from '../src/chat.js';
import { SERVER_MSG_LIMIT, MAX_CHAT_CHARS } from '../src/codec.js';
import { WireError, fromHex } from '../src/wire.js';

const vectors = JSON.parse(readFileSync(new URL('./vectors/vectors.json', import.meta.url), 'utf8')).vectors;
const server = (name) => fromHex(vectors.find((v) => v.type === 'server' && v.name === name).hex);
const CHAT = server('chat'); // {from: 7, name: 'ana', text: 'hi ☄'}
const FRAME = server('frame delta');
const PONG = server('pong');

/** `u32 LE length ‖ bytes` for each message, concatenated. */
function records(...msgs) {
  const out = new Uint8Array(msgs.reduce((n, m) => n + 4 + m.length, 0));
  let at = 0;
  for (const m of msgs) {
    new DataView(out.buffer).setUint32(at, m.length, true);
    out.set(m, at + 4);
    at += 4 + m.length;
  }
  return out;
}

test('a poll answer is chat lines, then the frame', () => {
  const { chats, frame } = parsePollBody(records(CHAT, CHAT, FRAME));
  assert.deepEqual(chats, [
    { from: 7, name: 'ana', text: 'hi ☄' },
    { from: 7, name: 'ana', text: 'hi ☄' },
  ]);
  assert.equal(frame.type, 'Frame');
  assert.equal(frame.tick, 602);
  assert.equal(frame.base, 600);
  // The common case: no chat, one frame.
  const only = parsePollBody(records(FRAME));
  assert.equal(only.chats.length, 0);
  assert.equal(only.frame.tick, 602);
});

test('poll answers that are not chat lines then one frame are refused', () => {
  const bad = {
    'no frame': records(CHAT),
    'nothing at all': new Uint8Array(0),
    'a chat after the frame': records(FRAME, CHAT),
    'two frames': records(FRAME, FRAME),
    'another message': records(PONG, FRAME),
    'a record cut short': records(CHAT, FRAME).subarray(0, 4 + CHAT.length + 6),
    'a length cut short': Uint8Array.from([...records(FRAME), 1, 0]),
    'a record longer than a message may be': Uint8Array.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]),
  };
  for (const [what, body] of Object.entries(bad)) {
    assert.throws(() => parsePollBody(body), WireError, what);
  }
  assert.throws(() => parsePollBody(new Uint8Array(MAX_POLL_BODY + 1)), /too large/);
});

test('stream records split anywhere come out whole and in order', () => {
  const all = records(CHAT, FRAME, CHAT, FRAME);
  for (let cut = 0; cut <= all.length; cut++) {
    const first = splitRecords(all.subarray(0, cut));
    const joined = new Uint8Array(first.rest.length + all.length - cut);
    joined.set(first.rest);
    joined.set(all.subarray(cut), first.rest.length);
    const second = splitRecords(joined);
    assert.equal(second.rest.length, 0, `cut at ${cut}`);
    const got = [...first.records, ...second.records].map((r) => r.length);
    assert.deepEqual(got, [CHAT.length, FRAME.length, CHAT.length, FRAME.length], `cut at ${cut}`);
  }
  const n = new Uint8Array(4);
  new DataView(n.buffer).setUint32(0, SERVER_MSG_LIMIT + 1, true);
  assert.throws(() => splitRecords(n), /record too large/);
});

const line = (from, text, name = `p${from}`) => ({ from, name, text });

test('lines a reconnect sends again are dropped, new ones are not', () => {
  const d = new ChatDedup();
  d.reconnect();
  // A newcomer's backlog and live lines: all new.
  for (const l of [line(1, 'a'), line(2, 'b'), line(1, 'c')]) assert.equal(d.fresh(l), true);
  d.frame();
  assert.equal(d.fresh(line(2, 'd')), true, 'after a frame');
  // The connection drops; the resume sends again what came after our cursor, then news.
  d.reconnect();
  assert.equal(d.fresh(line(1, 'c')), false, 'sent again');
  assert.equal(d.fresh(line(2, 'd')), false, 'sent again');
  assert.equal(d.fresh(line(3, 'e')), true, 'news');
  d.frame();
  // Once a frame arrived, a line equal to an old one is a new line (people repeat themselves).
  assert.equal(d.fresh(line(1, 'c')), true);
  // A newcomer's backlog after a desync: the last lines again, in order, all recognised.
  d.reconnect();
  for (const l of [line(2, 'd'), line(3, 'e'), line(1, 'c')]) assert.equal(d.fresh(l), false, l.text);
  assert.equal(d.fresh(line(1, 'c')), true, 'the same words again, after the backlog: new');
  // The server's private notices are never sent again, so never taken for a repeat.
  d.frame();
  assert.equal(d.fresh(line(0, 'slow down', 'server')), true);
  d.reconnect();
  assert.equal(d.fresh(line(0, 'slow down', 'server')), true);
});

/** Just enough DOM for the panel; `innerHTML` throws, so markup can never be used. */
class FakeElement {
  constructor(doc, tag) {
    this.ownerDocument = doc;
    this.tagName = tag;
    /** @type {(FakeElement | string)[]} */
    this.children = [];
    this.parent = null;
    this.className = '';
    this.style = {};
    this.own = '';
    this.scrollTop = 0;
    this.clientHeight = 100;
  }
  get scrollHeight() {
    return this.children.length * 20;
  }
  set innerHTML(_) {
    throw new Error('innerHTML used');
  }
  get innerHTML() {
    throw new Error('innerHTML used');
  }
  get textContent() {
    return this.children.length ? this.children.map((c) => (typeof c === 'string' ? c : c.textContent)).join('') : this.own;
  }
  set textContent(v) {
    this.children = [];
    this.own = String(v);
  }
  append(...nodes) {
    for (const n of nodes) {
      if (typeof n !== 'string') n.parent = this;
      this.children.push(n);
    }
  }
  remove() {
    if (this.parent) this.parent.children = this.parent.children.filter((c) => c !== this);
    this.parent = null;
  }
}

function fakeList() {
  const doc = { createElement: (tag) => new FakeElement(doc, tag) };
  return new FakeElement(doc, 'ol');
}

test('the panel writes lines as text, marks ours and the server notices, and keeps the last 100', () => {
  const list = fakeList();
  const panel = new ChatPanel(list, { me: () => 7, color: (id) => `c${id}` });
  panel.add(line(3, '<img src=x onerror=alert(1)> & <b>hi</b>', '<i>eve</i>'));
  const [li] = list.children;
  assert.equal(li.textContent, '<i>eve</i>:<img src=x onerror=alert(1)> & <b>hi</b>', 'markup stays text');
  assert.equal(li.children[0].style.color, 'c3');
  assert.equal(li.className, '');
  panel.add(line(7, 'mine', 'me'));
  assert.equal(list.children[1].className, 'me');
  panel.add({ from: 0, name: 'server', text: 'at most 5 chat lines per 10 seconds; wait a moment' });
  assert.equal(list.children[2].className, 'notice');
  assert.equal(list.children[2].textContent, 'server:at most 5 chat lines per 10 seconds; wait a moment');
  panel.notice('not connected');
  assert.equal(list.children[3].className, 'notice');
  for (let i = 0; i < 150; i++) panel.add(line(4, `line ${i}`));
  assert.equal(list.children.length, 100);
  assert.equal(panel.lines.length, 100);
  assert.equal(list.children[0].textContent, 'p4:line 50');
  assert.equal(list.children[99].textContent, 'p4:line 149');
  assert.equal(list.scrollTop, list.scrollHeight, 'follows the newest line');
  // A reader who scrolled up stays where they are.
  list.scrollTop = 0;
  panel.add(line(4, 'one more'));
  assert.equal(list.scrollTop, 0);
});

test('a line to send must have words and fit the limit', () => {
  assert.equal(chatProblem('gg'), null);
  assert.match(chatProblem('   ') ?? '', /nothing/);
  assert.equal(chatProblem('☄'.repeat(MAX_CHAT_CHARS)), null, 'characters, not bytes or UTF-16 units');
  assert.match(chatProblem('x'.repeat(MAX_CHAT_CHARS + 1)) ?? '', /at most 200/);
});
