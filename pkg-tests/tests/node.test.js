// (a) Node 20: the installed tarball, imported by its package name, runs the SIMD build in-process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { serve } from '../../e2e-tests/lib/server.js';
import { APP, MODEL, digits } from '../lib/app.js';

// entry.mjs (written by pkg-test.sh) is `export * from 'anybit'`: the bare name resolves through the
// installed package's "exports" from inside the temporary project.
const { createSession, AnybitError } = await import(pathToFileURL(join(APP, 'entry.mjs')).href);

const input = (px) => Float32Array.from(px, (p) => p / 255);

// Node >= 22 has standard relaxed SIMD (auto takes it); Node 20 has a pre-standard one (refused).
const ONE_THREAD = Number(process.versions.node.split('.')[0]) >= 22 ? 'relaxed' : 'simd';

test('Node picks the single-threaded relaxed-SIMD (Node >= 22) or SIMD build and says why', async () => {
  const session = await createSession();
  const build = await session.buildInfo();
  assert.equal(build.variant, ONE_THREAD);
  assert.equal(build.threadCount, 1);
  assert.match(build.reason, /one thread/);
  assert.deepEqual(session.build, build);
  await session.dispose();
});

test('classifies the first 20 real MNIST test digits at 8 and 1 bits', async () => {
  const session = await createSession();
  const bytes = await readFile(MODEL);
  const progress = [];
  const info = await session.load(bytes, { onProgress: (p) => progress.push(p) });
  // Bytes in hand: one event, with the planes they hold, as a download's last event says.
  assert.deepEqual(progress, [{ loaded: bytes.length, total: bytes.length, planes: 8, planeTotal: 8 }]);
  assert.deepEqual(info.inputShape, [28, 28, 1]);
  assert.deepEqual((await session.widths()).map((w) => w.w), [1, 2, 3, 4, 5, 6, 7, 8]);
  const samples = await digits(20);
  // Measured with models/mnist.anybit: 19/20 at both widths (image 18, a 3, is missed at 8 and 1 bits).
  for (const [width, least] of [[8, 19], [1, 19]]) {
    assert.equal((await session.setWidth(width)).width, width);
    let correct = 0;
    for (const { pixels, label } of samples) {
      const r = await session.run(input(pixels));
      assert.equal(r.width, width);
      assert.equal(r.top[0].index, r.predicted);
      correct += r.predicted === label ? 1 : 0;
    }
    assert.ok(correct >= least, `${correct}/20 correct at ${width} bits`);
  }
  await session.dispose();
});

test('loads a model from a file: URL with progress', async () => {
  const session = await createSession();
  const progress = [];
  const info = await session.load(pathToFileURL(MODEL), { onProgress: (p) => progress.push(p) });
  assert.equal(info.width, 8);
  const size = (await readFile(MODEL)).length;
  assert.deepEqual(progress.at(-1), { loaded: size, total: size });
  const [{ pixels, label }] = await digits(1);
  assert.equal((await session.run(input(pixels))).predicted, label);
  await session.dispose();
});

test('errors are AnybitError with a code', async () => {
  const session = await createSession();
  const codeOf = async (promise) => {
    const e = await promise.then(() => assert.fail('did not reject'), (err) => err);
    assert.ok(e instanceof AnybitError, `${e} is an AnybitError`);
    assert.ok(e.message.length > 0);
    return e.code;
  };
  const bytes = await readFile(MODEL);
  assert.equal(await codeOf(session.run(new Float32Array(784))), 'no_model');
  assert.equal(await codeOf(session.load(bytes.subarray(0, bytes.length - 1000))), 'truncated');
  assert.equal(await codeOf(session.load(bytes.subarray(0, 300))), 'truncated');
  assert.equal(await codeOf(session.load(pathToFileURL(MODEL + '.missing'))), 'fetch_failed');
  await session.load(bytes);
  assert.equal(await codeOf(session.run(new Float32Array(783))), 'shape_mismatch');
  assert.equal(await codeOf(session.run([1, 2, 3])), 'invalid_argument');
  assert.equal(await codeOf(session.setWidth(9)), 'unsupported_width');
  assert.equal(await codeOf(createSession({ build: 'threads' })), 'runtime_unavailable');
  assert.equal(await codeOf(createSession({ build: 'avx512' })), 'invalid_argument');
  assert.equal(await codeOf(createSession({ threads: 2 })), 'invalid_argument');
  await session.dispose();
  assert.equal(await codeOf(session.info()), 'disposed');
});

test('a damaged file is corrupt, whether WebCrypto or the wasm module hashes it', async () => {
  const session = await createSession();
  const bytes = await readFile(MODEL);
  const codeOf = (promise) => promise.then(() => 'loaded', (e) => e.code);
  // The last byte is in the least significant plane, and 9 bytes on from the header's JSON in
  // the tensors section: a flip in either is a digest mismatch (the tensor values stay finite
  // for a flipped low mantissa bit, and any plane byte is a valid code).
  const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
  for (const at of [bytes.length - 1, headerEnd + 8]) {
    const bad = Uint8Array.from(bytes);
    bad[at] ^= 1;
    assert.equal(await codeOf(session.load(bad)), 'corrupt', `flipped byte ${at}, WebCrypto`);
    // WebCrypto refuses views of shared memory: the wasm module hashes those itself.
    const shared = new Uint8Array(new SharedArrayBuffer(bad.length));
    shared.set(bad);
    assert.equal(await codeOf(session.load(shared)), 'corrupt', `flipped byte ${at}, wasm`);
  }
  const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
  shared.set(bytes);
  for (const b of [bytes, shared]) {
    await session.load(b);
    const [{ pixels, label }] = await digits(1);
    assert.equal((await session.run(input(pixels))).predicted, label);
  }
  await session.dispose();
});

test('a progressive load checks each plane once it is in, whether WebCrypto or the wasm module hashes it', async () => {
  const bytes = await readFile(MODEL);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const [p7, p7end] = header['planes.0_bit7'].data_offsets;
  const planeAt = (k) => 8 + n + p7 + k * (p7end - p7); // where plane k (most significant first) starts
  const bad = Buffer.from(bytes);
  bad[planeAt(2) + 5] ^= 1; // inside the third plane (bit 5)
  const server = await serve(dirname(MODEL), { overrides: { '/bad.anybit': bad } });
  const [{ pixels, label }] = await digits(1);
  const subtle = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  try {
    for (const hasher of ['WebCrypto', 'wasm']) {
      // Without WebCrypto (an insecure context), the wasm module hashes every piece itself.
      if (hasher === 'wasm') Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
      const session = await createSession();
      const whole = await createSession();
      await whole.load(bytes);
      const good = await session.load(`${server.origin}/mnist.anybit`, { width: 2 });
      assert.deepEqual([good.width, good.planesLoaded], [2, 2], hasher);
      for (const w of [4, 8]) {
        await session.setWidth(w);
        await whole.setWidth(w);
        const [a, b] = [await session.run(input(pixels)), await whole.run(input(pixels))];
        assert.deepEqual([...a.logits], [...b.logits], `${hasher}, ${w} bits: as the whole file`);
        assert.equal(a.predicted, label);
      }
      // The corrupt plane is refused when a width first needs it, and the session keeps its width.
      await session.load(`${server.origin}/bad.anybit`, { width: 2 });
      await assert.rejects(session.setWidth(3), (e) => e.code === 'corrupt' && /bit plane 5/.test(e.message), hasher);
      assert.equal((await session.info()).width, 2);
      await assert.rejects(session.load(`${server.origin}/bad.anybit`, { width: 3 }), (e) => e.code === 'corrupt', hasher);
      await session.dispose();
      await whole.dispose();
    }
  } finally {
    Object.defineProperty(globalThis, 'crypto', subtle);
    await server.close();
  }
});

test('loads a model over HTTP with byte progress; a 404 is fetch_failed', async () => {
  const bytes = await readFile(MODEL);
  // Sent in 16 KiB pieces with a Content-Length, as a static server streams a file.
  const server = await serve(dirname(MODEL), { pace: { bytes: 16384, ms: 5 } });
  const { origin } = server;
  const session = await createSession();
  try {
    const progress = [];
    const info = await session.load(`${origin}/mnist.anybit`, { onProgress: (p) => progress.push(p) });
    assert.equal(info.width, 8);
    assert.ok(progress.length > 1, `${progress.length} progress events`);
    assert.ok(progress.every((p, i) => p.total === bytes.length && (i === 0 || p.loaded > progress[i - 1].loaded)));
    assert.equal(progress.at(-1).loaded, bytes.length);
    // Once the header is in, events say how many bit planes are complete; they only grow, and the
    // last byte completes the eighth.
    const counted = progress.filter((p) => p.planeTotal !== undefined);
    assert.ok(counted.length > 0 && counted.every((p) => p.planeTotal === 8 && p.planes >= 0 && p.planes <= 8));
    assert.ok(counted.every((p, i) => i === 0 || p.planes >= counted[i - 1].planes));
    assert.equal(progress.at(-1).planes, 8);
    assert.ok(progress.some((p) => p.planes !== undefined && p.planes < 8), 'an event before the last plane');
    const e = await session.load(`${origin}/nothing.anybit`).then(() => assert.fail('did not reject'), (err) => err);
    assert.ok(e instanceof AnybitError);
    assert.equal(e.code, 'fetch_failed');
    assert.match(e.message, /404/);
  } finally {
    await session.dispose();
    await server.close();
  }
});

test('the precision policy: calibrate, then decide for budgets; the decision can be followed', async () => {
  const session = await createSession();
  try {
    // The probe needs no model; in Node: SIMD, no shared memory for wasm threads, the build in use.
    const p = await session.probe();
    assert.equal(p.simd, true);
    assert.equal(p.sharedMemory, false);
    assert.equal(p.build.variant, ONE_THREAD);
    assert.ok(p.cores >= 1 && p.cores <= 64 && p.tookMs >= 0);
    assert.equal(p.relaxedSimd, Number(process.versions.node.split('.')[0]) >= 22);
    const bytes = await readFile(MODEL);
    await session.load(bytes);
    const early = await session.decide().then(() => assert.fail('decide before calibrate resolved'), (e) => e);
    assert.equal(early.code, 'invalid_argument');
    const cal = await session.calibrate(2);
    assert.deepEqual(cal.gemmMs.map(([w]) => w), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.ok(cal.gemmMs.every(([, ms]) => ms > 0) && cal.otherMs >= 0 && cal.measuredWidth === 8);
    // No budget: the most accurate width by the model's stored eval table.
    const best = await session.decide();
    const acc = best.options.map((o) => o.accuracy);
    assert.equal(best.options.find((o) => o.width === best.width).accuracy, Math.max(...acc));
    assert.ok(best.options.every((o) => o.fits && o.bytes > 0 && o.bytes <= bytes.length));
    assert.equal(best.options.find((o) => o.width === 8).bytes, bytes.length);
    assert.match(best.reasons[0], new RegExp(`${ONE_THREAD === 'relaxed' ? 'relaxed' : 'simd128'} kernels, 1 thread`));
    // One thread in Node: nothing to compare, every option on one thread.
    assert.deepEqual(cal.oneThreadMs, []);
    assert.ok(best.threads === 1 && best.options.every((o) => o.threads === 1));
    // A data budget of 60% of the file: only widths whose plane prefix fits are eligible. The 1-bit
    // prefix is 56% of it (the 8-bit dense head is a third of the weights), the 2-bit one 62%.
    const small = await session.decide({ maxBytes: Math.floor(bytes.length * 0.6) });
    assert.equal(small.width, 1);
    assert.deepEqual(small.options.filter((o) => o.fits).map((o) => o.width), [1]);
    // A memory cap: each option carries the bytes the runtime holds at that width (the 8-bit codes
    // plus the weights packed for it, activations and scratch). What packing costs depends on the
    // kernels: this SIMD128 build packs 3-8 bits as 16-bit lanes (one figure for all) and 1-2 bits
    // as lookup tables, whose stride-1 convolutions run without an im2col buffer (the window path:
    // less in all, one index plane per activation bit). A cap at the smallest figure leaves
    // exactly the widths at it, and the most accurate of them is taken.
    const mem = Object.fromEntries(best.options.map((o) => [o.width, o.memoryBytes]));
    assert.ok(Object.values(mem).every((m) => m > 100_000 && m < 10_000_000), JSON.stringify(mem));
    assert.ok(mem[3] === mem[8] && mem[1] < mem[2] && mem[2] < mem[8], JSON.stringify(mem));
    const cap = Math.min(...Object.values(mem));
    const within = best.options.filter((o) => o.memoryBytes <= cap);
    const capped = await session.decide({ maxMemoryBytes: cap });
    assert.deepEqual(capped.options.filter((o) => o.fits).map((o) => o.width), within.map((o) => o.width));
    assert.equal(capped.options.find((o) => o.width === capped.width).accuracy, Math.max(...within.map((o) => o.accuracy)));
    const over = best.options.filter((o) => o.memoryBytes > cap).map((o) => o.width).join(', ');
    assert.match(capped.reasons.join(' '), new RegExp(`widths ${over} need more than the ${cap}-byte memory cap`));
    // An impossible latency: the fastest width (the narrowest within 10% of the fastest
    // prediction), and it says so.
    const none = await session.decide({ latencyMs: 1e-6 });
    const least = Math.min(...none.options.map((o) => o.predictedMs));
    assert.equal(none.width, Math.min(...none.options.filter((o) => o.predictedMs <= least * 1.1).map((o) => o.width)));
    assert.match(none.reasons.join(' '), /no width fits/);
    // Budgets are checked, misspelt keys included.
    for (const bad of [{ latencyMs: -1 }, { latency: 3 }]) {
      assert.equal((await session.decide(bad).then(() => null, (e) => e))?.code, 'invalid_argument', JSON.stringify(bad));
    }
    // Following the decision switches the width; the model then runs at it.
    assert.equal((await session.setWidth(small.width)).width, small.width);
    assert.equal((await session.run(new Float32Array(784))).width, small.width);
  } finally {
    await session.dispose();
  }
});
