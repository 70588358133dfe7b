// Runs policy-check.mjs on one wasm build inside a worker (the threads build needs one).
import { check } from './policy-check.mjs';

self.onmessage = async ({ data: { variant, model, threads, checkMs } }) => {
  try {
    const mod = await import(`../../pkg/dist/${variant}/anybit.js`);
    await mod.default();
    if (threads > 1) await mod.initThreads(threads);
    const bytes = new Uint8Array(await (await fetch(`../../${model}`)).arrayBuffer());
    self.postMessage({ ok: true, report: check(mod, bytes, checkMs) });
  } catch (e) {
    self.postMessage({ ok: false, error: `${e.code ?? ''} ${e.message ?? e}`.trim() });
  }
};
