// Attack benchmark: PGD-Linf (40 steps) on one MNIST test digit with models/mnist.anybit, on one
// thread of a wasm build made by scripts/build-wasm.sh (pkg/dist/<variant>/; default simd), in a
// worker in headless Chromium (as the package runs attacks) and in Node. Prints, per width, the
// median ms of a whole attack and of its parts, and the cost of one gradient step over one forward
// pass, both measured in the same run (bench/page/attack-measure.mjs says what each figure is).
//
//   node bench/attack.mjs [--hosts chromium,node] [--variant simd] [--widths 8,1] [--reps 9] [--json out.json]
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../e2e-tests/lib/server.js';
import { measureAttack } from './page/attack-measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const o = { hosts: ['chromium', 'node'], variant: 'simd', widths: [8, 1], reps: 9 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const next = () => process.argv[++i] ?? (() => { throw new Error(`${a} needs a value`); })();
  if (a === '--hosts') o.hosts = next().split(',');
  else if (a === '--variant') o.variant = next();
  else if (a === '--widths') o.widths = next().split(',').map(Number);
  else if (a === '--reps') o.reps = Number(next());
  else if (a === '--json') o.json = next();
  else throw new Error(`unknown argument ${a}`);
}

const model = await readFile(join(ROOT, 'models', 'mnist.anybit'));
// Test digit 0 of fixtures/mnist-t100-images.idx3 (a 7), as the package tests attack it.
const pixels = (await readFile(join(ROOT, 'fixtures', 'mnist-t100-images.idx3'))).subarray(16, 16 + 784);
const image = Float32Array.from(pixels, (p) => p / 255);
const options = { widths: o.widths, reps: o.reps };

async function inNode() {
  const dist = join(ROOT, 'pkg', 'dist', o.variant);
  const mod = await import(join(dist, 'anybit.js'));
  await mod.default({ module_or_path: await readFile(join(dist, 'anybit_bg.wasm')) });
  return measureAttack(mod, model, image, options);
}

async function inChromium() {
  const { launch } = await import('../e2e-tests/lib/chromium.js');
  const server = await serve(ROOT);
  const browser = await launch();
  try {
    await browser.page.goto(`${server.origin}/bench/page/index.html`);
    return await browser.page.evaluate(([variant, model, image, options]) => new Promise((resolve, reject) => {
      const w = new Worker('/bench/page/attack-worker.mjs', { type: 'module' });
      w.onmessage = (e) => { w.terminate(); e.data.ok ? resolve(e.data.rows) : reject(new Error(e.data.error)); };
      w.onerror = (e) => { w.terminate(); reject(new Error(e.message || 'worker failed to start')); };
      w.postMessage({ variant, model, image, options });
    }), [o.variant, [...model], [...image], options]);
  } finally {
    await browser.close();
    await server.close();
  }
}

const results = {};
for (const host of o.hosts) results[host] = host === 'node' ? await inNode() : await inChromium();

const f = (x) => x.toFixed(1);
console.log(`PGD-Linf ${40} steps, MNIST test digit 0, ${o.variant} build, 1 thread; medians of ${o.reps}, ms`);
console.log('| host | width | attack | start | 40 steps | finish | forward | gradient step | step / forward | success |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const [host, rows] of Object.entries(results)) {
  for (const r of rows) {
    console.log(`| ${host} | ${r.width} | ${f(r.attack)} | ${f(r.start)} | ${f(r.steps)} | ${f(r.finish)} | ${r.forward.toFixed(2)} | ${r.step.toFixed(2)} | ${r.ratio.toFixed(2)} | ${r.success} |`);
  }
}
if (o.json) await writeFile(o.json, JSON.stringify({ options: o, results }, null, 2));
