// Machine drift: runs one model at every width in a loop for a few seconds (Node, SIMD build) and
// prints the fastest pass of each 100 ms window. On a quiet machine the figures are flat; on a
// shared one they show how far two measurements of the same work can disagree.
//   node bench/drift.mjs [MODEL] [SECONDS]
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const model = process.argv[2] ?? 'models/mnist.anybit';
const seconds = Number(process.argv[3] ?? 3);
const dist = join(ROOT, 'pkg', 'dist', 'simd');
const mod = await import(join(dist, 'anybit.js'));
await mod.default({ module_or_path: await readFile(join(dist, 'anybit_bg.wasm')) });
const s = mod.Session.load(await readFile(join(ROOT, model)));
const x = new Float32Array(s.inputShape().reduce((a, d) => a * d, 1)).fill(0.5);
const widths = s.widths().map((w) => w.w);
const windows = [];
const t0 = performance.now();
let best = Infinity;
let last = 0;
while (performance.now() - t0 < seconds * 1000) {
  for (const w of widths) {
    s.setWidth(w);
    const a = performance.now();
    s.run(x);
    best = Math.min(best, performance.now() - a);
  }
  const at = performance.now() - t0;
  if (at - last >= 100) {
    windows.push(best);
    best = Infinity;
    last = at;
  }
}
s.free();
const lo = Math.min(...windows);
console.log(`${model}: fastest pass (any width) per 100 ms window, ms:`);
console.log(windows.map((v) => v.toFixed(3)).join(' '));
console.log(`slowest window / fastest window: ${(Math.max(...windows) / lo).toFixed(2)}`);
