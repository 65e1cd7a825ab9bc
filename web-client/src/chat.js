// @ts-check
/**
 * @file Room chat in the browser: the panel on the play and spectate pages (a capped list of
 * lines, and for players an input that sends on Enter), and {@link ChatDedup}, which lets
 * the connection drop the lines a reconnect delivers a second time.
 *
 * Lines come from other people: they are written with `textContent` only, never as markup.
 * Lines from ship 0 are the server's (a private notice such as "slow down") and look different.
 */

import { MAX_CHAT_CHARS } from './codec.js';

/**
 * One chat line as the server sends it: ship id (0: the server), name, text.
 * @typedef {{from: number, name: string, text: string}} ChatLine
 */

/** Lines the panel keeps; older ones are removed. */
export const MAX_LINES = 100;
/** Chat lines remembered to recognise the ones a reconnect sends again (the server's backlog is 10). */
const CHAT_REMEMBERED = 20;

/**
 * Recognises chat lines a reconnect delivers again: the server re-sends the lines after the
 * client's cursor (or, to a newcomer, its last few), and they all come before the new
 * session's first frame. Until that frame, a line that matches one remembered is dropped
 * (with every remembered line before it); after it, every line is new.
 */
export class ChatDedup {
  constructor() {
    /** @type {ChatLine[]} the last lines delivered (not the server's private notices) */
    this.recent = [];
    /** @type {ChatLine[]} lines that may come again, until the next frame */
    this.replay = [];
  }

  /** A new connection starts: what it sends before its first frame may be a repeat. */
  reconnect() {
    this.replay = [...this.recent];
  }

  /** A frame arrived: from now on every line is new. */
  frame() {
    this.replay = [];
  }

  /**
   * Whether `line` is new (deliver it) or a repeat (drop it).
   * @param {ChatLine} line
   */
  fresh(line) {
    const same = (/** @type {ChatLine} */ l) => l.from === line.from && l.name === line.name && l.text === line.text;
    const k = this.replay.findIndex(same);
    if (k >= 0) {
      this.replay.splice(0, k + 1);
      return false;
    }
    // The server's private notices (over-rate, too long) are never sent again.
    if (line.from !== 0) {
      this.recent.push(line);
      if (this.recent.length > CHAT_REMEMBERED) this.recent.shift();
    }
    return true;
  }
}

/** The chat list of a page. */
export class ChatPanel {
  /**
   * @param {HTMLElement} list the `<ol>` the lines go in
   * @param {{max?: number, me?: () => number, color?: (ship: number) => string}} [opts]
   *   `me`: our ship (its lines are marked); `color`: a ship's colour for its name
   */
  constructor(list, opts = {}) {
    this.list = list;
    this.max = opts.max ?? MAX_LINES;
    this.me = opts.me ?? (() => 0);
    this.color = opts.color;
    /** @type {HTMLElement[]} the items shown, oldest first */
    this.items = [];
    /** @type {ChatLine[]} the lines shown, oldest first (for tests and the console) */
    this.lines = [];
  }

  /**
   * Adds a line at the bottom, dropping the oldest beyond the cap, and keeps the list scrolled
   * to the bottom unless the reader scrolled up.
   * @param {ChatLine} line
   */
  add(line) {
    const doc = this.list.ownerDocument;
    const li = doc.createElement('li');
    const who = doc.createElement('span');
    who.className = 'who';
    const text = doc.createElement('span');
    text.className = 'text';
    if (line.from === 0) {
      li.className = 'notice';
      who.textContent = `${line.name || 'server'}:`;
    } else {
      if (line.from === this.me()) li.className = 'me';
      who.textContent = `${line.name || `ship ${line.from}`}:`;
      if (this.color) who.style.color = this.color(line.from);
    }
    text.textContent = line.text;
    li.append(who, text);
    const list = this.list;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.append(li);
    this.items.push(li);
    this.lines.push(line);
    while (this.items.length > this.max) {
      this.items.shift()?.remove();
      this.lines.shift();
    }
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  /**
   * A notice from this page itself (a line that could not be sent), shown like the server's.
   * @param {string} text
   */
  notice(text) {
    this.add({ from: 0, name: 'chat', text });
  }
}

/**
 * The reason a line should not be sent, or `null`: blank, or longer than the protocol allows
 * (in characters, as the server counts them).
 * @param {string} text
 * @returns {string | null}
 */
export function chatProblem(text) {
  if (text.trim() === '') return 'nothing to say';
  if ([...text].length > MAX_CHAT_CHARS) return `chat lines are at most ${MAX_CHAT_CHARS} characters`;
  return null;
}

/**
 * Sends what is typed in `input` when Enter is pressed (the form submits), through `send`,
 * which resolves to `null` or the reason it was not sent (shown on the panel). Sending or
 * Escape leaves the box, so the keys fly the ship again.
 * @param {HTMLFormElement} form
 * @param {HTMLInputElement} input
 * @param {ChatPanel} panel
 * @param {(text: string) => Promise<string | null>} send
 */
export function chatInput(form, input, panel, send) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    const problem = chatProblem(text);
    if (problem) {
      if (text !== '') panel.notice(problem);
      return;
    }
    input.value = '';
    // Back to flying: Enter opens the box again.
    input.blur();
    const refused = await send(text);
    if (refused) panel.notice(refused);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') input.blur();
  });
}
