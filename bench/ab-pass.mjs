// Whole-model A/B in Node: times Session.run of the simd build of two checkouts (OLD, NEW: each
// with pkg/dist/simd built by scripts/build-wasm.sh simd) alternately, on the same model and input,
// so that a change can be compared with its base in one run on a noisy machine.
//   node --no-liftoff bench/ab-pass.mjs OLD_TREE NEW_TREE [models/mnist.anybit]
// Prints per width the fastest mean of 20 passes over 35 timed rounds, and new/old.
import { readFileSync } from 'node:fs';
const [oldTree, newTree, modelPath = 'models/mnist.anybit'] = process.argv.slice(2);
if (!oldTree || !newTree) {
  console.error('usage: node --no-liftoff bench/ab-pass.mjs OLD_TREE NEW_TREE [MODEL]');
  process.exit(2);
}
const trees = { old: oldTree, new: newTree };
const model = readFileSync(modelPath);
const S = {};
for (const [k, t] of Object.entries(trees)) {
  const m = await import(t + '/pkg/dist/simd/anybit.js');
  await m.default({ module_or_path: readFileSync(t + '/pkg/dist/simd/anybit_bg.wasm') });
  S[k] = m.Session.load(model);
}
const n = S.old.inputShape().reduce((a, b) => a * b, 1);
const x = new Float32Array(n).map((_, i) => (i * 37 % 101) / 100);
const res = {};
for (const w of [8, 4, 2, 1]) {
  for (const k in S) S[k].setWidth(w);
  const best = { old: Infinity, new: Infinity };
  for (let round = 0; round < 40; round++) {
    for (const k of round % 2 ? ['old', 'new'] : ['new', 'old']) {
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) S[k].run(x);
      const t = (performance.now() - t0) / 20;
      if (round >= 5) best[k] = Math.min(best[k], t);
    }
  }
  console.log(`width ${w}: old ${best.old.toFixed(3)} ms, new ${best.new.toFixed(3)} ms, new/old ${(best.new / best.old).toFixed(3)}`);
}
