// Session.attack from the installed package: a real MNIST test digit attacked in Node (in-process)
// and on a plain page in headless Chromium (in the worker, threads build): the result, progress,
// cancel, refusals and the session's width afterwards; and the README's attack example in Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { launch } from '../../e2e-tests/lib/chromium.js';
import { serve } from '../../e2e-tests/lib/server.js';
import { APP, MODEL, digits } from '../lib/app.js';

const { createSession, AnybitError } = await import(pathToFileURL(join(APP, 'entry.mjs')).href);

const [seven] = await digits(1); // test digit 0, a 7
const image = () => Float32Array.from(seven.pixels, (p) => p / 255);

// The checks shared by Node and the page; `out` is what attackScenario (below) returns.
function assertScenario(out) {
  const r = out.result;
  assert.equal(r.attack, 'pgd-linf');
  assert.equal(r.width, 8);
  assert.equal(r.label, seven.label);
  assert.equal(r.target, null);
  assert.equal(r.success, true);
  const at8 = r.predictions.find((p) => p.width === 8);
  assert.equal(at8.original.index, seven.label);
  assert.notEqual(at8.adversarial.index, seven.label);
  assert.equal(at8.adversarial.label, String(at8.adversarial.index));
  assert.deepEqual(r.predictions.map((p) => p.width), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(r.inputShape, [28, 28, 1]);
  assert.deepEqual(r.settings, { eps: 0.2, steps: 40, stepSize: r.settings.stepSize, searchSteps: 8, seed: 0 });
  assert.ok(r.linf <= 0.2 + 1e-6 && r.linf > 0.1, `linf ${r.linf}`);
  assert.ok(r.gradients >= 1 && r.gradients <= 40 && r.ms > 0);
  // Rounded to pixel levels, and the norms are those of the rounded image (what a PNG reproduces).
  assert.ok(out.levels, 'every adversarial pixel is k/255');
  assert.ok(Math.abs(out.l2 - r.l2) < 1e-4, `${out.l2} vs ${r.l2}`);
  assert.equal(out.runAdversarial, at8.adversarial.index, 'a plain run of the adversarial image agrees');
  // Progress: monotone, and it ends at the total.
  assert.ok(out.progress.length >= 1);
  assert.ok(out.progress.every((p, i) => p.total === 40 && (i === 0 || p.done >= out.progress[i - 1].done)), JSON.stringify(out.progress));
  assert.deepEqual(out.progress.at(-1), { done: 40, total: 40 });
  // The width is the session's own before, after a finished attack and after a cancelled one.
  assert.deepEqual(out.widths, [3, 3, 3]);
  // Cancel: rejects with 'aborted' soon after the abort, and the session answers at once.
  assert.equal(out.abort.code, 'aborted');
  assert.ok(out.abort.ms < 500, `aborted after ${out.abort.ms} ms`);
  assert.equal(out.abort.runAfter, seven.label);
  assert.ok(out.abort.progressBefore >= 1 && out.abort.progressBefore < 5000);
  assert.deepEqual(out.preAborted, { code: 'aborted', progress: 0 });
  // A request sent during an attack is answered after it.
  assert.deepEqual(out.order, ['attack', 'run']);
  assert.deepEqual(out.refusals, {
    negativeEps: 'invalid_argument', nanEps: 'invalid_argument', hugeEps: 'invalid_argument', stringEps: 'invalid_argument',
    zeroSteps: 'invalid_argument', hugeSteps: 'invalid_argument', target: 'invalid_argument', name: 'invalid_argument',
    misspelt: 'invalid_argument', noImage: 'invalid_argument', width: 'unsupported_width',
  });
}

// Runs everything assertScenario checks against `session` (loaded with MNIST): the same code on the
// page (passed as text) and in Node.
async function attackScenario(session, pixels) {
  const image = () => Float32Array.from(pixels, (p) => p / 255);
  const widths = [];
  await session.setWidth(3);
  widths.push((await session.info()).width);
  const progress = [];
  const order = [];
  const attacking = session.attack({ image: image(), attack: 'pgd-linf', eps: 0.2, steps: 40, width: 8 },
    { onProgress: (p) => progress.push(p) }).then((r) => (order.push('attack'), r));
  const running = session.run(image()).then((r) => (order.push('run'), r));
  const result = await attacking;
  await running;
  widths.push((await session.info()).width);
  const levels = result.adversarial.every((v) => Math.abs(v * 255 - Math.round(v * 255)) < 1e-3);
  const l2 = Math.hypot(...result.adversarial.map((v, i) => v - result.original[i]));
  await session.setWidth(8);
  const runAdversarial = (await session.run(result.adversarial)).predicted;
  await session.setWidth(3);

  // A long attack, aborted once it has made progress.
  const controller = new AbortController();
  let abortedAt = 0;
  let progressBefore = 0;
  const code = await session.attack({ image: image(), attack: 'pgd-linf', steps: 5000, width: 1 }, {
    signal: controller.signal,
    onProgress: (p) => {
      if (abortedAt) return;
      progressBefore = p.done;
      abortedAt = performance.now();
      controller.abort();
    },
  }).then(() => 'resolved', (e) => e.code);
  const abort = { code, ms: performance.now() - abortedAt, progressBefore, runAfter: (await session.run(image())).predicted };
  widths.push((await session.info()).width);
  const pre = new AbortController();
  pre.abort();
  let preProgress = 0;
  const preCode = await session.attack({ image: image(), attack: 'fgsm' }, { signal: pre.signal, onProgress: () => preProgress++ })
    .then(() => 'resolved', (e) => e.code);

  const refuse = (extra) => session.attack({ image: image(), attack: 'pgd-linf', ...extra }).then(() => 'resolved', (e) => e.code);
  const refusals = {
    negativeEps: await refuse({ eps: -0.1 }), nanEps: await refuse({ eps: NaN }), hugeEps: await refuse({ eps: 1e9 }),
    stringEps: await refuse({ eps: '0.2' }), zeroSteps: await refuse({ steps: 0 }), hugeSteps: await refuse({ steps: 1e12 }),
    target: await refuse({ target: 10 }), name: await refuse({ attack: 'pgd' }), misspelt: await refuse({ stepsize: 0.01 }),
    noImage: await refuse({ image: undefined }), width: await refuse({ width: 9 }),
  };
  return { result, progress, order, widths, levels, l2, runAdversarial, abort, preAborted: { code: preCode, progress: preProgress }, refusals };
}

test('Node: pgd-linf at 8 bits on a real test digit changes the prediction; progress, cancel, refusals, width', async () => {
  const session = await createSession();
  try {
    await session.load(await readFile(MODEL));
    const out = await attackScenario(session, [...seven.pixels]);
    assertScenario(out);
    // Node's refusals carry readable messages too.
    const e = await session.attack({ image: image(), attack: 'pgd-linf', eps: -1 }).catch((err) => err);
    assert.ok(e instanceof AnybitError);
    assert.match(e.message, /eps must be a number in \(0, 1\]/);
    // An RGBA image is converted as run() converts it.
    const rgba = new Uint8ClampedArray(784 * 4);
    seven.pixels.forEach((p, i) => rgba.set([p, p, p, 255], 4 * i));
    const fromImage = await session.attack({ image: { width: 28, height: 28, data: rgba }, attack: 'fgsm', eps: 0.05, round: false });
    // The same pixels as the floats, up to the conversion's rounding (it multiplies by 1/255).
    const want = image();
    assert.ok(fromImage.original.every((v, i) => Math.abs(v - want[i]) < 1e-6));
    assert.equal(fromImage.label, seven.label);
    assert.ok(fromImage.adversarial.some((v) => Math.abs(v * 255 - Math.round(v * 255)) > 1e-3), 'round: false keeps floats');
  } finally {
    await session.dispose();
  }
});

test("Node: the README's attack example runs as written (from the installed package's README)", async () => {
  const readme = await readFile(join(APP, 'node_modules', 'anybit', 'README.md'), 'utf8');
  const example = readme.match(/^### Attacks\n[\s\S]*?^```js\n([\s\S]*?)^```$/m)?.[1];
  assert.ok(example, 'the README has an attack example');
  const session = await createSession();
  try {
    await session.load(await readFile(MODEL));
    const logs = [];
    const AsyncFunction = (async () => {}).constructor;
    await new AsyncFunction('session', 'console', example)(session, { log: (line) => logs.push(line) });
    assert.equal(logs.filter((l) => l.startsWith('attack ')).at(-1), 'attack 40/40');
    assert.equal(logs.filter((l) => / bits: 1 -> /.test(l)).length, 8, logs.join('\n'));
    assert.match(logs.at(-1), /^success true: L2 \d+\.\d\d, Linf 0\.200, \d+ gradients$/);
  } finally {
    await session.dispose();
  }
});

test('Chromium: the same on a plain page, the attack in the worker (threads build)', async () => {
  const dir = join(APP, 'attack');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
    '<script type="importmap">{ "imports": { "anybit": "/node_modules/anybit/index.js" } }</script>' +
    '<script type="module">import * as anybit from "anybit"; window.anybit = anybit; document.body.dataset.ready = "yes";</script>');
  await writeFile(join(dir, 'mnist.anybit'), await readFile(MODEL));
  const server = await serve(APP, { isolated: true });
  const browser = await launch();
  try {
    await browser.page.goto(`${server.origin}/attack/index.html`);
    await browser.page.waitForSelector('body[data-ready=yes]', { state: 'attached', timeout: 30_000 });
    const out = await browser.page.evaluate(async ([scenario, pixels]) => {
      const session = await window.anybit.createSession();
      await session.load('mnist.anybit');
      try {
        const run = (0, eval)(`(${scenario})`);
        return { build: session.build.variant, ...(await run(session, pixels)) };
      } finally {
        await session.dispose();
      }
    }, [attackScenario.toString(), [...seven.pixels]]);
    assert.equal(out.build, 'threads');
    // Float32Arrays cross from the page as plain objects; rebuild them for the shared checks.
    for (const k of ['original', 'adversarial', 'perturbation']) out.result[k] = Float32Array.from(Object.values(out.result[k]));
    assertScenario(out);
    assert.deepEqual(browser.errors, []);
    console.log(`page: pgd-linf 40 steps at 8 bits ${out.result.ms.toFixed(0)} ms; cancel answered in ${out.abort.ms.toFixed(0)} ms`);
  } finally {
    await browser.close();
    await server.close();
  }
});
