// The build picker of the package's runtime (pkg/runtime.js, which the app serves as anybit/), and
// the JS API of a real build in Node (no browser needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { chooseBuild as chooseVariant, detect } from '../../pkg/runtime.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// The real trained model; ANYBIT_MODEL points elsewhere (e.g. a model being trained).
const MODEL = process.env.ANYBIT_MODEL ?? join(ROOT, 'models', 'mnist.anybit');
const caps = (over) => ({ simd: true, relaxed: true, sharedMemory: true, worker: true, cores: 4, ...over });

test('auto picks threads only when isolated with shared memory, workers, 2+ cores and relaxed SIMD; else relaxed, else SIMD', () => {
  assert.equal(chooseVariant(caps()).variant, 'threads');
  assert.equal(chooseVariant(caps({ sharedMemory: false })).variant, 'relaxed');
  assert.equal(chooseVariant(caps({ worker: false })).variant, 'relaxed');
  assert.equal(chooseVariant(caps({ cores: 1 })).variant, 'relaxed');
  assert.equal(chooseVariant(caps({ inProcess: true })).variant, 'relaxed');
  // The threads build uses relaxed SIMD: without it, one thread on plain SIMD.
  assert.equal(chooseVariant(caps({ relaxed: false })).variant, 'simd');
  assert.match(chooseVariant(caps({ relaxed: false })).reason, /relaxed SIMD/);
  assert.equal(chooseVariant(caps({ relaxed: false, sharedMemory: false })).variant, 'simd');
  assert.equal(chooseVariant(caps({ simd: false })).variant, 'scalar');
  assert.equal(chooseVariant(caps({ simd: false, relaxed: false })).variant, 'scalar');
  assert.match(chooseVariant(caps({ sharedMemory: false })).reason, /cross-origin isolated/);
});

test('a forced build is refused where it cannot run, with a code', () => {
  assert.equal(chooseVariant(caps({ simd: false }), 'scalar').variant, 'scalar');
  assert.equal(chooseVariant(caps(), 'relaxed').variant, 'relaxed');
  for (const [over, variant] of [[{ simd: false }, 'simd'], [{ relaxed: false }, 'relaxed'], [{ sharedMemory: false }, 'threads'], [{ relaxed: false }, 'threads']]) {
    assert.throws(() => chooseVariant(caps(over), variant), (e) => e.code === 'runtime_unavailable');
  }
  assert.throws(() => chooseVariant(caps(), 'avx512'), (e) => e.code === 'invalid_argument');
});

test('detect() sees SIMD in Node 20 and no shared memory outside an isolated page', () => {
  const c = detect();
  assert.equal(c.simd, true);
  assert.equal(c.sharedMemory, false);
  assert.ok(c.cores >= 1);
});

async function loadBuild(variant) {
  const dir = join(ROOT, 'pkg', 'dist', variant);
  const wasm = await import(pathToFileURL(join(dir, 'anybit.js')).href);
  await wasm.default({ module_or_path: await readFile(join(dir, 'anybit_bg.wasm')) });
  return wasm;
}

test('the simd and scalar builds classify real MNIST digits and agree exactly', async () => {
  const model = await readFile(MODEL);
  const images = (await readFile(join(ROOT, 'fixtures', 'mnist-t100-images.idx3'))).subarray(16);
  const labels = (await readFile(join(ROOT, 'fixtures', 'mnist-t100-labels.idx1'))).subarray(8);
  const sessions = await Promise.all(['simd', 'scalar'].map(async (v) => (await loadBuild(v)).Session.load(model)));
  const [simd, scalar] = sessions;
  assert.deepEqual(simd.inputShape(), [28, 28, 1]);
  for (const w of simd.widths().map((x) => x.w)) {
    simd.setWidth(w);
    scalar.setWidth(w);
    let correct = 0;
    for (let i = 0; i < 20; i++) {
      const input = Float32Array.from(images.subarray(i * 784, (i + 1) * 784), (p) => p / 255);
      const a = simd.run(input);
      const b = scalar.run(input);
      assert.equal(a.width, w);
      assert.deepEqual(a.logits, b.logits, `simd and scalar logits differ at ${w} bits, image ${i}`);
      const sum = a.probabilities.reduce((s, p) => s + p, 0);
      assert.ok(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`);
      assert.equal(a.top[0].index, a.predicted);
      correct += a.predicted === labels[i] ? 1 : 0;
    }
    if (w === 8) assert.ok(correct >= 19, `${correct}/20 correct at 8 bits`);
  }
  sessions.forEach((s) => s.free());
});

test('errors are AnybitError exceptions with a code', async () => {
  const { Session } = await loadBuild('simd');
  const model = await readFile(MODEL);
  const codeOf = (fn) => {
    try {
      fn();
    } catch (e) {
      assert.equal(e.name, 'AnybitError');
      assert.ok(e instanceof Error && e.message.length > 0);
      return e.code;
    }
    assert.fail('did not throw');
  };
  assert.equal(codeOf(() => Session.load(model.subarray(0, 200))), 'truncated');
  assert.equal(codeOf(() => Session.load(new Uint8Array(64).fill(7))), 'bad_magic');
  const s = Session.load(model);
  assert.equal(codeOf(() => s.setWidth(0)), 'unsupported_width');
  assert.equal(codeOf(() => s.setWidth(2.5)), 'unsupported_width');
  assert.equal(codeOf(() => s.run(new Float32Array(10))), 'shape_mismatch');
  assert.equal(codeOf(() => s.run(new Float32Array(784).fill(NaN))), 'bad_value');
  assert.equal(codeOf(() => s.runImage({ width: 2, height: 2, data: new Uint8ClampedArray(5) })), 'invalid_argument');
  assert.equal(codeOf(() => s.runImage({ width: 28, height: 28, data: new Uint8ClampedArray(28 * 28 * 4) }, { fit: 'nope' })), 'invalid_argument');
  s.free();
});

test('runImage on an RGBA image of a test digit agrees with run on its pixels', async () => {
  const { Session } = await loadBuild('simd');
  const s = Session.load(await readFile(MODEL));
  const images = (await readFile(join(ROOT, 'fixtures', 'mnist-t100-images.idx3'))).subarray(16);
  const labels = (await readFile(join(ROOT, 'fixtures', 'mnist-t100-labels.idx1'))).subarray(8);
  for (let i = 0; i < 5; i++) {
    const px = images.subarray(i * 784, (i + 1) * 784);
    const direct = s.run(Float32Array.from(px, (p) => p / 255));
    const data = new Uint8ClampedArray(784 * 4);
    px.forEach((p, j) => data.set([p, p, p, 255], 4 * j));
    const same = s.runImage({ width: 28, height: 28, data });
    assert.equal(same.predicted, direct.predicted, `image ${i}, same size`);
    // Dark ink on white, four times larger, refitted the MNIST way: still the right digit.
    const big = new Uint8ClampedArray(112 * 112 * 4);
    for (let y = 0; y < 112; y++) {
      for (let x = 0; x < 112; x++) {
        const p = 255 - px[(y >> 2) * 28 + (x >> 2)];
        big.set([p, p, p, 255], 4 * (y * 112 + x));
      }
    }
    const fitted = s.runImage({ width: 112, height: 112, data: big }, { invert: true, fit: 'mnist' });
    assert.equal(fitted.predicted, labels[i], `image ${i} inverted, 4x, fit mnist`);
  }
  s.free();
});
