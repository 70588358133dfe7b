// The page side of bench/text.mjs: loads the engines of bench/page/text-engines.mjs for this
// page's thread count and times one sentence at a time. The runner drives it through playwright
// (window.textBench), one call per timed sentence, so it can interleave settings and pages.
import { ENGINES } from './text-engines.mjs';

const loaded = new Map(); // "engine/variant" -> {run, info}

window.textBench = {
  // What the runner records about this page: without cross-origin isolation ORT Web falls back to
  // one thread silently, so a 2-thread figure would be a 1-thread one.
  facts() {
    return {
      crossOriginIsolated: self.crossOriginIsolated,
      visibility: document.visibilityState,
      hardwareConcurrency: navigator.hardwareConcurrency,
      userAgent: navigator.userAgent,
    };
  },
  async load({ engine, variant, threads, files }) {
    const e = ENGINES[engine];
    if (!e) throw new Error(`unknown engine ${engine} (have: ${Object.keys(ENGINES).join(', ')})`);
    if (!e.variants.includes(variant)) throw new Error(`${engine} has no variant ${variant} (has: ${e.variants.join(', ')})`);
    if (threads > 1 && !self.crossOriginIsolated) throw new Error('threads need a cross-origin isolated page');
    const t0 = performance.now();
    const handle = await e.load({ variant, threads, files });
    loaded.set(`${engine}/${variant}`, handle);
    return { name: e.name, loadMs: performance.now() - t0, ...handle.info };
  },
  // `sentence` is {ids, text}: an engine that tokenizes itself (anybit) takes the text, one
  // that does not (ORT) the ids the tokenizer made; the fixture check shows both see one sentence.
  async embed(key, sentence) {
    return Array.from(await loaded.get(key).run(sentence));
  },
  // One sentence, timed from the page: what a caller of the engine waits for.
  async time(key, sentence) {
    const { run } = loaded.get(key);
    const t0 = performance.now();
    await run(sentence);
    return performance.now() - t0;
  },
};
window.textBenchReady = true;
