// bench/layers-threads.mjs's worker: the threads build with a pool of `threads`, one model at one
// width, `Session.profile` alternating between one thread and the pool, every layer's fastest time
// per thread count and the median pass.
let ready = null;
self.onmessage = async ({ data: { model, width, passes, threads } }) => {
  try {
    const mod = await import('../../pkg/dist/threads/anybit.js');
    ready ??= mod.default().then(() => mod.initThreads(threads));
    await ready;
    const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
    const s = mod.Session.load(bytes);
    s.setWidth(width);
    const n = s.inputShape().reduce((a, b) => a * b, 1);
    // A fixed input in [0, 1]: an image model's time does not depend on its values.
    const x = new Float32Array(n).map((_, i) => ((i * 37) % 101) / 100);
    const counts = [1, threads];
    for (const t of counts) {
      s.setThreads(t);
      for (let i = 0; i < 50; i++) s.run(x);
    }
    const layers = counts.map(() => new Map());
    const pass = counts.map(() => []);
    for (let r = 0; r < passes; r++) {
      counts.forEach((t, j) => {
        s.setThreads(t);
        let sum = 0;
        for (const [name, ms] of s.profile(x)) {
          layers[j].set(name, Math.min(layers[j].get(name) ?? Infinity, ms));
          sum += ms;
        }
        pass[j].push(sum);
      });
    }
    s.free();
    self.postMessage({ ok: true, counts, layers: layers.map((m) => [...m]), pass });
  } catch (e) {
    self.postMessage({ ok: false, error: String(e?.message ?? e) });
  }
};
