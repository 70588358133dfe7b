// Policy check: predicted vs measured latency per width, in Node (simd build) and headless Chromium
// (simd, and threads with 2 threads), for any model (default models/mnist.anybit).
//   node bench/policy.mjs [MODEL] [CHECK_MS]   (CHECK_MS: measuring time per width, default 100)
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../e2e-tests/lib/chromium.js';
import { serve } from '../e2e-tests/lib/server.js';
import { check } from './page/policy-check.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const model = process.argv[2] ?? 'models/mnist.anybit';
const checkMs = Number(process.argv[3] ?? 100);

function table(name, r) {
  let worst = 0;
  let worstLayer = 0;
  let s = `\n${name}: ${r.isa}, ${r.threads} thread(s), calibration ${r.calibrationMs.toFixed(0)} ms\n\n`;
  s += '| width | predicted ms | measured ms | predicted / measured | per-layer ms | per-layer / measured |\n|---|---|---|---|---|---|\n';
  for (const row of r.rows) {
    const q = row.predictedMs / row.measuredMs;
    const l = row.perLayerMs / row.measuredMs;
    worst = Math.max(worst, Math.abs(q - 1));
    worstLayer = Math.max(worstLayer, Math.abs(l - 1));
    s += `| ${row.width} | ${row.predictedMs.toFixed(3)} | ${row.measuredMs.toFixed(3)} | ${q.toFixed(2)} | ${row.perLayerMs.toFixed(3)} | ${l.toFixed(2)} |\n`;
  }
  return s + `\nlargest error: ${(worst * 100).toFixed(0)}% (per-layer prediction: ${(worstLayer * 100).toFixed(0)}%)\n`;
}

const dist = join(ROOT, 'pkg', 'dist', 'simd');
const mod = await import(join(dist, 'anybit.js'));
await mod.default({ module_or_path: await readFile(join(dist, 'anybit_bg.wasm')) });
process.stdout.write(table(`node ${process.version} simd`, check(mod, await readFile(join(ROOT, model)), checkMs)));

const server = await serve(ROOT);
const browser = await launch();
try {
  const { page } = browser;
  await page.goto(`${server.origin}/bench/page/index.html`);
  for (const [variant, threads] of [['simd', 1], ['threads', 2]]) {
    const r = await page.evaluate(([variant, model, threads, checkMs]) => new Promise((resolve, reject) => {
      const w = new Worker(new URL('./policy-worker.mjs', location.href), { type: 'module' });
      w.onmessage = (e) => { w.terminate(); e.data.ok ? resolve(e.data.report) : reject(new Error(e.data.error)); };
      w.postMessage({ variant, model, threads, checkMs });
    }), [variant, model, threads, checkMs]);
    process.stdout.write(table(`chromium ${browser.context.browser()?.version() ?? ''} ${variant}`, r));
  }
} finally {
  await browser.close();
  await server.close();
}
