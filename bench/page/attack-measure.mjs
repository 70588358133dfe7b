// The attack benchmark's measurements, run inside one wasm build (in a worker on the page, or in
// Node): a forward pass, a PGD-Linf attack and its parts, at each width, by the same code in both
// hosts so their figures compare. Called by attack-worker.mjs (Chromium) and bench/attack.mjs (Node).

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function time(f, reps) {
  const ms = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    f();
    ms.push(performance.now() - t);
  }
  return median(ms);
}

/**
 * `mod`: an initialised wasm build (pkg/dist/<variant>/anybit.js); `model`: the .anybit bytes;
 * `image`: model input floats. Per width, medians in ms: `forward` (one run), `attack` (the whole
 * attack as the package runs it: start, 40 ms slices of steps, finish), its `start` (checks and the
 * pass for the label), `steps` (40 gradient steps), `finish` (rounding and the predictions of
 * every loaded width on both images), `step` (steps / gradients) and `ratio` = step / forward.
 */
export function measureAttack(mod, model, image, { widths = [8, 1], steps = 40, reps = 9 } = {}) {
  const s = mod.Session.load(model);
  const request = { attack: 'pgd-linf', steps, width: 0 };
  const out = [];
  try {
    for (const width of widths) {
      s.setWidth(width);
      request.width = width;
      const whole = () => {
        s.attackStart(image, undefined, request);
        while (!s.attackStep(40).finished);
        return s.attackFinish();
      };
      for (let i = 0; i < 3; i++) whole(); // warm-up: the engine's optimizing tier
      const forward = time(() => { for (let i = 0; i < 20; i++) s.run(image); }, reps) / 20;
      let gradients = 0;
      let success = true;
      const parts = { start: [], steps: [], finish: [], attack: [] };
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        s.attackStart(image, undefined, request);
        const t1 = performance.now();
        while (!s.attackStep(40).finished);
        const t2 = performance.now();
        const r = s.attackFinish();
        const t3 = performance.now();
        parts.start.push(t1 - t0);
        parts.steps.push(t2 - t1);
        parts.finish.push(t3 - t2);
        parts.attack.push(t3 - t0);
        gradients = r.gradients;
        success &&= r.success;
      }
      const m = Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, median(v)]));
      const step = m.steps / gradients;
      out.push({ width, forward, ...m, gradients, success, step, ratio: step / forward });
    }
  } finally {
    s.free();
  }
  return out;
}
