// Two small inline-SVG charts (no library): accuracy by width from the model file's eval table, and
// the inference time measured on this device by width. Colours come from style.css classes.

const NS = 'http://www.w3.org/2000/svg';
const W = 320;
const H = 170;
const M = { left: 44, right: 8, top: 16, bottom: 30 };
const WIDTHS = [1, 2, 3, 4, 5, 6, 7, 8];

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const x = (w) => M.left + ((w - 0.5) / WIDTHS.length) * (W - M.left - M.right);

/** An empty chart with the width axis; `yTicks` are [value, label] at heights y(value). */
function frame(title, y, yTicks, yName, current) {
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart-svg' });
  svg.append(el('title', {}, title));
  for (const [v, label] of yTicks) {
    svg.append(el('line', { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(el('text', { x: M.left - 4, y: y(v) + 3, class: 'tick', 'text-anchor': 'end' }, label));
  }
  for (const w of WIDTHS) {
    const cls = w === current ? 'tick current' : 'tick';
    svg.append(el('text', { x: x(w), y: H - M.bottom + 13, class: cls, 'text-anchor': 'middle' }, String(w)));
  }
  svg.append(el('text', { x: (M.left + W - M.right) / 2, y: H - 3, class: 'axis-name', 'text-anchor': 'middle' }, 'weight bits'));
  svg.append(el('text', { x: 10, y: M.top - 5, class: 'axis-name' }, yName));
  return svg;
}

function niceStep(span, count) {
  const raw = span / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
}

function ticks(lo, hi, count, fmt) {
  const step = niceStep(hi - lo || 1, count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step / 1e6; v += step) out.push([v, fmt(v)]);
  return out;
}

const METRICS = { f1: 'F1', exact_match: 'exact match' };

/**
 * The first eval entry per width (eval: [{dataset, metric?, n, accuracy: [[w, score]]}]); null or []
 * says none stored. `unit` and `split` name what `n` counts and where it was measured.
 */
export function renderAccuracy(box, evalTable, current, { unit = 'images', split = 'test' } = {}) {
  box.replaceChildren();
  const table = evalTable?.[0];
  if (!table?.accuracy?.length) {
    box.append(Object.assign(document.createElement('p'), { className: 'caption', textContent: 'This model file stores no accuracy table.' }));
    return '';
  }
  const pts = table.accuracy.map(([w, a]) => [w, a * 100]).sort((a, b) => a[0] - b[0]);
  const vals = pts.map((p) => p[1]);
  let lo = Math.min(...vals);
  let hi = Math.max(...vals);
  const pad = Math.max((hi - lo) * 0.15, 0.1);
  lo = Math.max(0, lo - pad);
  hi = Math.min(100, hi + pad);
  const y = (v) => M.top + ((hi - v) / (hi - lo)) * (H - M.top - M.bottom);
  const digits = hi - lo < 2 ? 1 : 0;
  const summary = pts.map(([w, a]) => `${w} bits ${a.toFixed(2)}%`).join(', ');
  const metric = table.metric ? METRICS[table.metric] ?? table.metric : 'accuracy';
  const title = `${split === 'test' ? 'Test ' : ''}${metric} by weight width on ${table.dataset} (${table.n} ${unit}): ${summary}`;
  const svg = frame(title[0].toUpperCase() + title.slice(1), y, ticks(lo, hi, 4, (v) => `${v.toFixed(digits)}%`), `${metric}, ${table.dataset}${split === 'test' ? ' test set' : ''} (n=${table.n})`, current);
  svg.append(el('polyline', { points: pts.map(([w, a]) => `${x(w)},${y(a)}`).join(' '), class: 'line' }));
  for (const [w, a] of pts) {
    svg.append(el('circle', { cx: x(w), cy: y(a), r: w === current ? 4.5 : 3, class: w === current ? 'dot current' : 'dot', 'data-width': w }));
  }
  const cur = pts.find(([w]) => w === current);
  if (cur) svg.append(el('text', { x: x(cur[0]), y: y(cur[1]) - 8, class: 'value', 'text-anchor': 'middle' }, `${cur[1].toFixed(2)}%`));
  box.append(svg);
  return summary;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Median measured inference time per width; `runs` maps width -> [ms]. Returns {width: median}. */
export function renderLatency(box, runs, current) {
  box.replaceChildren();
  const med = Object.fromEntries([...runs].filter(([, v]) => v.length).map(([w, v]) => [w, median(v)]));
  const hi = Math.max(0.01, ...Object.values(med)) * 1.15;
  const y = (v) => M.top + ((hi - v) / hi) * (H - M.top - M.bottom);
  const summary = Object.entries(med).map(([w, m]) => `${w} bits ${m.toFixed(2)} ms`).join(', ') || 'no runs yet';
  const svg = frame(`Measured inference time by weight width on this device: ${summary}`, y, ticks(0, hi, 4, (v) => (hi < 1 ? v.toFixed(2) : hi < 10 ? v.toFixed(1) : v.toFixed(0))), 'ms per inference (median)', current);
  const bw = ((W - M.left - M.right) / WIDTHS.length) * 0.6;
  for (const w of WIDTHS) {
    if (med[w] === undefined) continue;
    const top = y(med[w]);
    svg.append(el('rect', { x: x(w) - bw / 2, y: top, width: bw, height: y(0) - top, class: w === current ? 'bar current' : 'bar', 'data-width': w, 'data-ms': med[w].toFixed(3) }));
    svg.append(el('text', { x: x(w), y: top - 3, class: 'value small', 'text-anchor': 'middle' }, med[w] < 10 ? med[w].toFixed(2) : med[w].toFixed(0)));
  }
  box.append(svg);
  return med;
}
