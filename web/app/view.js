// DOM rendering for the demo page. No state lives here: main.js passes in what to show.
// Styles are set through the CSSOM (el.style), which the page's CSP allows, never as attributes.

const $ = (id) => document.getElementById(id);

const VARIANT_NAMES = {
  scalar: 'scalar (no SIMD)',
  simd: 'SIMD128',
  relaxed: 'relaxed SIMD',
  threads: 'SIMD128 + threads',
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
      return 'Check that the model file exists next to this page and that the server is running.';
    case 'bad_magic': case 'unsupported_version': case 'truncated': case 'bad_layout':
    case 'bad_graph': case 'bad_shape': case 'bad_value': case 'limit_exceeded':
      return 'The file is not a valid .anybit model (damaged or incomplete). Download or export it again.';
    case 'runtime_unavailable':
      return 'This browser could not start the WebAssembly runtime. Try a current Chrome, Firefox or Safari.';
    case 'unsupported_width':
      return 'Pick one of the widths this model was exported with.';
    default:
      return 'Reload the page to try again.';
  }
}

/** The build panel rows; known as soon as the worker has loaded a build, before any model. */
export function renderBuild(build, reason) {
  $('rt-build').textContent = VARIANT_NAMES[build.variant] ?? build.variant;
  $('rt-build').dataset.variant = build.variant;
  $('rt-threads').textContent = String(build.threadCount);
  $('rt-threads').dataset.threads = String(build.threadCount);
  $('rt-reason').textContent = reason;
}

export function renderRuntime(info, latencyMs) {
  renderBuild(info.build, info.reason);
  $('rt-model').textContent = info.name;
  $('rt-width').textContent = `${info.width}-bit weights`;
  $('rt-width').dataset.width = String(info.width);
  $('rt-latency').textContent = latencyMs == null ? '–' : `${latencyMs.toFixed(2)} ms`;
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
  set.disabled = false;
}

export function drawGrey(canvas, sample) {
  canvas.width = sample.width;
  canvas.height = sample.height;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(sample.width, sample.height);
  sample.pixels.forEach((p, i) => img.data.set([p, p, p, 255], 4 * i));
  ctx.putImageData(img, 0, 0);
}

/** The strip of test images; each is an option that runs on click or Enter/Space. */
export function renderSamples(samples, onPick) {
  const box = $('samples');
  box.replaceChildren();
  samples.forEach((s, i) => {
    const c = document.createElement('canvas');
    c.className = 'sample';
    c.tabIndex = 0;
    c.setAttribute('role', 'option');
    c.setAttribute('aria-label', `Test image ${i + 1}, labelled ${s.label}`);
    c.dataset.index = String(i);
    c.dataset.label = String(s.label);
    drawGrey(c, s);
    c.addEventListener('click', () => onPick(i));
    c.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        onPick(i);
      }
    });
    box.append(c);
  });
}

export function selectSample(samples, index) {
  document.querySelectorAll('#samples .sample').forEach((c) => c.setAttribute('aria-selected', String(Number(c.dataset.index) === index)));
  drawGrey($('preview'), samples[index]);
  $('sample-caption').textContent = `Test image ${index + 1} (label ${samples[index].label})`;
}

/** Shows a run's outcome; `sample` is the index of the test image it was for (for tests and UI). */
export function renderResult(result, labels, sample) {
  const name = (i) => labels?.[i] ?? String(i);
  const out = $('prediction');
  out.dataset.sample = String(sample);
  out.textContent = `${name(result.predicted)}  (${(result.probabilities[result.predicted] * 100).toFixed(1)}%)`;
  out.dataset.class = String(result.predicted);
  out.dataset.width = String(result.width);
  const list = $('probabilities');
  list.replaceChildren();
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
