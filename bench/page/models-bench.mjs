// The page side of bench/models.mjs: loads the engines of bench/page/models-engines.mjs for this
// page's thread count, keeps each workload's timing input, and times one run at a time. The runner
// drives it through playwright (window.modelsBench), one call per timed run, so it can interleave
// settings and pages.
import { ENGINES } from './models-engines.mjs';

const loaded = new Map(); // "workload/engine/variant" -> {run, info}
const inputs = new Map(); // workload -> Float32Array (NHWC, batch 1)

window.modelsBench = {
  // What the runner records about this page: without cross-origin isolation ORT Web and TF.js fall
  // back to one thread silently, so a 2-thread figure would be a 1-thread one.
  facts() {
    return {
      crossOriginIsolated: self.crossOriginIsolated,
      visibility: document.visibilityState,
      hardwareConcurrency: navigator.hardwareConcurrency,
      userAgent: navigator.userAgent,
    };
  },
  async load({ workload, engine, variant, threads, files, shape }) {
    const e = ENGINES[engine];
    if (!e) throw new Error(`unknown engine ${engine} (have: ${Object.keys(ENGINES).join(', ')})`);
    if (!e.variants.includes(variant)) throw new Error(`${engine} has no variant ${variant} (has: ${e.variants.join(', ')})`);
    if (threads > 1 && !self.crossOriginIsolated) throw new Error('threads need a cross-origin isolated page');
    const t0 = performance.now();
    const handle = await e.load({ variant, threads, files, shape });
    loaded.set(`${workload}/${engine}/${variant}`, handle);
    return { name: e.name, loadMs: performance.now() - t0, ...handle.info };
  },
  setInput(workload, values) {
    inputs.set(workload, Float32Array.from(values));
  },
  // One output for the reference check (plain numbers, to travel back to the runner).
  async output(key, values) {
    return Array.from((await loaded.get(key).run(Float32Array.from(values))).output);
  },
  // One run on the workload's timing input, timed from the page: what a caller of the engine waits
  // for (`ms`), and the engine's own figure where it has one (`engineMs`).
  async time(key) {
    const { run } = loaded.get(key);
    const input = inputs.get(key.split('/')[0]);
    const t0 = performance.now();
    const r = await run(input);
    const ms = performance.now() - t0;
    return { ms, engineMs: r.engineMs ?? null };
  },
};
window.modelsBenchReady = true;
