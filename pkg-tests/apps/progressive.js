// Progressive loading and the policy from a page: a session loads a model at 2 bits (only the planes it needs,
// by HTTP Range), runs, then switches up to 8 bits (fetching the missing planes); a second session
// loads the whole file for comparison. Steps are separate calls so that the test can count the
// server's bytes between them.
import { createSession } from 'anybit';
// The runtime itself, to run it on the page's main thread: DevTools CPU throttling
// (Emulation.setCPUThrottlingRate) applies to pages only, not to the worker a session uses.
import { createRuntime } from '/node_modules/anybit/runtime.js';

const state = {};
const logitsOf = async (session, digits) => {
  const out = [];
  for (const px of digits) out.push([...(await session.run(Float32Array.from(px, (p) => p / 255))).logits]);
  return out;
};

window.progressive = {
  async start(url, width, digits) {
    state.session = await createSession();
    const progress = [];
    const info = await state.session.load(url, { width, onProgress: (p) => progress.push(p) });
    return { info, progress, logits: await logitsOf(state.session, digits) };
  },
  async switchTo(width, digits) {
    try {
      const info = await state.session.setWidth(width);
      return { info, logits: await logitsOf(state.session, digits) };
    } catch (e) {
      const info = await state.session.info();
      return { error: { code: e.code, message: e.message }, info, logits: await logitsOf(state.session, digits) };
    }
  },
  // The precision policy on this device, on the main thread with the SIMD build: calibrate (again,
  // e.g. after CPU throttling was switched on) and decide for a latency budget.
  async calibrate(url) {
    if (!state.runtime) {
      state.runtime = createRuntime({ threadsAllowed: false });
      await state.runtime.handle('init', { build: 'simd' });
      await state.runtime.handle('load', { url: new URL(url, location.href).href });
    }
    return state.runtime.handle('calibrate', { minMs: 30 });
  },
  decide(budget) {
    return state.runtime.handle('decide', { budget });
  },
  // Each width's pass (the runtime's own timing, read as the calibration reads it), in rounds over
  // the widths for `ms` each.
  async measure(widths, ms) {
    const rt = state.runtime;
    const info = await rt.handle('info', {});
    const x = new Float32Array(info.inputShape.reduce((a, d) => a * d, 1)).fill(0.5);
    const samples = Object.fromEntries(widths.map((w) => [w, []]));
    const t = performance.now();
    while (performance.now() - t < ms * widths.length) {
      for (const w of widths) {
        await rt.handle('setWidth', { width: w });
        samples[w].push((await rt.handle('run', { input: x })).ms);
      }
    }
    await rt.handle('setWidth', { width: info.width });
    // Read as the calibration reads its passes (policy::typical_ms): the median of the means of
    // five consecutive groups.
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const typical = (xs) => xs.length < 5 ? mean(xs)
      : [0, 1, 2, 3, 4].map((g) => mean(xs.slice(Math.floor(g * xs.length / 5), Math.floor((g + 1) * xs.length / 5)))).sort((a, b) => a - b)[2];
    return Object.fromEntries(widths.map((w) => [w, typical(samples[w])]));
  },
  async whole(url, widths, digits) {
    const session = await createSession();
    await session.load(url);
    const out = {};
    for (const w of widths) {
      await session.setWidth(w);
      out[w] = await logitsOf(session, digits);
    }
    await session.dispose();
    await state.session?.dispose();
    return out;
  },
};
document.body.dataset.ready = 'yes';
