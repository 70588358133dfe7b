// Per-layer profile of one model pass in Node, with one wasm build (Session.profile: each node
// timed by performance.now() inside the pass). Prints, per width, the fastest whole pass and each
// layer's fastest time over many passes (interference only ever adds time), so that what is not
// arithmetic (quantizers, pooling, affines, element-wise layers) shows beside the GEMMs.
//
//   bash scripts/build-wasm.sh simd
//   node --no-liftoff bench/profile.mjs [--model models/mnist.anybit] [--build simd] [--widths 8,2,1]
//                                       [--passes 500] [--tree DIR]
//
// --tree DIR profiles another checkout's pkg/dist build (an A/B of a layer change in one run:
// alternate the two commands). --no-liftoff: optimized wasm from the first call (bench/run.mjs).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const o = { model: 'models/mnist.anybit', build: 'simd', widths: [8, 2, 1], passes: 500, tree: join(dirname(fileURLToPath(import.meta.url)), '..') };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) throw new Error(`${k} needs a value`);
  if (k === '--model') o.model = v;
  else if (k === '--build') o.build = v;
  else if (k === '--widths') o.widths = v.split(',').map(Number);
  else if (k === '--passes') o.passes = Number(v);
  else if (k === '--tree') o.tree = v;
  else throw new Error(`unknown argument ${k}`);
}
const dist = join(o.tree, 'pkg', 'dist', o.build);
const m = await import(join(dist, 'anybit.js'));
await m.default({ module_or_path: readFileSync(join(dist, 'anybit_bg.wasm')) });
const s = m.Session.load(readFileSync(o.model));
const n = s.inputShape().reduce((a, b) => a * b, 1);
// A fixed input in [0, 1] (timing does not depend on the values of an image model's input).
const x = new Float32Array(n).map((_, i) => ((i * 37) % 101) / 100);
console.log(`${o.model}, ${dist}: fastest pass and per-layer minima over ${o.passes} passes, ms`);
for (const w of o.widths) {
  s.setWidth(w);
  for (let i = 0; i < 50; i++) s.run(x);
  let pass = Infinity;
  for (let r = 0; r < 20; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) s.run(x);
    pass = Math.min(pass, (performance.now() - t0) / 10);
  }
  const layers = {};
  for (let r = 0; r < o.passes; r++) for (const [name, t] of s.profile(x)) layers[name] = Math.min(layers[name] ?? Infinity, t);
  const sum = Object.values(layers).reduce((a, b) => a + b, 0);
  console.log(`width ${w}: pass ${pass.toFixed(3)}, layers sum ${sum.toFixed(3)}: ` + Object.entries(layers).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', '));
}
