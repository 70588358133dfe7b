// The page side of bench/cf.mjs: one package session (/pkg/index.js, its own worker) per thread
// count, driven through playwright (window.cfBench). Every timing is taken here, on the page, as
// an app that imports the package sees it; the runner only hands out blocks of sentences and
// gathers the numbers, so playwright's round trips are in no figure.
import { createSession } from '/pkg/index.js';

const sessions = new Map(); // key ("x1", "x2") -> Session

// A detection cut down to what the runner checks and reports (spans as SemEval counts them).
const brief = (d) => ({
  counterfactual: d.counterfactual,
  probability: d.probability,
  antecedent: d.antecedent ? [d.antecedent.start, d.antecedent.end] : [-1, -1],
  consequent: d.consequent ? [d.consequent.start, d.consequent.end] : [-1, -1],
  tokens: d.tokens,
  truncated: d.truncated,
  width: d.width,
  ms: d.ms,
});

window.cfBench = {
  // Without cross-origin isolation there is no threads build, so a 2-thread figure would be a
  // 1-thread one: the runner refuses such a page.
  facts() {
    return {
      crossOriginIsolated: self.crossOriginIsolated,
      visibility: document.visibilityState,
      hardwareConcurrency: navigator.hardwareConcurrency,
      userAgent: navigator.userAgent,
    };
  },
  // One thread: the fastest single-thread build this browser runs (relaxed SIMD, else SIMD), as
  // bench/text.mjs times; more: the threads build with a pool of that size. `pool` (t1): the
  // threads build with a pool of `pool`, run on `threads` of them through setThreads, as the app
  // does on a cross-origin isolated page when Auto picks fewer threads than the pool has. The whole
  // file is loaded, so every width is there and setWidth switches without fetching.
  async load({ key, threads, pool, url }) {
    const t0 = performance.now();
    const session = pool
      ? await createSession({ build: 'threads', threads: pool })
      : threads > 1
        ? await createSession({ build: 'threads', threads })
        : await createSession({ build: 'relaxed' }).catch(() => createSession({ build: 'simd' }));
    let info = await session.load(url);
    if (pool) info = await session.setThreads(threads);
    sessions.set(key, session);
    if (!info.task || info.task.type !== 'counterfactual') throw new Error(`${url} is not a counterfactual model`);
    return {
      loadMs: performance.now() - t0,
      build: session.build,
      threads: info.threads,
      widths: info.widths.map((w) => w.w),
      thresholds: info.task.thresholds,
      maxTokens: info.text?.maxTokens ?? null,
    };
  },
  // Switching width repacks the weights: timed, reported apart, never inside a sentence's time.
  async setWidth(key, width) {
    const t0 = performance.now();
    const info = await sessions.get(key).setWidth(width);
    if (info.width !== width) throw new Error(`setWidth(${width}) left the session at ${info.width} bits`);
    return performance.now() - t0;
  },
  // One detect() per sentence, one after the other: `caller` is what the page waits for (the
  // message to the worker, tokenizing, the pass, decoding, the result back), `ms` the engine's own
  // time in the result.
  async detectEach(key, texts) {
    const session = sessions.get(key);
    const out = [];
    for (const text of texts) {
      const t0 = performance.now();
      const d = await session.detect(text);
      const caller = performance.now() - t0;
      out.push({ caller, ...brief(d) });
    }
    return out;
  },
  // The CSV scorer's call (web/app/scorer.js): all texts in one detectMany, with progress.
  async detectMany(key, texts) {
    const session = sessions.get(key);
    let progress = 0;
    const t0 = performance.now();
    const results = await session.detectMany(texts, { onProgress: () => progress++ });
    const ms = performance.now() - t0;
    return { ms, progress, results: results.map(brief) };
  },
};
window.cfBenchReady = true;
