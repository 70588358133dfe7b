// The page side of bench/trip.mjs: package sessions (each its own worker) driven through playwright
// (window.tripBench). Every timing is taken here, on the page, as an app that imports the package
// sees it; the runner only says what to run and gathers the numbers, so playwright's round trips
// are in no figure.

const sessions = new Map(); // key -> Session
let inputs = null; // the test digits as Float32Arrays, made once, outside every timing

// A result cut down to what the runner compares (exactly) and reports.
const brief = (r) => ({ predicted: r.predicted, width: r.width, ms: r.ms, probabilities: Array.from(r.probabilities) });

window.tripBench = {
  facts() {
    return {
      crossOriginIsolated: self.crossOriginIsolated,
      visibility: document.visibilityState,
      hardwareConcurrency: navigator.hardwareConcurrency,
      userAgent: navigator.userAgent,
    };
  },
  // The MNIST test digits of an IDX file, pixel / 255 as the web app makes them.
  async digits(url) {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const n = new DataView(bytes.buffer).getUint32(4);
    inputs = Array.from({ length: n }, (_, i) => Float32Array.from(bytes.subarray(16 + i * 784, 16 + (i + 1) * 784), (p) => p / 255));
    return n;
  },
  // `module`: the package entry to use (this tree's /pkg/index.js, or a baseline's copy); `build`
  // 'one': relaxed SIMD, else SIMD, on one thread (as bench/cf.mjs); 'threads': the threads build
  // with a pool of `pool`, set to one thread (as the web app runs when Auto picks one thread).
  async load({ key, module, build, pool, url, width }) {
    const { createSession } = await import(module);
    const session = build === 'threads'
      ? await createSession({ build: 'threads', threads: pool })
      : await createSession({ build: 'relaxed' }).catch(() => createSession({ build: 'simd' }));
    await session.load(url);
    const info = build === 'threads' ? await session.setThreads(1) : await session.info();
    const at = await session.setWidth(width);
    sessions.set(key, session);
    return { build: session.build, threads: info.threads, width: at.width, hasRunMany: typeof session.runMany === 'function' };
  },
  // One run() per input, one after the other: `caller` is what the page waits for (the input to
  // the worker, the pass, the result back), `ms` the engine's own time in the result.
  async runEach(key, indices) {
    const session = sessions.get(key);
    const out = [];
    for (const i of indices) {
      const input = inputs[i];
      const t0 = performance.now();
      const r = await session.run(input);
      const caller = performance.now() - t0;
      out.push({ caller, ...brief(r) });
    }
    return out;
  },
  // The inputs in runMany calls of `n` each: the wall time of all the calls together.
  async runMany(key, indices, n) {
    const session = sessions.get(key);
    const batches = [];
    for (let at = 0; at < indices.length; at += n) batches.push(indices.slice(at, at + n).map((i) => inputs[i]));
    const results = [];
    const t0 = performance.now();
    for (const b of batches) results.push(...(await session.runMany(b)));
    const ms = performance.now() - t0;
    return { ms, calls: batches.length, results: results.map(brief) };
  },
};
// The floor under every caller figure: a bare message round trip to a worker that answers at
// once (bench/page/trip-echo-worker.mjs), carrying an input-sized Float32Array both ways.
let echo = null;
Object.assign(window.tripBench, {
  async echo(count) {
    echo ??= new Worker(new URL('./trip-echo-worker.mjs', import.meta.url), { type: 'module' });
    const payload = new Float32Array(784);
    const out = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      await new Promise((resolve) => {
        echo.addEventListener('message', resolve, { once: true });
        echo.postMessage({ id: i, input: payload });
      });
      out.push(performance.now() - t0);
    }
    return out;
  },
});
window.tripBenchReady = true;
