// Session.runMany (many inputs per worker message) and how run() sends its input, from the
// installed package, on the shipped MNIST model and real MNIST test digits: every result equal to
// run()'s one at a time (floats and images, mixed, image options), chunks and progress, cancel
// before, during and between chunks, typed errors naming the input, the caller's arrays left
// intact (not detached by the transfer to the worker, views into larger buffers sent as their own
// elements), in Node (in-process) and on a plain page in headless Chromium (in the worker,
// threads build); run()'s `output` array (taken in-process, refused by a worker session); and
// createSession's `prefetch` on the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { launch } from '../../e2e-tests/lib/chromium.js';
import { serve } from '../../e2e-tests/lib/server.js';
import { APP, MODEL, digits } from '../lib/app.js';

const { createSession } = await import(pathToFileURL(join(APP, 'entry.mjs')).href);

const samples = await digits(40);

// Runs in Node and, as source, on the page: everything the checks below need, as plain data.
// `pixels`: 40 digits as arrays of 784 bytes.
// `inProcess`: the session runs on this thread (Node), so it takes run()'s `output` array.
async function manyScenario(session, pixels, inProcess) {
  const error = async (p) => p.then(() => null, (x) => ({ code: x.code, message: x.message, isAnybitError: x.name === 'AnybitError' }));
  const plain = (r) => ({ ...r, ms: 0, logits: Array.from(r.logits), probabilities: Array.from(r.probabilities) });
  const floats = pixels.map((p) => Float32Array.from(p, (v) => v / 255));
  // An RGBA image of the same digit (what a canvas gives).
  const image = (p) => {
    const data = new Uint8ClampedArray(4 * p.length);
    p.forEach((v, i) => data.set([v, v, v, 255], 4 * i));
    return { width: 28, height: 28, data };
  };

  const one = [];
  for (const x of floats) one.push(await session.run(x));
  const progress = [];
  const many = await session.runMany(floats, { onProgress: (p) => progress.push(p) });
  const mixed = await session.runMany([image(pixels[0]), floats[1], image(pixels[2])], { imageOptions: { fit: 'mnist' } });
  const mixedOne = [await session.run(image(pixels[0]), { fit: 'mnist' }), await session.run(floats[1]), await session.run(image(pixels[2]), { fit: 'mnist' })];

  // The caller's arrays after a run: still attached, unchanged. A view into a larger buffer: only
  // its elements count (the rest of the buffer is garbage the model must not see).
  const kept = floats[3];
  const before = Array.from(kept);
  await session.run(kept);
  await session.runMany([kept, kept]);
  const big = new Float32Array(3 * 784).fill(0.5);
  big.set(floats[4], 784);
  const view = big.subarray(784, 2 * 784);
  const fromView = await session.run(view);
  const img = image(pixels[5]);
  await session.run(img);

  // Cancel after the first chunk (from onProgress), during a chunk, and before anything is sent.
  const afterFirst = new AbortController();
  const cancelProgress = [];
  const cancelledAfterChunk = await error(session.runMany(floats, {
    signal: afterFirst.signal,
    onProgress: (p) => {
      cancelProgress.push(p);
      afterFirst.abort();
    },
  }));
  const during = new AbortController();
  const inFlight = session.runMany(floats, { signal: during.signal });
  during.abort();
  const cancelledInFlight = await error(inFlight);
  const pre = new AbortController();
  pre.abort();
  const preProgress = [];
  const preAborted = await error(session.runMany(floats, { signal: pre.signal, onProgress: (p) => preProgress.push(p) }));

  return {
    equal: JSON.stringify(many.map(plain)) === JSON.stringify(one.map(plain)),
    firstOne: plain(one[0]),
    predicted: many.map((r) => r.predicted),
    progress,
    mixedEqual: JSON.stringify(mixed.map(plain)) === JSON.stringify(mixedOne.map(plain)),
    kept: { attached: kept.length === 784 && kept.buffer.byteLength === 4 * 784, same: Array.from(kept).every((v, i) => v === before[i]) },
    view: { equal: JSON.stringify(plain(fromView)) === JSON.stringify(plain(one[4])), attached: big.length === 3 * 784 },
    image: { attached: img.data.length === 4 * 784 },
    cancel: { afterChunk: cancelledAfterChunk, cancelProgress, inFlight: cancelledInFlight, preAborted, preProgress },
    empty: await session.runMany([]),
    errors: {
      notArray: await error(session.runMany(floats[0])),
      number: await error(session.runMany([floats[0], 7])),
      float64: await error(session.runMany([floats[0], floats[1], new Float64Array(784)])),
      short: await error(session.runMany([...floats, floats[0].subarray(0, 100)])),
      badImage: await error(session.runMany([floats[0], { width: 28, height: 28, data: [1, 2, 3] }])),
      optionsOnFloats: await error(session.run(floats[0], { fit: 'mnist' })),
      badImageOptions: await error(session.runMany([floats[0]], { imageOptions: 'mnist' })),
      badProgress: await error(session.runMany(floats, { onProgress: 5 })),
      badSignal: await error(session.runMany(floats, { signal: {} })),
    },
    output: await (async () => {
      // run()'s `output`: the output written into the caller's array, which comes back as logits.
      const buf = new Float32Array(10);
      const refused = { worker: await error(session.run(floats[0], { output: buf })) };
      if (!inProcess) return { refused, untouched: buf.every((v) => v === 0) };
      const a = await session.run(floats[0], { output: buf });
      const same = a.logits === buf && JSON.stringify(plain(a)) === JSON.stringify(plain(one[0]));
      const fresh = await session.run(image(pixels[1]));
      const b = await session.run(image(pixels[1]), { output: buf });
      return {
        refused,
        same,
        reused: b.logits === buf && JSON.stringify(plain(b)) === JSON.stringify(plain(fresh)),
        short: await error(session.run(floats[2], { output: new Float32Array(9) })),
        notFloat32: await error(session.run(floats[2], { output: new Float64Array(10) })),
        inRunMany: await error(session.runMany([floats[2]], { imageOptions: { output: buf } })),
        kept: Array.from(buf).join() === Array.from(fresh.logits).join(),
      };
    })(),
    after: (await session.runMany([floats[0]]))[0].predicted,
  };
}

function assertScenario(out, labels) {
  assert.equal(out.equal, true, 'runMany gives run()\'s results, one for one');
  assert.equal(out.firstOne.width, 8);
  // A working 8-bit model gets nearly all of the first 40 test digits.
  assert.ok(out.predicted.filter((p, i) => p === labels[i]).length >= 38, `${out.predicted} vs ${labels}`);
  assert.deepEqual(out.progress, [{ done: 32, total: 40 }, { done: 40, total: 40 }]);
  assert.equal(out.mixedEqual, true, 'images and floats mixed, image options applied to the images');
  assert.deepEqual(out.kept, { attached: true, same: true });
  assert.deepEqual(out.view, { equal: true, attached: true });
  assert.deepEqual(out.image, { attached: true });
  const c = out.cancel;
  assert.deepEqual(c.cancelProgress, [{ done: 32, total: 40 }]);
  assert.deepEqual(c.afterChunk, { code: 'aborted', message: 'runMany was cancelled after 32 of 40 inputs', isAnybitError: true });
  assert.deepEqual(c.inFlight, { code: 'aborted', message: 'runMany was cancelled after 0 of 40 inputs', isAnybitError: true });
  assert.deepEqual([c.preAborted.code, c.preProgress], ['aborted', []]);
  assert.deepEqual(out.empty, []);
  const e = out.errors;
  for (const k of Object.keys(e)) assert.equal(e[k]?.isAnybitError, true, k);
  assert.deepEqual([e.notArray.code, e.notArray.message], ['invalid_argument', 'runMany needs an array of inputs, got a Float32Array']);
  assert.deepEqual([e.number.code, e.number.message], ['invalid_argument', 'inputs[1] must be a Float32Array or an ImageData ({width, height, data}), got number']);
  assert.deepEqual([e.float64.code, e.float64.message], ['invalid_argument', 'inputs[2] must be a Float32Array or an ImageData ({width, height, data}), got a Float64Array']);
  assert.equal(e.short.code, 'shape_mismatch');
  assert.match(e.short.message, /^inputs\[40\]: input has 100 values/);
  assert.equal(e.badImage.code, 'invalid_argument');
  assert.match(e.badImage.message, /^inputs\[1\]: image\.data must be a Uint8ClampedArray or Uint8Array/);
  assert.deepEqual([e.optionsOnFloats.code, e.optionsOnFloats.message], ['invalid_argument', 'options fit apply to images only']);
  assert.equal(e.badImageOptions.code, 'invalid_argument');
  assert.equal(e.badProgress.code, 'invalid_argument');
  assert.equal(e.badSignal.code, 'invalid_argument');
  assert.equal(out.after, labels[0], 'the session works after every refusal and cancel');
}

function assertOutput(o, inProcess) {
  if (!inProcess) {
    assert.equal(o.refused.worker.code, 'invalid_argument');
    assert.match(o.refused.worker.message, /^output: only a session on the caller's thread \(worker: false\)/);
    assert.equal(o.untouched, true);
    return;
  }
  assert.equal(o.refused.worker, null, 'an in-process session takes output');
  assert.equal(o.same, true, 'the logits written into the given array, which is the result\'s logits');
  assert.equal(o.reused, true, 'the same array again, for an image input');
  assert.equal(o.short.code, 'shape_mismatch');
  assert.match(o.short.message, /^output holds 9 values; this model's output \[10\] has 10/);
  assert.deepEqual([o.notFloat32.code, o.notFloat32.message], ['invalid_argument', 'output must be a Float32Array, got a Float64Array']);
  assert.deepEqual([o.inRunMany.code, o.inRunMany.message], ['invalid_argument', 'runMany gives each input its own output array: output applies to run() only']);
  assert.equal(o.kept, true, 'refused runs leave the array as it was');
}

const labels = samples.map((s) => s.label);
const pixels = samples.map((s) => [...s.pixels]);

test('Node: runMany equals run() one at a time; chunks, progress, cancel, typed errors naming the input', async () => {
  const session = await createSession();
  try {
    await session.load(await readFile(MODEL));
    const out = await manyScenario(session, pixels, true);
    assertScenario(out, labels);
    assertOutput(out.output, true);
  } finally {
    await session.dispose();
  }
});

// A plain page importing the installed package, beside the model, in APP/many/, served cross-origin
// isolated and opened in a fresh headless Chromium: `fn({browser, server})`, then both closed.
async function onPage(fn) {
  const dir = join(APP, 'many');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
    '<script type="importmap">{ "imports": { "anybit": "/node_modules/anybit/index.js" } }</script>' +
    '<script type="module">import * as anybit from "anybit"; window.anybit = anybit; document.body.dataset.ready = "yes";</script>');
  await writeFile(join(dir, 'mnist.anybit'), await readFile(MODEL));
  const server = await serve(APP, { isolated: true });
  const browser = await launch();
  try {
    await browser.page.goto(`${server.origin}/many/index.html`);
    await browser.page.waitForSelector('body[data-ready=yes]', { state: 'attached', timeout: 30_000 });
    return await fn({ browser, server });
  } finally {
    await browser.close();
    await server.close();
  }
}

test('Chromium: the same on a plain page, in the worker (threads build); prefetch loads the first model', async () => {
  const model = await readFile(MODEL);
  await onPage(async ({ browser, server }) => {
    const out = await browser.page.evaluate(async ([scenario, px]) => {
      // The model's download starts with the session; load() of the same URL takes it.
      const session = await window.anybit.createSession({ prefetch: 'mnist.anybit' });
      try {
        const loadProgress = [];
        const info = await session.load('mnist.anybit', { onProgress: (p) => loadProgress.push(p) });
        const run = (0, eval)(`(${scenario})`);
        return { build: session.build.variant, width: info.width, loadProgress, ...(await run(session, px, false)) };
      } finally {
        await session.dispose();
      }
    }, [manyScenario.toString(), pixels]);
    assert.equal(out.build, 'threads');
    assert.equal(out.width, 8);
    assert.deepEqual(out.loadProgress.at(-1), { loaded: model.length, total: model.length, planes: 8, planeTotal: 8 });
    assertScenario(out, labels);
    assertOutput(out.output, false);
    // The model was downloaded once, by the prefetch, and the wasm binary once (the worker
    // compiles it itself and hands the module to the glue and the pool's threads).
    assert.equal(server.requests.filter((r) => r === '/many/mnist.anybit').length, 1, server.requests.join(', '));
    assert.equal(server.requests.filter((r) => r.endsWith('.wasm')).length, 1, server.requests.join(', '));
    assert.deepEqual(browser.errors, []);
  });
});

test('Chromium: prefetch that fails or is not used: load() reports as without it', async () => {
  await onPage(async ({ browser, server }) => {
    const out = await browser.page.evaluate(async () => {
      const error = async (p) => p.then(() => null, (x) => ({ code: x.code, message: x.message }));
      const missing = await window.anybit.createSession({ prefetch: 'missing.anybit' });
      const other = await window.anybit.createSession({ prefetch: 'missing.anybit' });
      const bad = await error(window.anybit.createSession({ prefetch: 'http://[' }));
      try {
        return {
          missing: await error(missing.load('missing.anybit')),
          // A first load of another URL drops the prefetch and loads what it was asked.
          other: (await other.load('mnist.anybit')).width,
          progressive: (await other.load('mnist.anybit', { width: 2 })).planesLoaded,
          bad,
        };
      } finally {
        await missing.dispose();
        await other.dispose();
      }
    });
    assert.equal(out.missing.code, 'fetch_failed');
    assert.match(out.missing.message, /missing\.anybit: HTTP 404/);
    assert.equal(out.other, 8);
    assert.equal(out.progressive, 2);
    assert.deepEqual(out.bad, { code: 'invalid_argument', message: 'prefetch: not a URL: http://[' });
  });
});

test('Chromium: a worker warmed before its session compiles the auto build once; another build ignores it', async () => {
  await onPage(async ({ browser, server }) => {
    const wasmAsked = () => server.requests.filter((r) => r.endsWith('.wasm'));
    // As a page that starts the worker from a classic script in its head: the worker started and
    // warmed first, the session created later.
    const warmed = await browser.page.evaluate(async () => {
      const worker = new Worker('/node_modules/anybit/worker.js', { type: 'module' });
      worker.postMessage({ type: 'warm' });
      // No answer comes to the warm message, and it must not be taken for a request.
      const answers = [];
      worker.addEventListener('message', ({ data }) => answers.push(data));
      await new Promise((r) => setTimeout(r, 300));
      const session = await window.anybit.createSession({ worker, prefetch: 'mnist.anybit' });
      try {
        const info = await session.load('mnist.anybit');
        const r = await session.run(new Float32Array(784).fill(0.5));
        return { build: session.build.variant, width: info.width, predicted: r.predicted, before: answers.filter((a) => !a.id) };
      } finally {
        await session.dispose();
      }
    });
    assert.equal(warmed.build, 'threads');
    assert.equal(warmed.width, 8);
    assert.ok(Number.isInteger(warmed.predicted));
    assert.deepEqual(warmed.before, []);
    // Compiled once: warm's fetch is the one init used.
    assert.deepEqual(wasmAsked().map((r) => r.split('/').at(-2)), ['threads'], server.requests.join(', '));
    const forced = await browser.page.evaluate(async () => {
      const worker = new Worker('/node_modules/anybit/worker.js', { type: 'module' });
      worker.postMessage({ type: 'warm' });
      const session = await window.anybit.createSession({ worker, build: 'simd' });
      try {
        await session.load('mnist.anybit');
        return { build: session.build.variant, top: (await session.run(new Float32Array(784).fill(0.5))).predicted };
      } finally {
        await session.dispose();
      }
    });
    assert.equal(forced.build, 'simd');
    assert.equal(forced.top, warmed.predicted);
    assert.deepEqual(browser.errors, []);
  });
});
