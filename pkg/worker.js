// The runtime inside a dedicated module Web Worker (started by index.js): inference never blocks the
// page, and the threads build may block in Atomics.wait, which a page's main thread may not.
// Protocol: {id, type, args} in; {id, ok: true, result}, {id, ok: false, error: {code, message}} or
// {id, progress} out. Requests run one at a time in arrival order, except two handled on arrival,
// with no answer of their own: {type: 'cancel', args: {id}} aborts request `id` (an attack stops
// at its next slice; the cancelled request rejects with code 'aborted'), and {type: 'warm'}
// starts fetching and compiling the build that init with build 'auto' will choose, for a worker
// started before its page is ready to create the session (runtime.js, warm()).
// Typed arrays in results travel back transferred, not copied; so do a run's inputs (index.js).

import { createRuntime } from './runtime.js';
// runtime.js's own imports, named here too so that the worker fetches all three at once rather
// than one import level after the other (a worker's start is on the way to the first prediction).
import './errors.js';
import './session.js';

const runtime = createRuntime();
let queue = Promise.resolve();
// Per attack not yet answered: the controller a cancel aborts (no other request reads a signal).
const controllers = new Map();

const TYPED = ['logits', 'probabilities', 'original', 'adversarial', 'perturbation', 'ids', 'offsets', 'charOffsets', 'output', 'predicted', 'probability'];

function transferables(result) {
  const out = [];
  const add = (r) => {
    for (const k of TYPED) if (r?.[k]?.buffer) out.push(r[k].buffer);
  };
  // runMany answers with an array of run results.
  if (Array.isArray(result)) result.forEach(add);
  else add(result);
  return out;
}

async function handle({ id, type, args }, signal) {
  try {
    const onProgress = type === 'load' || type === 'attack' ? (progress) => self.postMessage({ id, progress }) : undefined;
    const result = await runtime.handle(type, args, onProgress, signal);
    self.postMessage({ id, ok: true, result }, transferables(result));
  } catch (e) {
    self.postMessage({ id, ok: false, error: { code: e.code, message: e.message } });
  }
}

self.addEventListener('message', ({ data }) => {
  if (typeof data?.type !== 'string' || data.type.startsWith('wasm_bindgen_worker_')) return;
  if (data.type === 'cancel') return void controllers.get(data.args?.id)?.abort();
  if (data.type === 'warm') return void runtime.warm();
  let signal;
  if (data.type === 'attack') {
    const controller = new AbortController();
    controllers.set(data.id, controller);
    signal = controller.signal;
  }
  queue = queue.then(() => handle(data, signal));
  if (signal) queue = queue.finally(() => controllers.delete(data.id));
});
