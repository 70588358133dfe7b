// The runtime inside a dedicated module Web Worker (started by index.js): inference never blocks the
// page, and the threads build may block in Atomics.wait, which a page's main thread may not.
// Protocol: {id, type, args} in; {id, ok: true, result}, {id, ok: false, error: {code, message}} or
// {id, progress} out. Requests run one at a time in arrival order, except {type: 'cancel', args: {id}},
// which is handled on arrival: it aborts request `id` (an attack stops at its next slice) and gets no
// answer of its own (the cancelled request rejects with code 'aborted').

import { createRuntime } from './runtime.js';

const runtime = createRuntime();
let queue = Promise.resolve();
// Per request not yet answered: the controller a cancel aborts.
const controllers = new Map();

function transferables(result) {
  return ['logits', 'probabilities', 'original', 'adversarial', 'perturbation', 'ids', 'offsets', 'charOffsets', 'output', 'predicted', 'probability']
    .filter((k) => result?.[k]?.buffer)
    .map((k) => result[k].buffer);
}

async function handle({ id, type, args }, signal) {
  try {
    const result = await runtime.handle(type, args, (progress) => self.postMessage({ id, progress }), signal);
    self.postMessage({ id, ok: true, result }, transferables(result));
  } catch (e) {
    self.postMessage({ id, ok: false, error: { code: e.code, message: e.message } });
  }
}

self.addEventListener('message', ({ data }) => {
  if (typeof data?.type !== 'string' || data.type.startsWith('wasm_bindgen_worker_')) return;
  if (data.type === 'cancel') return void controllers.get(data.args?.id)?.abort();
  const controller = new AbortController();
  controllers.set(data.id, controller);
  queue = queue.then(() => handle(data, controller.signal)).finally(() => controllers.delete(data.id));
});
