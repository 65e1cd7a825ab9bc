// @ts-check
/**
 * @file The lobby: rooms with their players and spectators, join, spectate, create, quick play.
 * Refreshes once a second. Room ids and numbers are written as text, never as markup.
 */

/** @param {string} id @returns {HTMLElement} */
function el(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e;
}

/** @param {string} room */
function playUrl(room) {
  const name = /** @type {HTMLInputElement} */ (el('name')).value.trim();
  localStorage.setItem('tickwire.name', name);
  return `/play.html?room=${encodeURIComponent(room)}`;
}

async function refresh() {
  const res = await fetch('/api/rooms', { cache: 'no-store' });
  if (!res.ok) return;
  /** @type {{id: string, players: number, ai_ships: number, spectators: number, tick: number, capacity: number}[]} */
  const rooms = await res.json();
  const body = el('rooms');
  body.replaceChildren(
    ...rooms.map((r) => {
      const tr = document.createElement('tr');
      for (const v of [r.id, `${r.players}/${r.capacity}`, r.ai_ships, r.spectators, r.tick]) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      const td = document.createElement('td');
      const play = document.createElement('a');
      play.textContent = 'play';
      play.href = `/play.html?room=${encodeURIComponent(r.id)}`;
      play.addEventListener('click', (e) => {
        e.preventDefault();
        location.href = playUrl(r.id);
      });
      const watch = document.createElement('a');
      watch.textContent = 'spectate';
      watch.href = `/spectate.html?room=${encodeURIComponent(r.id)}`;
      td.append(play, ' · ', watch);
      tr.append(td);
      return tr;
    }),
  );
}

/** Wires the lobby page. */
export function lobby() {
  /** @type {HTMLInputElement} */ (el('name')).value = localStorage.getItem('tickwire.name') || '';
  el('quick').addEventListener('click', async () => {
    const res = await fetch('/api/matchmake', { method: 'POST' });
    if (res.ok) location.href = playUrl((await res.json()).room.id);
  });
  el('create').addEventListener('click', async () => {
    const res = await fetch('/api/rooms', { method: 'POST' });
    if (res.ok) location.href = playUrl((await res.json()).id);
  });
  refresh();
  setInterval(refresh, 1000);
}
