// @ts-check
/**
 * @file Small line charts on a canvas, for the dashboard: a few series over the last minutes,
 * a y axis from zero to a round maximum, three grid lines, and a legend with each series'
 * latest value. No library: what the dashboard needs fits in this file, and the client has
 * no build step to bring one in.
 *
 * The geometry ({@link niceMax}, {@link plot}) is pure, so node tests check it; {@link drawChart}
 * only turns it into canvas calls.
 */

/**
 * One line: its label, its colour, and its value in each sample (`null`: no value then).
 * @template S
 * @typedef {{label: string, color: string, value: (sample: S) => number | null}} Series
 */

/**
 * A round number at or above `v` (1, 2, 2.5 or 5 times a power of ten), so axis labels read
 * well; 1 for nothing to show.
 * @param {number} v
 * @returns {number}
 */
export function niceMax(v) {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p * (1 + 1e-9)) return m * p;
  return 10 * p;
}

/**
 * Pixel points of one series: x spreads `times` over `[t0, t1]` across the width, y maps
 * `0…max` to the bottom…top. Samples without a value break the line (a `null` point).
 * @param {(number | null)[]} values
 * @param {number[]} times same length as `values`
 * @param {{t0: number, t1: number, max: number, width: number, height: number}} box
 * @returns {({x: number, y: number} | null)[]}
 */
export function plot(values, times, box) {
  const span = Math.max(1, box.t1 - box.t0);
  return values.map((v, i) => {
    if (v === null || !Number.isFinite(v)) return null;
    const x = ((times[i] - box.t0) / span) * box.width;
    const y = box.height - (Math.max(0, Math.min(v, box.max)) / box.max) * box.height;
    return { x, y };
  });
}

/**
 * Short text for a number: `1.2k`, `3.4M`; bytes as `KiB`, `MiB`.
 * @param {number | null | undefined} v
 * @param {'' | 'bytes' | 'us' | '%'} [unit]
 * @returns {string}
 */
export function format(v, unit = '') {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (unit === 'bytes') {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
  }
  if (unit === 'us') return v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)} ms` : `${Math.round(v)} µs`;
  if (unit === '%') return `${v.toFixed(1)} %`;
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** Space for the axis labels on the left, CSS pixels; the legend's rows go above the plot. */
const PAD = { left: 44, right: 6, bottom: 4 };
/** Height of one legend row, CSS pixels. */
const LEGEND_ROW = 13;

/**
 * Draws `series` over `samples` (oldest first) into a canvas 2D context of `width` × `height`
 * CSS pixels, the time axis ending at the last sample and spanning `window` milliseconds.
 * @template S
 * @param {CanvasRenderingContext2D} ctx
 * @param {{width: number, height: number, window: number, unit?: '' | 'bytes' | 'us' | '%',
 *   time: (s: S) => number, series: Series<S>[]}} spec
 * @param {S[]} samples
 */
export function drawChart(ctx, spec, samples) {
  const { width, height } = spec;
  ctx.clearRect(0, 0, width, height);
  ctx.font = '10px system-ui, sans-serif';
  const times = samples.map(spec.time);
  const t1 = times.length ? times[times.length - 1] : 0;
  const t0 = t1 - spec.window;
  const columns = spec.series.map((s) => samples.map(s.value));
  let top = 0;
  for (const col of columns) for (const v of col) if (v !== null && v > top) top = v;
  const max = niceMax(top);

  // The legend, each series' colour, label and latest value, in as many rows as it takes.
  const legend = [];
  let lx = PAD.left;
  let row = 0;
  for (const [i, s] of spec.series.entries()) {
    const col = columns[i];
    const text = `${s.label} ${format(col.length ? col[col.length - 1] : null, spec.unit)}`;
    const w = 11 + ctx.measureText(text).width + 10;
    if (lx > PAD.left && lx + w > width) {
      lx = PAD.left;
      row++;
    }
    legend.push({ x: lx, y: 8 + row * LEGEND_ROW, text, color: s.color });
    lx += w;
  }
  const padTop = 10 + (row + 1) * LEGEND_ROW - 4;
  const w = width - PAD.left - PAD.right;
  const h = Math.max(10, height - padTop - PAD.bottom);

  ctx.lineWidth = 1;
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'right';
  for (const f of [0, 0.5, 1]) {
    const y = padTop + h - f * h;
    ctx.strokeStyle = '#1e293b';
    ctx.beginPath();
    ctx.moveTo(PAD.left, y);
    ctx.lineTo(PAD.left + w, y);
    ctx.stroke();
    ctx.fillStyle = '#64748b';
    ctx.fillText(format(max * f, spec.unit), PAD.left - 4, y);
  }

  ctx.lineWidth = 1.5;
  ctx.lineJoin = 'round';
  spec.series.forEach((s, i) => {
    const points = plot(columns[i], times, { t0, t1, max, width: w, height: h });
    ctx.strokeStyle = s.color;
    ctx.beginPath();
    let pen = false;
    for (const p of points) {
      if (p === null || p.x < 0) {
        pen = false;
        continue;
      }
      if (pen) ctx.lineTo(PAD.left + p.x, padTop + p.y);
      else ctx.moveTo(PAD.left + p.x, padTop + p.y);
      pen = true;
    }
    ctx.stroke();
  });

  ctx.textAlign = 'left';
  for (const l of legend) {
    ctx.fillStyle = l.color;
    ctx.fillRect(l.x, l.y - 2, 8, 3);
    ctx.fillStyle = '#cbd5e1';
    ctx.fillText(l.text, l.x + 11, l.y);
  }
}
