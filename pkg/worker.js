// The runtime inside a dedicated module Web Worker (started by index.js): inference never blocks the
// page, and the threads build may block in Atomics.wait, which a page's main thread may not.
// Protocol: {id, type, args} in; {id, ok: true, result}, {id, ok: false, error: {code, message}} or
// {id, progress: {loaded, total}} out. Requests run one at a time in arrival order.

import { createRuntime } from './runtime.js';

const runtime = createRuntime();
let queue = Promise.resolve();

function transferables(result) {
  return ['logits', 'probabilities'].filter((k) => result?.[k]?.buffer).map((k) => result[k].buffer);
}

async function handle({ id, type, args }) {
  try {
    const result = await runtime.handle(type, args, (progress) => self.postMessage({ id, progress }));
    self.postMessage({ id, ok: true, result }, transferables(result));
  } catch (e) {
    self.postMessage({ id, ok: false, error: { code: e.code, message: e.message } });
  }
}

self.addEventListener('message', ({ data }) => {
  if (typeof data?.type !== 'string' || data.type.startsWith('wasm_bindgen_worker_')) return;
  queue = queue.then(() => handle(data));
});
