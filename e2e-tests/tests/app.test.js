// End-to-end tests of the demo page in headless Chromium, against the built dist/ (trunk build),
// the real trained models and real test images: loading, widths, the runtime panel, the charts,
// the builds with and without cross-origin isolation, broken model files.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  chooseWidth, classify, DIST, idxLabels, marks, modelGraph, open, overflow, panel, prediction, prepare, shot,
} from '../lib/app.js';
import { launch } from '../lib/chromium.js';
import { serve } from '../lib/server.js';

// The first MNIST test digits (7 2 1 0 4 ...) are unambiguous: a working 8-bit model gets each.
const EASY = [0, 1, 2, 3, 4];
// How long a browser is given to finish starting before the "first visit" navigation.
const LAUNCH_SETTLE_MS = 2000;

let labels;
let modelBytes;

before(async () => {
  await prepare();
  modelBytes = await readFile(join(DIST, 'models', 'mnist.anybit'));
  labels = await idxLabels('mnist-t100-labels.idx1');
});

describe('served cross-origin isolated (COOP/COEP)', () => {
  let server;
  let browser;
  before(async () => {
    server = await serve(DIST, { isolated: true });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('loads the MNIST model on the page\'s thread and classifies real digits at 8 bits', async () => {
    const { page } = browser;
    const wall = await open(page, server.origin);
    const cold = await marks(page);
    // A second navigation in the same browser: the figure a returning visitor sees.
    const wallWarm = await open(page, server.origin);
    const warm = await marks(page);
    const fmt = (m) => Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ');
    console.log(`# navigation to first prediction (MNIST, page's thread): ${cold['first-prediction']} ms cold, ${warm['first-prediction']} ms warm; painted ${cold['first-prediction-painted']} / ${warm['first-prediction-painted']} ms (in-page marks: ${fmt(cold)} | ${fmt(warm)}; page.goto to ready: ${wall} / ${wallWarm} ms)`);
    assert.ok(cold['first-prediction'] > 0 && warm['first-prediction'] > 0, 'the first prediction was shown');
    assert.ok(cold['first-prediction-painted'] >= cold['first-prediction'], 'and painted');
    // The images are classified on the page's thread: no worker is started for them (attacks and
    // text start their own when used), and each navigation downloads the one build it runs.
    const asked = (path) => server.requests.filter((r) => r === path).length;
    assert.equal(asked('/anybit/worker.js'), 0, server.requests.join(', '));
    const p = await panel(page);
    assert.equal(p.error, null);
    assert.equal(p.isolated, true);
    assert.equal(p.width, 8, 'starts at the widest width');
    assert.equal(p.model, 'mnist-cnn');
    assert.equal(p.variant, 'relaxed', 'single-thread relaxed-SIMD build on the page');
    assert.equal(asked('/anybit/wasm/relaxed/anybit_bg.wasm'), 2, server.requests.join(', '));
    assert.equal(p.buildText, 'relaxed SIMD');
    assert.equal(p.threads, 1);
    assert.equal(p.threadsText, '1');
    assert.ok(p.latencyMs > 0, `latency shown: ${p.latencyText}`);
    assert.match(p.latencyText, /ms inference/);
    const load = await page.locator('#load-text').textContent();
    const size = modelBytes.length / 1024;
    assert.ok(load.includes(`${size.toFixed(1)} of ${size.toFixed(1)} KiB`) && load.includes('8 of 8 bit planes'), `progress: ${load}`);
    await shot(page, 'isolated-8bit');
    for (const i of EASY) assert.equal(await classify(page, i), labels[i], `test image ${i}`);
    let correct = 0;
    for (let i = 0; i < labels.length; i++) correct += (await classify(page, i)) === labels[i] ? 1 : 0;
    console.log(`# 8-bit accuracy on ${labels.length} test images in the page: ${correct}`);
    assert.ok(correct >= 0.95 * labels.length, `${correct}/${labels.length} correct at 8 bits`);
  });

  test('a first visit in a browser that has finished starting', async () => {
    // The cold figure above is of a browser launched just before: the page loads while
    // Chromium's own processes still start on the same cores. A visitor's browser is running
    // already; this is their first visit (nothing cached, nothing compiled).
    const fresh = await launch();
    try {
      await fresh.page.waitForTimeout(LAUNCH_SETTLE_MS);
      await open(fresh.page, server.origin);
      const m = await marks(fresh.page);
      console.log(`# first visit ${LAUNCH_SETTLE_MS} ms after the browser's launch: first prediction ${m['first-prediction']} ms, painted ${m['first-prediction-painted']} ms (runtime-ready ${m['runtime-ready']})`);
      assert.ok(m['first-prediction'] > 0 && m['first-prediction-painted'] >= m['first-prediction'], JSON.stringify(m));
      assert.deepEqual(fresh.errors, []);
    } finally {
      await fresh.close();
    }
  });

  test('every width 1..8 can be selected: the panel, the prediction and the latency chart follow', async () => {
    const { page } = browser;
    const input = 'sample:0';
    await classify(page, 0);
    for (let w = 8; w >= 1; w--) {
      const r = await chooseWidth(page, w, input);
      const p = await panel(page);
      assert.equal(p.width, w, 'panel shows the chosen width');
      assert.match(p.widthText, new RegExp(`^${w}-bit weights`));
      assert.ok(Number.isInteger(r.cls) && r.cls >= 0 && r.cls < 10, `prediction at ${w} bits: ${r.cls}`);
      assert.equal(r.bars, 10, 'ten probability bars');
      assert.equal(r.top, r.cls, 'the highlighted bar is the predicted class');
      assert.ok(await page.locator(`#chart-latency rect[data-width="${w}"]`).count() === 1, `latency bar for ${w} bits`);
      await shot(page, `isolated-${w}bit`);
    }
    // The latency chart now has a measured bar for every width.
    assert.equal(await page.locator('#chart-latency rect').count(), 8);
    // Switching width re-runs the same image: the easy digits stay right down to 2 bits.
    for (const w of [4, 2]) {
      await chooseWidth(page, w, input);
      for (const i of EASY.slice(1)) assert.equal(await classify(page, i), labels[i], `test image ${i} at ${w} bits`);
      await classify(page, 0);
    }
  });

  test('switching width says whether the prediction changed', async () => {
    const { page } = browser;
    await classify(page, 8);
    const at8 = await chooseWidth(page, 8, 'sample:8');
    const at1 = await chooseWidth(page, 1, 'sample:8');
    const name = (c) => String(c);
    const expected = at8.cls === at1.cls ? 'Same prediction as at 8 bits.' : `Changed from ${name(at8.cls)} at 8 bits.`;
    assert.equal(at1.change, expected);
    await chooseWidth(page, 8, 'sample:8');
  });

  test('Auto: the policy decides on this device, says why, and the prediction is the chosen width\'s', async () => {
    const { page } = browser;
    // With ?threads=2 the page's session runs the threads build (the page's thread leads a pool
    // of two), so the policy weighs thread counts too.
    await open(page, server.origin, '?threads=2');
    const pool = await panel(page);
    assert.equal(pool.variant, 'threads');
    assert.match(pool.buildText, /relaxed SIMD \+ threads/);
    assert.equal(pool.threads, 2);
    await classify(page, 0);
    await page.fill('#budget', '1000');
    await page.check('#widths input[value="auto"]');
    await page.waitForSelector('#auto-decision[data-width]', { timeout: 30_000 });
    // The timing ran in the worker twin of the page's session (the page's thread stays free).
    assert.ok(server.requests.includes('/anybit/worker.js'), 'Auto started the twin worker');
    const chosen = Number(await page.locator('#auto-decision').getAttribute('data-width'));
    const auto = await prediction(page, 'sample:0', chosen);
    const p = await panel(page);
    assert.equal(p.width, chosen, 'the panel shows the width Auto chose');
    const text = await page.locator('#auto-decision').textContent();
    // The reasons name the build, the thread count and the chosen width.
    // (The threads build runs relaxed-SIMD kernels.)
    assert.match(text, new RegExp(`Auto chose ${chosen}-bit weights \\(relaxed, ${p.threads} threads?\\)`));
    assert.match(text, /calibrated on this device: relaxed kernels, \d+ threads/);
    // The pool has more than one thread: the policy timed one thread too and says which it took.
    assert.match(text, p.threads === 1 ? new RegExp(`1 thread: at ${chosen} bits \\d+ threads are predicted`) : new RegExp(`${p.threads} threads: predicted [0-9.]+ ms at ${chosen} bits`));
    assert.match(text, new RegExp(`${chosen} bits: the most accurate width within the budget`));
    // A generous budget: the most accurate width by the model's stored eval table.
    const table = (await modelGraph('mnist.anybit')).eval[0].accuracy;
    const best = Math.max(...table.map(([, a]) => a));
    assert.equal(table.find(([w]) => w === chosen)[1], best);
    assert.equal(await page.locator('#auto-decision tbody tr').count(), 8);
    await shot(page, 'auto-generous');
    // Back from a hidden tab, Auto calibrates again and re-decides live.
    assert.equal(await page.locator('#auto-decision').getAttribute('data-calibrations'), '1');
    await page.evaluate(() => {
      for (const state of ['hidden', 'visible']) {
        Object.defineProperty(document, 'visibilityState', { value: state, configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }
    });
    await page.waitForSelector('#auto-decision[data-calibrations="2"]', { timeout: 30_000 });
    assert.match(await page.locator('#auto-decision').textContent(), /Re-decided: the page is visible again/);
    // Battery low and discharging: Auto re-decides live with half the budget (no new calibration);
    // on the charger again, the full budget. The page's BatteryManager is the one the app listens to.
    const power = (charging, level, event) => page.evaluate(async ([charging, level, event]) => {
      const b = await navigator.getBattery();
      Object.defineProperty(b, 'charging', { value: charging, configurable: true });
      Object.defineProperty(b, 'level', { value: level, configurable: true });
      b.dispatchEvent(new Event(event));
    }, [charging, level, event]);
    assert.equal(await page.evaluate(() => typeof navigator.getBattery), 'function', 'Chromium has the Battery Status API');
    await power(false, 0.1, 'levelchange');
    await page.waitForSelector('#auto-decision[data-budget="500"]', { timeout: 30_000 });
    let decided = await page.locator('#auto-decision').textContent();
    assert.match(decided, /Re-decided: the battery ran low/);
    assert.match(decided, /battery at 10% and discharging: the 1000 ms budget is halved to 500 ms/);
    assert.equal(await page.locator('#auto-decision').getAttribute('data-calibrations'), '2', 'the weights and calibration are kept');
    await power(true, 0.1, 'chargingchange');
    await page.waitForSelector('#auto-decision[data-budget="1000"]', { timeout: 30_000 });
    decided = await page.locator('#auto-decision').textContent();
    assert.match(decided, /Re-decided: the battery is charging or no longer low/);
    assert.doesNotMatch(decided, /halved/);
    // The prediction shown is the one the chosen width produces when picked by hand.
    const manual = await chooseWidth(page, chosen, 'sample:0');
    assert.equal(manual.cls, auto.cls);
    // Auto's prediction at this width is already on screen, so chooseWidth can return before the
    // page has restored the pool (setThreads, then setWidth, then the panel): wait for the panel.
    const restored = await page.waitForFunction(() => Number(document.getElementById('rt-threads').dataset.threads) > 1, null, { timeout: 30_000 })
      .then(() => true, () => false);
    assert.ok(restored, `a width picked by hand runs with the whole pool again (panel: ${(await panel(page)).threadsText})`);
    assert.ok(await page.locator('#auto-decision').isHidden(), 'a manual width hides the decision');
    // An impossible budget: the fastest predicted width, and the reasons say no width fits.
    await page.fill('#budget', '0.0001');
    await page.check('#widths input[value="auto"]');
    await page.waitForFunction(() => /no width fits/.test(document.getElementById('auto-decision').textContent), null, { timeout: 30_000 });
    const fastest = Number(await page.locator('#auto-decision').getAttribute('data-width'));
    assert.equal((await prediction(page, 'sample:0', fastest)).width, fastest);
    await shot(page, 'auto-tight');
    await chooseWidth(page, 8, 'sample:0');
  });

  test('the accuracy chart shows the eval table stored in the model file', async () => {
    const { page } = browser;
    const graph = await modelGraph('mnist.anybit');
    const table = graph.eval[0].accuracy;
    assert.equal(await page.locator('#chart-accuracy circle').count(), table.length);
    const title = await page.locator('#chart-accuracy svg title').textContent();
    for (const [w, a] of table) assert.ok(title.includes(`${w} bits ${(a * 100).toFixed(2)}%`), `${w} bits in "${title}"`);
  });

  test('keyboard only: the test images and the widths', async () => {
    const { page } = browser;
    await classify(page, 0);
    await page.focus('#samples .sample[data-index="0"]');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    assert.equal((await prediction(page, 'sample:1')).cls, labels[1]);
    await page.focus('#widths input[value="8"]');
    await page.keyboard.press('ArrowRight'); // next radio in the group: 7 bits
    const r = await prediction(page, 'sample:1', 7);
    assert.equal(r.cls, labels[1]);
    assert.equal((await panel(page)).width, 7);
    await chooseWidth(page, 8, 'sample:1');
  });

  test('readable on a 375 px wide phone screen', async () => {
    const { page } = browser;
    await page.setViewportSize({ width: 375, height: 812 });
    try {
      await open(page, server.origin);
      const wider = await overflow(page);
      assert.ok(wider <= 0, `the page or a card is ${wider} px wider than the screen`);
      const pad = await page.locator('#pad').boundingBox();
      assert.ok(pad.x >= 0 && pad.x + pad.width <= 375, 'drawing pad fits');
      await shot(page, 'phone-375');
    } finally {
      await page.setViewportSize({ width: 1100, height: 900 });
    }
  });

  test('no request leaves the origin', async () => {
    const seen = [...new Set(browser.requests)];
    assert.ok(seen.some((u) => u.endsWith('/models/mnist.anybit')), `the model request was recorded: ${seen}`);
    assert.ok(server.requests.some((u) => u.endsWith('/anybit_bg.wasm')), 'the server saw the wasm build');
    const foreign = seen.filter((u) => !u.startsWith(`${server.origin}/`) && !/^(data|blob|about):/.test(u));
    assert.deepEqual(foreign, [], 'requests to other origins');
    assert.deepEqual(browser.errors, [], 'console errors');
  });
});

describe('served without COOP/COEP', () => {
  let server;
  let browser;
  before(async () => {
    server = await serve(DIST, { isolated: false });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('falls back to the single-thread relaxed-SIMD build and still classifies', async () => {
    const { page } = browser;
    await open(page, server.origin);
    const p = await panel(page);
    assert.equal(p.error, null);
    assert.equal(p.isolated, false);
    assert.equal(p.variant, 'relaxed');
    assert.equal(p.threads, 1);
    assert.equal(p.buildText, 'relaxed SIMD');
    for (const i of EASY) assert.equal(await classify(page, i), labels[i], `test image ${i}`);
    await shot(page, 'not-isolated');
  });

  test('?width=2 downloads only the planes 2 bits need (HTTP Range); picking 8 bits fetches the rest', async () => {
    const { page } = browser;
    // The same images at 2 bits after a whole download, to compare with.
    await open(page, server.origin);
    const whole = [];
    await chooseWidth(page, 2, 'sample:0');
    for (const i of EASY) whole.push(await classify(page, i));
    const mark = server.transfers.length;
    const fetched = () => server.transfers.slice(mark).filter((t) => t.path.endsWith('/mnist.anybit'));
    await open(page, server.origin, '?width=2');
    const first = fetched();
    const sent = first.reduce((n, t) => n + t.bytes, 0);
    assert.ok(first.length >= 1 && first.every((t) => t.status === 206), JSON.stringify(first));
    // mnist.anybit's 8-bit dense head is a third of its weights: the 2-bit prefix is 62% of the file.
    assert.ok(sent < 0.7 * modelBytes.length, `${sent} of ${modelBytes.length} bytes`);
    const planes = page.locator('#rt-planes');
    assert.equal(await planes.getAttribute('data-planes'), '2');
    assert.match(await planes.textContent(), /^2 of 8 weight bit planes loaded \([0-9.]+ KiB fetched by Range requests\)$/);
    assert.match(await page.locator('#load-text').textContent(), /2 of 8 bit planes/);
    assert.equal((await panel(page)).width, 2);
    const partial = [];
    for (const i of EASY) partial.push(await classify(page, i));
    assert.deepEqual(partial, whole, 'the same predictions as after a whole download');
    const at8 = await chooseWidth(page, 8, `sample:${EASY.at(-1)}`);
    assert.equal(at8.cls, labels[EASY.at(-1)]);
    assert.equal(await planes.getAttribute('data-planes'), '8');
    const more = fetched().slice(first.length);
    assert.equal(more.length, 1, JSON.stringify(more));
    assert.equal(more[0].status, 206);
    assert.equal(sent + more[0].bytes, modelBytes.length, 'the rest of the file, once');
    console.log(`?width=2: ${sent} of ${modelBytes.length} bytes (${(100 * sent / modelBytes.length).toFixed(1)}%), then ${more[0].bytes} for 8 bits`);
    await shot(page, 'progressive-8bit');
  });

  for (const variant of ['scalar', 'relaxed']) {
    test(`the ${variant} build, when forced, classifies the same`, async () => {
      const { page } = browser;
      await open(page, server.origin, `?build=${variant}`);
      const p = await panel(page);
      assert.equal(p.error, null);
      assert.equal(p.variant, variant);
      for (const i of EASY) assert.equal(await classify(page, i), labels[i], `test image ${i}`);
    });
  }
});

describe('broken model files', () => {
  let server;
  let browser;
  before(async () => {
    server = await serve(DIST, {
      isolated: true,
      overrides: {
        '/models/truncated.anybit': modelBytes.subarray(0, Math.floor(modelBytes.length / 2)),
        '/models/garbage.anybit': Buffer.from('this is not a model file at all, just some text'),
      },
    });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const cases = [
    ['truncated.anybit', ['truncated', 'bad_layout']],
    ['garbage.anybit', ['bad_magic']],
    ['missing.anybit', ['fetch_failed']],
  ];
  for (const [file, codes] of cases) {
    test(`${file} shows a clear error on the page, with what to do`, async () => {
      const { page } = browser;
      await open(page, server.origin, `?model=models/${file}`);
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
      const box = page.locator('#error');
      assert.ok(await box.isVisible(), 'error box is visible');
      const code = await box.getAttribute('data-code');
      assert.ok(codes.includes(code), `error code ${code}, expected one of ${codes}`);
      const text = await box.textContent();
      assert.match(text, /Could not load the model/);
      assert.match(text, /pick the other model|pick the model again/, `says what to do: ${text}`);
      assert.equal(await page.locator('#prediction').textContent(), '–', 'no prediction from a broken model');
      await shot(page, `error-${file.replace('.anybit', '')}`);
    });
  }

  test('after a failed load, the other model can still be picked', async () => {
    const { page } = browser;
    await open(page, server.origin, '?model=models/garbage.anybit');
    await page.check('#models input[value="mnist"]');
    const r = await prediction(page, 'sample:0', 8);
    assert.equal(r.cls, labels[0]);
    assert.ok(await page.locator('#error').isHidden(), 'the error is gone');
  });
});

describe('a runtime that cannot start', () => {
  let server;
  let browser;
  before(async () => {
    // Served but unusable: the page must say so, not wait forever. The page's own build is a
    // broken binary; the worker (attacks) throws at once.
    server = await serve(DIST, {
      isolated: true,
      overrides: {
        '/anybit/wasm/relaxed/anybit_bg.wasm': Buffer.from('not wasm'),
        '/anybit/worker.js': Buffer.from('throw new Error("broken worker");'),
      },
    });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a broken build: the page says the runtime could not start, with what to do', async () => {
    const { page } = browser;
    await open(page, server.origin);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
    const box = page.locator('#error');
    assert.equal(await box.getAttribute('data-code'), 'runtime_unavailable');
    assert.match(await box.textContent(), /Could not start the runtime.*cannot load the relaxed build.*anybit\/ folder/s);
    await shot(page, 'error-build');
  });

  test('a broken worker: images are classified on the page, and an attack says why it cannot run', async () => {
    const { page } = browser;
    await open(page, server.origin, '?build=simd');
    assert.equal((await panel(page)).error, null);
    assert.equal(await classify(page, 0), labels[0]);
    await page.click('#attack-run');
    const box = page.locator('#attack-error');
    await box.waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await box.getAttribute('data-code'), 'runtime_unavailable');
    assert.match(await box.textContent(), /Attacks are not available: .*anybit worker failed/);
    assert.equal(await page.locator('#attack-card').getAttribute('data-state'), 'idle');
    await shot(page, 'error-worker');
  });
});
