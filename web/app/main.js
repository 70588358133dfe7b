// The demo page: loads a model in the runtime worker, classifies test images at the chosen width.
//
// URL parameters (for trying builds and for the e2e tests):
//   ?model=<url>     load another .anybit file (test images still from the default model)
//   ?build=<variant> force scalar | simd | relaxed | threads instead of auto-detection
//   ?threads=<n>     thread count for the threads build

import { AnybitClient } from '../client.js';
import { loadSamples, toInput } from './idx.js';
import { DEFAULT_MODEL, MODELS } from './models.js';
import * as view from './view.js';

const params = new URLSearchParams(location.search);
const entry = MODELS[DEFAULT_MODEL];
const modelUrl = params.get('model') ?? entry.url;
const threads = params.has('threads') ? Number(params.get('threads')) : undefined;

const state = { info: null, samples: [], sample: 0, busy: Promise.resolve() };

const client = new AnybitClient(new URL('../worker.js', import.meta.url), {
  variant: params.get('build') ?? 'auto',
  threads,
});

// Runs are queued so that a fast click sequence shows the last one, never an interleaving.
function serially(task) {
  state.busy = state.busy.then(task, task);
  return state.busy;
}

async function classify(sample = state.sample) {
  if (!state.info || !state.samples.length) return;
  view.setState('running');
  try {
    const result = await client.run(toInput(state.samples[sample]));
    view.clearError();
    view.renderResult(result, state.info.labels, sample);
    view.renderRuntime(state.info, result.ms);
    const bits = `${result.width} bit${result.width === 1 ? '' : 's'}`;
    view.setState('ready', `Classified test image ${sample + 1} at ${bits} in ${result.ms.toFixed(2)} ms.`);
  } catch (e) {
    view.showError(e, 'Classification failed');
  }
}

function pickSample(index) {
  state.sample = index;
  view.selectSample(state.samples, index);
  return serially(() => classify(index));
}

function pickWidth(width) {
  return serially(async () => {
    try {
      state.info = { ...state.info, ...(await client.setWidth(width)) };
      view.renderRuntime(state.info);
    } catch (e) {
      view.showError(e, `Could not switch to ${width} bits`);
      return;
    }
    await classify();
  });
}

async function start() {
  view.setState('loading', `Loading ${modelUrl}…`);
  client.ready.then(({ build, reason }) => view.renderBuild(build, reason), () => {});
  const samplesP = loadSamples(entry.samples.images, entry.samples.labels);
  try {
    state.info = await client.load({ url: modelUrl }, ({ loaded, total }) => {
      const of = total ? ` of ${(total / 1024).toFixed(0)} KiB` : '';
      view.setState('loading', `Loading ${modelUrl}: ${(loaded / 1024).toFixed(0)} KiB${of}…`);
    });
  } catch (e) {
    view.showError(e, e.code === 'runtime_unavailable' ? 'Could not start the runtime' : `Could not load the model ${modelUrl}`);
    return;
  }
  view.clearError();
  view.renderRuntime(state.info);
  view.renderWidths(state.info, pickWidth);
  try {
    state.samples = await samplesP;
  } catch (e) {
    view.showError({ code: 'fetch_failed', message: e.message }, 'Could not load the test images');
    return;
  }
  const s0 = state.samples[0];
  if (String(state.info.inputShape) !== String([s0.height, s0.width, 1])) {
    const message = `the model takes inputs of shape [${state.info.inputShape}], the test images are [${s0.height},${s0.width},1]`;
    view.showError({ code: 'shape_mismatch', message }, 'This model does not fit the test images');
    return;
  }
  view.renderSamples(state.samples, pickSample);
  await pickSample(0);
}

start();
