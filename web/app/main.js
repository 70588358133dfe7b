// The demo page: loads a model in the page's session (boot.js: on this thread) and classifies a
// drawing, a test image or an image file at the chosen width; switching width re-runs the same
// input at once. What takes long (attacks, and Auto's timing of this device) runs on the same model
// in a worker session that mirrors the page's (twinSession), so the page never stalls for it.
//
// URL parameters (for trying builds and for the e2e tests):
//   ?model=<key>     start with a shipped model: mnist (default) or fashion
//   ?model=<url>     load another .anybit file, shown with the digit test images
//   ?build=<variant> force scalar | simd | relaxed | threads instead of auto-detection
//   ?threads=<n>     thread count: more than one runs the threads build (the page's thread leads
//                    its pool; the text demo's worker takes the same count)
//   ?width=<bits>    start at this width and download only the bit planes it needs (HTTP Range);
//                    a wider width picked later fetches the missing planes
//   ?cf=<url>        the counterfactual demo's model (text.js; default models/counterfactual.anybit)
//   ?cf-width=<bits> start the counterfactual model at this width (progressive, as ?width)

import { createSession } from '../anybit/index.js';
import { customUrl, params, startKey, starting, startWidth, takeFirstSamples, threads } from './boot.js';
import { renderAccuracy, renderLatency } from './charts.js';
import { Pad } from './draw.js';
import { loadSamples, toInput } from './idx.js';
import { decodeImageFile } from './imagefile.js';
import { MODELS } from './models.js';
import * as view from './view.js';

// The session (the npm package's, pkg/, served from anybit/) was started by boot.js, before this
// module graph was even loaded.
let client = null;

// The worker twin of the page's session: {session: its promise, url: the model it has or is
// loading, loaded: the promise of the session once that model is in}, or null before first use.
let twin = null;

// Latency samples kept per width for the chart's median.
const KEEP_RUNS = 50;

const state = {
  key: startKey,
  url: null, // of the loaded model
  gen: 0, // bumped per model load; results of an older load are dropped
  info: null,
  labels: null,
  samples: [],
  input: null, // {kind: 'sample'|'drawing'|'file', key, index?, image?, options?, what}
  prev: null, // {key, width, label} of the last shown result
  runs: new Map(), // width -> [ms]
  last: null, // {ms, roundTrip}
  running: false,
  dirty: false,
  drawings: 0,
  files: 0,
  firstShown: false,
  auto: false,
  calibration: null, // the twin holding a calibration of this model, if any
  saving: false, // Auto's budget is halved for a low battery
  calibrations: 0, // of the loaded model, shown with Auto's decision
};

const $ = (id) => document.getElementById(id);
const pad = new Pad($('pad'), onDraw);
// The adversarial-example section (attack.js: the same model and inputs, in the twin session)
// once startSections has loaded it; until then it has nothing to follow.
let attack = null;
let attackReadyGen = -1; // the model load whose test images the attack section may use
let watching = false; // attack.watch() called: after a first prediction is on screen
const bits = (w) => `${w} bit${w === 1 ? '' : 's'}`;
const labelOf = (i) => state.labels?.[i] ?? String(i);

// What a new input changes on the page besides its result (the selected test image, the preview,
// the attack's source, the 'running' state) waits for the result, so that nothing needs rendering
// between sending a run and its answer: a frame rendered in between (several ms on this page)
// holds up the answer on this thread for longer than an MNIST run takes. A run still going after
// SHOW_PENDING_MS shows them anyway. (After a click, Chromium defers the answer until its next
// frame whatever the page does: BENCHMARKS.md, "The web app's own path".)
const SHOW_PENDING_MS = 100;
let pendingShow = null;

function flushShown() {
  const show = pendingShow;
  pendingShow = null;
  show?.();
}

// One run at a time; an input or width change during a run marks the state dirty and the current
// input is run again afterwards, so fast drawing or clicking shows the latest input, never a queue.
async function pump() {
  if (state.running) {
    state.dirty = true;
    return;
  }
  state.running = true;
  const slow = setTimeout(() => {
    flushShown();
    view.setState('running');
  }, SHOW_PENDING_MS);
  let ok = true;
  try {
    do {
      state.dirty = false;
      ok = await runCurrent();
    } while (state.dirty);
  } finally {
    clearTimeout(slow);
    state.running = false;
    flushShown();
  }
  // While another model loads (no info yet), the page stays in its loading state.
  if (ok && state.info) view.setState('ready');
}

async function runCurrent() {
  const { input, gen } = state;
  if (!input || !state.info) return true;
  const t0 = performance.now();
  let result;
  try {
    if (input.kind === 'sample') result = await client.run(toInput(state.samples[input.index]));
    else result = await client.run(input.kind === 'drawing' ? pad.image() : input.image, input.options);
  } catch (e) {
    if (gen !== state.gen) return true;
    view.showError(e, 'Classification failed');
    return false;
  }
  // A newer model or input supersedes this result (the newer one runs next).
  if (gen !== state.gen || input !== state.input) return true;
  state.last = { ms: result.ms, roundTrip: performance.now() - t0 };
  flushShown();
  const runs = state.runs.get(result.width) ?? [];
  runs.push(result.ms);
  state.runs.set(result.width, runs.slice(-KEEP_RUNS));
  const label = labelOf(result.predicted);
  view.clearError();
  view.renderResult(result, state.labels, input.key);
  if (state.prev?.key !== input.key) view.renderChange(null);
  else if (state.prev.width !== result.width) view.renderChange(state.prev, { label });
  state.prev = { key: input.key, width: result.width, label };
  view.renderRuntime(state.info, state.last);
  renderCharts(result.width);
  view.setState('running', `${input.what}: ${label} at ${bits(result.width)}, ${result.ms.toFixed(2)} ms.`);
  if (!state.firstShown) {
    state.firstShown = true;
    // Read by the e2e tests: navigation start to the first prediction written to the page, and to
    // the end of the frame that paints it (the task after that frame's animation callbacks).
    performance.mark('anybit:first-prediction');
    requestAnimationFrame(() => setTimeout(() => performance.mark('anybit:first-prediction-painted')));
  }
  return true;
}

// The accuracy chart changes only with the model and the width, the latency chart with every run:
// redrawing an unchanged chart per prediction only costs the next frame.
let accuracyShown = null;
function renderCharts(width) {
  const key = `${state.gen}:${width}`;
  if (accuracyShown !== key) {
    renderAccuracy($('chart-accuracy'), state.info.eval, width);
    accuracyShown = key;
  }
  renderLatency($('chart-latency'), state.runs, width);
}

// `show`: the page's view of the new input, shown with its result (flushShown).
function setInput(input, show = null) {
  state.input = input;
  const before = pendingShow;
  pendingShow = () => {
    before?.();
    if (input.kind !== 'sample') view.selectSample(state.samples, -1);
    show?.();
  };
  return pump();
}

function pickSample(index) {
  return setInput({ kind: 'sample', key: `sample:${index}`, index, what: `Test image ${index + 1}` }, () => {
    view.selectSample(state.samples, index, state.labels);
    attack?.followSample(index);
  });
}

function onDraw(final) {
  if (!state.info) return;
  // The pad's pixels are read when the run starts, so a run always sees the latest strokes.
  const show = final ? () => view.showInput($('pad'), 'Your drawing (what the model sees is cropped, scaled to 20x20 and centred by mass)') : null;
  setInput({ kind: 'drawing', key: `drawing:${++state.drawings}`, options: { fit: 'mnist' }, what: 'Your drawing' }, show);
}

function clearPad() {
  pad.clear();
  if (state.input?.kind === 'drawing') {
    pendingShow = null;
    state.input = null;
    state.prev = null;
    view.clearResult('Pad cleared: draw a digit or pick a test image.');
    view.showInput(null, 'Nothing to classify');
  }
}

async function useFile(file) {
  if (!file || !state.info) return;
  const entry = MODELS[state.key];
  let decoded;
  try {
    decoded = await decodeImageFile(file, { square: entry.fit === 'stretch' });
  } catch (e) {
    view.showError(e, `Could not use ${file.name || 'that file'}`);
    return;
  }
  const how = decoded.invert ? 'dark on light, inverted for the model' : 'light on dark';
  setInput({
    kind: 'file',
    key: `file:${++state.files}`,
    image: decoded.image,
    options: { invert: decoded.invert, fit: entry.fit },
    what: file.name,
  }, () => view.showInput(decoded.canvas, `${file.name} (${decoded.image.width}x${decoded.image.height}, ${how})`));
}

// Auto: calibrate once per loaded model (the twin times the model's kernels at every width, off
// the page's thread), then ask the policy for the budget in the box, switch the page's session to
// its width and thread count and re-run the input.
async function pickAuto(note = null) {
  const { gen } = state;
  state.auto = true;
  const asked = Number($('budget').value);
  const saving = asked > 0 && batteryLow();
  const budget = saving ? asked / 2 : asked;
  try {
    const timer = await twinSession();
    if (gen !== state.gen) return;
    // A twin started anew (the one before failed) has no calibration of its own.
    if (state.calibration !== timer) {
      await timer.calibrate(5);
      if (gen !== state.gen) return;
      state.calibration = timer;
      state.calibrations += 1;
    }
    const decision = await timer.decide(budget > 0 ? { latencyMs: budget } : {});
    if (gen !== state.gen || !state.auto) return;
    const power = saving ? `battery at ${Math.round(battery.level * 100)}% and discharging: the ${asked} ms budget is halved to ${budget} ms, so Auto takes a width that does the work in fewer cycles` : null;
    view.renderDecision(decision, (w) => median(state.runs.get(w)), { note, power, budget, calibrations: state.calibrations });
    await client.setThreads(decision.threads);
    if (gen !== state.gen) return;
    await pickWidth(decision.width, { keepAuto: true });
  } catch (e) {
    view.showError(e, 'The precision policy could not decide');
  }
}

// Battery: low (at most LOW_BATTERY) and discharging, Auto decides with half the latency budget
// (a narrower width does the same work in fewer cycles); on the charger again, the full budget.
// Chromium has navigator.getBattery; where it is absent the budget is always the full one.
const LOW_BATTERY = 0.2;
let battery = null;
navigator.getBattery?.().then((b) => {
  battery = b;
  state.saving = batteryLow();
  for (const ev of ['levelchange', 'chargingchange']) b.addEventListener(ev, onPower);
}, () => {});

function batteryLow() {
  return battery != null && !battery.charging && battery.level <= LOW_BATTERY;
}

function onPower() {
  const low = batteryLow();
  if (low === state.saving) return;
  state.saving = low;
  if (!state.auto) return;
  pickAuto(low ? 'the battery ran low, so the latency budget was halved' : 'the battery is charging or no longer low, so the full budget applies again');
}

// The package's model info, with the build the session runs (the panel shows both).
function withBuild(info) {
  return { ...info, build: client.build, reason: client.build.reason };
}

function median(xs) {
  if (!xs?.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function pickWidth(width, { keepAuto = false } = {}) {
  if (width === 'auto') return pickAuto();
  const { gen } = state;
  try {
    if (!keepAuto) {
      state.auto = false;
      view.hideDecision();
      // A width picked by hand runs with the whole pool again (Auto may have chosen one thread).
      if (state.info.threads !== state.poolThreads) await client.setThreads(state.poolThreads);
    }
    const info = await client.setWidth(width);
    if (gen !== state.gen) return;
    state.info = withBuild(info);
    view.renderRuntime(state.info, state.last);
    view.renderPlanes(state.info);
  } catch (e) {
    view.showError(e, `Could not switch to ${bits(width)}`);
    return;
  }
  pump();
}

async function loadModel(key, url = MODELS[key].url) {
  const entry = MODELS[key];
  const gen = ++state.gen;
  pendingShow = null;
  Object.assign(state, { key, url, info: null, input: null, prev: null, last: null, runs: new Map(), auto: false, calibration: null, calibrations: 0 });
  pad.clear();
  attack?.reset(entry);
  view.clearResult();
  view.showPad(entry.draw, entry.name);
  $('widths').disabled = true;
  view.setState('loading', `Loading ${entry.name} (${url})…`);
  const samplesP = takeFirstSamples(key) ?? loadSamples(entry.samples.images, entry.samples.labels);
  samplesP.catch(() => {}); // reported below, after the model
  let info;
  try {
    client = await starting;
    info = await client.load(url, {
      width: startWidth,
      onProgress: (p) => {
        if (gen === state.gen) view.renderProgress(entry.name, p);
      },
    });
  } catch (e) {
    if (gen !== state.gen) return;
    const what = e.code === 'runtime_unavailable' ? 'Could not start the runtime' : `Could not load the model ${url}`;
    view.showError(e, what);
    return;
  }
  if (gen !== state.gen) return;
  performance.mark('anybit:model-loaded');
  view.clearError();
  state.info = withBuild(info);
  info = state.info;
  state.poolThreads = info.threads;
  state.labels = info.labels ?? null;
  // The test images were asked for with the model and are in by now, as a rule.
  let samples = null;
  let failure = null;
  try {
    samples = await samplesP;
  } catch (e) {
    failure = { error: { code: 'fetch_failed', message: e.message }, what: 'Could not load the test images' };
  }
  if (gen !== state.gen) return;
  if (samples) {
    performance.mark('anybit:samples-loaded');
    const s0 = samples[0];
    if (String(info.inputShape) !== String([s0.height, s0.width, 1])) {
      const message = `the model takes inputs of shape [${info.inputShape}], the test images are [${s0.height},${s0.width},1]`;
      failure = { error: { code: 'shape_mismatch', message }, what: 'This model does not fit the test images' };
    }
  }
  // The first prediction is asked for before the panels below render.
  let first = null;
  if (!failure) {
    state.samples = samples;
    attackReadyGen = gen;
    attack?.ready();
    first = pickSample(0);
  }
  view.renderRuntime(info, null);
  view.renderPlanes(info);
  view.renderWidths(info, pickWidth);
  renderCharts(info.width);
  if (failure) {
    view.showError(failure.error, failure.what);
    return;
  }
  // The strip (100 small canvases) is drawn a frame after the first prediction: drawn in the same
  // task, it would hold up the frame that paints the prediction (BENCHMARKS.md, "Painted").
  await first;
  if (gen !== state.gen) return;
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r)));
  if (gen !== state.gen) return;
  watchAttacks();
  view.renderSamples(samples, pickSample, state.labels);
  if (state.input?.kind === 'sample') view.selectSample(samples, state.input.index, state.labels);
}

/**
 * A worker session with the page session's build, thread count and model: attacks (seconds of
 * gradient steps) and Auto's calibration (most of a second of timed passes) run there, so that
 * the page's thread stays free for drawing and classifying. Its timings stand for the page's
 * session: the same kernels on the same kind of thread. Started at the first attack or Auto (or
 * the attack section's first use, attack.js), and told to load each model it is asked for. A
 * start or load that fails is tried again at the next use.
 */
function twinSession() {
  const { url } = state;
  if (!twin) {
    const { variant, threadCount } = client.build;
    const session = createSession({ build: variant, threads: threadCount });
    twin = { session, url: null, loaded: null };
    session.catch(() => {
      twin = null;
    });
  }
  if (twin.url !== url) {
    const mine = twin;
    mine.url = url;
    mine.loaded = mine.session.then(async (s) => {
      await s.load(url);
      return s;
    });
    mine.loaded.catch(() => {
      if (mine.url === url) mine.url = null;
    });
  }
  return twin.loaded;
}

function wireInputs() {
  $('clear').addEventListener('click', clearPad);
  // A new budget re-decides at once while Auto is on (the weights stay in memory).
  $('budget').addEventListener('change', () => {
    if (state.auto) pickAuto();
  });
  // Back from a hidden tab the device may be doing other work (or have changed power mode):
  // Auto measures again and re-decides, switching live.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible' || !state.auto) return;
    state.calibration = null;
    pickAuto('the page is visible again, so this device was calibrated anew');
  });
  const file = $('file');
  file.addEventListener('change', () => {
    useFile(file.files[0]);
    file.value = ''; // choosing the same file again is a new input
  });
  const card = $('input-card');
  card.addEventListener('dragover', (e) => {
    e.preventDefault();
    card.classList.add('dragging');
  });
  card.addEventListener('dragleave', () => card.classList.remove('dragging'));
  card.addEventListener('drop', (e) => {
    e.preventDefault();
    card.classList.remove('dragging');
    useFile(e.dataTransfer?.files?.[0]);
  });
}

// Marks on the way to the first prediction (the e2e tests print them).
starting.then(({ build }) => {
  performance.mark('anybit:runtime-ready');
  view.renderBuild(build, build.reason);
}, () => {});
// A model given by URL is none of the listed ones, so every radio button can switch to its model.
view.renderModels(MODELS, customUrl ? null : state.key, (key) => loadModel(key));
wireInputs();
loadModel(state.key, customUrl).finally(startSections);

// The twin starts at the attack section's first use once a prediction is on screen (attack.js).
function watchAttacks() {
  if (!attack || watching || !state.firstShown) return;
  watching = true;
  attack.watch();
}

/**
 * The attack and text sections, loaded once the first model's load has ended (its prediction is
 * painted, or it failed): their modules are fetched and compiled only then, so they do not compete
 * with the first prediction for this thread (BENCHMARKS.md, "First prediction"). Their forms stay
 * disabled until then, as they are until their models are in. The attack section takes up the
 * model and the test image the page has by then.
 */
async function startSections() {
  let modules;
  try {
    modules = await Promise.all([import('./attack.js'), import('./text.js')]);
  } catch (e) {
    view.showError({ code: 'fetch_failed', message: e.message }, 'Could not load the attack and text sections');
    return;
  }
  const [{ AttackDemo }, { TextDemo }] = modules;
  attack = new AttackDemo({
    session: twinSession,
    model: () => ({ info: state.info, labels: state.labels, samples: state.samples, entry: MODELS[state.key] }),
    pad,
  });
  attack.reset(MODELS[state.key]);
  if (attackReadyGen === state.gen) attack.ready();
  if (state.input?.kind === 'sample') attack.followSample(state.input.index);
  watchAttacks();
  // The counterfactual demo has its own session and model, loaded when its section is reached.
  new TextDemo({
    build: params.get('build') ?? 'auto',
    threads,
    url: params.get('cf') ?? undefined,
    width: params.has('cf-width') ? Number(params.get('cf-width')) : undefined,
  });
}
