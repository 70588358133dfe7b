// DOM rendering for the demo page. No state lives here: main.js passes in what to show.
// Elements carry data-* attributes with the raw values shown (class, width, build...), which the
// e2e tests read instead of parsing text.
// Styles are set through the CSSOM (el.style), which the page's CSP allows, never as attributes.

const $ = (id) => document.getElementById(id);

const VARIANT_NAMES = {
  scalar: 'scalar (no SIMD)',
  simd: 'SIMD128',
  relaxed: 'relaxed SIMD',
  threads: 'relaxed SIMD + threads',
};

export function setState(state, status) {
  document.body.dataset.state = state;
  if (status !== undefined) $('status').textContent = status;
}

/** Shows an error with its code and what the user can do about it. */
export function showError(err, context) {
  const box = $('error');
  box.replaceChildren();
  const title = document.createElement('strong');
  title.textContent = context;
  const msg = document.createElement('p');
  msg.textContent = err.message;
  const hint = document.createElement('p');
  hint.className = 'hint';
  hint.textContent = hintFor(err.code);
  const code = document.createElement('code');
  code.textContent = err.code ?? 'error';
  box.append(title, ' ', code, msg, hint);
  box.dataset.code = err.code ?? 'error';
  box.hidden = false;
  setState('error', `${context}.`);
}

export function clearError() {
  $('error').hidden = true;
}

function hintFor(code) {
  switch (code) {
    case 'fetch_failed':
      return 'Check that the server is still running and that the file exists next to this page (scripts/run.sh builds and serves dist/ with every model; a plain trunk build writes it too). Then reload the page, or pick the other model.';
    case 'bad_image':
      return 'Choose a PNG, JPEG, GIF, WebP or BMP image, or draw on the pad, or pick a test image.';
    case 'bad_magic': case 'unsupported_version': case 'truncated': case 'bad_layout':
    case 'bad_graph': case 'bad_shape': case 'bad_value': case 'limit_exceeded':
      return 'The file is not a valid .anybit model (damaged or incomplete). Export or copy it again, or pick the other model.';
    case 'corrupt':
      return 'The downloaded bytes do not match the checksums the model file records: the download or the copy on the server is damaged. Reload the page; if it persists, copy the model file to the server again.';
    case 'runtime_unavailable':
      return 'This browser could not start the WebAssembly runtime. Try a current Chrome, Firefox or Safari; if you host this page, check that the anybit/ folder (the runtime and its wasm builds) was deployed with it.';
    case 'unsupported_width':
      return 'Pick one of the widths this model was exported with.';
    default:
      return 'Reload the page to try again.';
  }
}

/** The build panel rows; known as soon as the session has loaded a build, before any model. */
export function renderBuild(build, reason) {
  $('rt-build').textContent = VARIANT_NAMES[build.variant] ?? build.variant;
  $('rt-build').dataset.variant = build.variant;
  $('rt-threads').textContent = String(build.threadCount);
  $('rt-threads').dataset.threads = String(build.threadCount);
  $('rt-reason').textContent = reason;
}

/** `last` is the latest run: {ms: inference in the engine, roundTrip: as the page waited for it} or null. */
export function renderRuntime(info, last) {
  renderBuild(info.build, info.reason);
  $('rt-model').textContent = info.name;
  const a = info.widths.find((x) => x.w === info.width)?.a;
  $('rt-width').textContent = `${info.width}-bit weights${a ? `, ${a}-bit activations` : ''}`;
  $('rt-width').dataset.width = String(info.width);
  // A session may use fewer threads than the pool has (Session.setThreads).
  if (info.threads !== info.build.threadCount) $('rt-threads').textContent = `${info.threads} of ${info.build.threadCount}`;
  $('rt-threads').dataset.threads = String(info.threads);
  const lat = $('rt-latency');
  if (last) {
    lat.textContent = `${last.ms.toFixed(2)} ms inference, ${last.roundTrip.toFixed(2)} ms as the page waits for it`;
    lat.dataset.ms = String(last.ms);
    lat.dataset.roundTrip = String(last.roundTrip); // read by bench/trip.mjs --app
  } else {
    lat.textContent = '–';
    delete lat.dataset.ms;
    delete lat.dataset.roundTrip;
  }
}

/** Download progress of a model: bytes and how many bit planes (most significant first) are in. */
export function renderProgress(name, { loaded, total, planes, planeTotal }) {
  const box = $('load');
  box.hidden = false;
  const bar = $('load-bar');
  bar.max = total || loaded || 1;
  bar.value = loaded;
  const kib = (n) => (n / 1024).toFixed(1);
  const bytes = total ? `${kib(loaded)} of ${kib(total)} KiB` : `${kib(loaded)} KiB`;
  const pl = planeTotal ? `, ${planes} of ${planeTotal} bit planes` : '';
  $('load-text').textContent = `${name}: ${bytes}${pl}`;
  box.dataset.planes = String(planes ?? 0);
}

/** A run's progress bar (`<progress id=barId>`) and its text; data-done/-total for the tests. */
export function renderRunProgress(barId, textId, done, total, text) {
  const bar = $(barId);
  bar.max = total || 1;
  bar.value = done;
  bar.dataset.done = String(done);
  bar.dataset.total = String(total);
  $(textId).textContent = text;
}

export function hideProgress() {
  $('load').hidden = true;
}

/**
 * The planes row: a width of b bits needs the first b planes; a progressive load has fetched only
 * those of its width so far (info.transfer: bytes received, and whether by Range requests).
 */
export function renderPlanes(info) {
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  const t = info.transfer;
  const how = t ? ` (${kib(t.bytes)} fetched${t.ranged ? ' by Range requests' : ', whole file'})` : '';
  $('rt-planes').textContent = `${info.planesLoaded} of 8 weight bit planes loaded${how}`;
  $('rt-planes').dataset.planes = String(info.planesLoaded);
}

/** Radio buttons for the models; `onChange(key)` on a change. */
export function renderModels(models, current, onChange) {
  const set = $('models');
  set.querySelectorAll('label').forEach((l) => l.remove());
  for (const [key, m] of Object.entries(models)) {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'model';
    input.value = key;
    input.checked = key === current;
    input.addEventListener('change', () => onChange(key));
    label.append(input, ` ${m.name}`);
    set.append(label);
  }
}

/** The drawing pad is offered only for models where drawing makes sense. */
export function showPad(shown, modelName) {
  $('draw-area').hidden = !shown;
  $('model-note').textContent = shown
    ? 'Draw a digit, pick a test image or drop an image file.'
    : `Drawing is for the digits model; for ${modelName}, pick a test image or drop a photo (one item, plain background).`;
}

/** Radio buttons for widths 8..1; those the model lacks are shown disabled. */
export function renderWidths(info, onChange) {
  const set = $('widths');
  const supported = new Set(info.widths.map((w) => w.w));
  set.querySelectorAll('label').forEach((l) => l.remove());
  for (let w = 8; w >= 1; w--) {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'width';
    input.value = String(w);
    input.disabled = !supported.has(w);
    input.checked = w === info.width;
    input.addEventListener('change', () => onChange(w));
    label.append(input, ` ${w}`);
    label.title = supported.has(w) ? `${w}-bit weights` : `this model has no ${w}-bit variant`;
    set.append(label);
  }
  const label = document.createElement('label');
  const input = document.createElement('input');
  input.type = 'radio';
  input.name = 'width';
  input.value = 'auto';
  input.addEventListener('change', () => onChange('auto'));
  label.append(input, ' Auto');
  label.title = 'the precision policy picks the width for the latency budget, from this device\'s measured speed';
  set.append(label);
  set.disabled = false;
  hideDecision();
}

/**
 * The policy's decision: the reasons (which name the build, threads and chosen width), then one
 * row per width with its predicted latency, the median measured here so far, and stored accuracy.
 */
export function renderDecision(d, measured, { note = null, power = null, budget = 0, calibrations = 1 } = {}) {
  const box = $('auto-decision');
  box.hidden = false;
  box.replaceChildren();
  box.dataset.width = String(d.width);
  box.dataset.calibrations = String(calibrations);
  box.dataset.budget = String(budget);
  box.dataset.decisions = String(Number(box.dataset.decisions ?? 0) + 1);
  const head = document.createElement('p');
  head.className = 'decision';
  head.textContent = `Auto chose ${d.width}-bit weights (${d.isa}, ${d.threads} thread${d.threads === 1 ? '' : 's'}).`;
  const reasons = document.createElement('ul');
  reasons.className = 'reasons';
  for (const r of power ? [power, ...d.reasons] : d.reasons) {
    const li = document.createElement('li');
    li.textContent = r;
    reasons.append(li);
  }
  const table = document.createElement('table');
  table.className = 'options';
  table.innerHTML = '<caption>Each width on this device</caption><thead><tr><th scope="col">bits</th><th scope="col">threads</th><th scope="col">predicted ms</th><th scope="col">measured ms</th><th scope="col">test accuracy</th><th scope="col">memory KiB</th></tr></thead>';
  const body = document.createElement('tbody');
  for (const o of d.options) {
    const tr = document.createElement('tr');
    if (o.width === d.width) tr.className = 'chosen';
    const m = measured(o.width);
    for (const text of [String(o.width), String(o.threads), o.predictedMs.toFixed(2), m == null ? '–' : m.toFixed(2),
      o.accuracy == null ? '–' : `${(o.accuracy * 100).toFixed(2)}%`,
      o.memoryBytes == null ? '–' : (o.memoryBytes / 1024).toFixed(0)]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
  }
  table.append(body);
  box.append(head, reasons, table);
  if (note) {
    const p = document.createElement('p');
    p.className = 'note';
    p.textContent = `Re-decided: ${note}.`;
    box.prepend(p);
  }
}

export function hideDecision() {
  const box = $('auto-decision');
  box.hidden = true;
  box.replaceChildren();
  delete box.dataset.width;
}

export function drawGrey(canvas, sample) {
  canvas.width = sample.width;
  canvas.height = sample.height;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(sample.width, sample.height);
  const d = img.data;
  sample.pixels.forEach((p, i) => {
    d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = p;
    d[4 * i + 3] = 255;
  });
  ctx.putImageData(img, 0, 0);
}

/**
 * The strip of test images, a listbox: one Tab stop (the selected image), arrow keys move between
 * images, Enter or Space (or a click) classifies one.
 */
export function renderSamples(samples, onPick, labels) {
  const box = $('samples');
  box.replaceChildren();
  const move = (from, by) => {
    const next = box.children[Math.max(0, Math.min(samples.length - 1, from + by))];
    for (const c of box.children) c.tabIndex = c === next ? 0 : -1;
    next.focus();
  };
  samples.forEach((s, i) => {
    const c = document.createElement('canvas');
    c.className = 'sample';
    c.tabIndex = i === 0 ? 0 : -1;
    c.setAttribute('role', 'option');
    c.setAttribute('aria-label', `Test image ${i + 1}, labelled ${labels?.[s.label] ?? s.label}`);
    c.dataset.index = String(i);
    c.dataset.label = String(s.label);
    drawGrey(c, s);
    c.addEventListener('click', () => onPick(i));
    c.addEventListener('keydown', (ev) => {
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: -i, End: samples.length }[ev.key];
      if (ev.key === 'Enter' || ev.key === ' ') onPick(i);
      else if (step !== undefined) move(i, step);
      else return;
      ev.preventDefault();
    });
    box.append(c);
  });
}

/** Marks test image `index` as the input (or none, for index -1) and shows it in the preview. */
export function selectSample(samples, index, labels) {
  // Only the images whose state changes are touched: every attribute set costs the next frame a
  // style check, and this runs on every pick.
  document.querySelectorAll('#samples .sample').forEach((c) => {
    const selected = Number(c.dataset.index) === index;
    if (c.getAttribute('aria-selected') !== String(selected)) c.setAttribute('aria-selected', String(selected));
    const tab = selected ? 0 : -1;
    if (index >= 0 && c.tabIndex !== tab) c.tabIndex = tab;
  });
  if (index < 0) return;
  drawGrey($('preview'), samples[index]);
  const label = samples[index].label;
  $('sample-caption').textContent = `Test image ${index + 1}, labelled ${labels?.[label] ?? label}`;
}

/** Shows a drawing or a decoded image file as the input (`source` is a canvas). */
export function showInput(source, caption) {
  const c = $('preview');
  c.width = 56;
  c.height = 56;
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, 56, 56);
  if (source) ctx.drawImage(source, 0, 0, 56, 56);
  $('sample-caption').textContent = caption;
}

/** Empties the prediction (no input). */
export function clearResult(message) {
  const out = $('prediction');
  out.textContent = '–';
  $('quick').textContent = '–';
  for (const k of ['class', 'width', 'sample', 'input']) delete out.dataset[k];
  $('change').textContent = message ?? '';
  $('probabilities').replaceChildren();
}

/** Says whether switching width changed the prediction: `prev` is {label, width} or null. */
export function renderChange(prev, now) {
  const el = $('change');
  if (!prev) {
    el.textContent = '';
    delete el.dataset.changed;
    return;
  }
  const same = prev.label === now.label;
  el.textContent = same
    ? `Same prediction as at ${prev.width} bits.`
    : `Changed from ${prev.label} at ${prev.width} bits.`;
  el.dataset.changed = String(!same);
}

/**
 * Shows a run's outcome. `input` names what it was for ("sample:3", "drawing:2", "file:1"); for a
 * test image, data-sample holds its index.
 */
export function renderResult(result, labels, input) {
  const name = (i) => labels?.[i] ?? String(i);
  const out = $('prediction');
  out.dataset.input = input;
  if (input.startsWith('sample:')) out.dataset.sample = input.slice(7);
  else delete out.dataset.sample;
  out.textContent = `${name(result.predicted)}  (${(result.probabilities[result.predicted] * 100).toFixed(1)}%)`;
  $('quick').textContent = `${name(result.predicted)} at ${result.width} bit${result.width === 1 ? '' : 's'}`;
  out.dataset.class = String(result.predicted);
  out.dataset.width = String(result.width);
  const list = $('probabilities');
  list.replaceChildren();
  list.classList.toggle('wide', result.probabilities.some((_, i) => name(i).length > 3));
  result.probabilities.forEach((p, i) => {
    const li = document.createElement('li');
    if (i === result.predicted) li.className = 'top';
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = name(i);
    const track = document.createElement('span');
    track.className = 'track';
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.inlineSize = `${(p * 100).toFixed(2)}%`;
    track.append(bar);
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = `${(p * 100).toFixed(1)}%`;
    li.append(label, track, value);
    li.setAttribute('aria-label', `${name(i)}: ${(p * 100).toFixed(1)} percent`);
    list.append(li);
  });
}
