// End-to-end tests of the demo page in headless Chromium, against the built dist/ (trunk build)
// and the real trained MNIST model with real MNIST test images.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { launch } from '../lib/browser.js';
import { serve } from '../lib/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = resolve(process.env.ANYBIT_DIST ?? join(ROOT, 'dist'));
const SHOTS = resolve(process.env.ANYBIT_SCREENSHOTS ?? join(ROOT, 'e2e-tests', 'screenshots'));
const MODEL = join(DIST, 'models', 'mnist.anybit');
const LABELS = join(DIST, 'fixtures', 'mnist-t100-labels.idx1');
const LOAD_TIMEOUT = 90_000;

// The first MNIST test digits (7 2 1 0 4 ...) are unambiguous: a working 8-bit model gets each.
const EASY = [0, 1, 2, 3, 4];

let labels;
let modelBytes;

before(async () => {
  await stat(join(DIST, 'index.html')).catch(() => {
    throw new Error(`${DIST}/index.html missing: run "trunk build --release --offline" first`);
  });
  modelBytes = await readFile(MODEL);
  // Labels straight from the IDX file (header: 4 magic bytes + count), not from the page.
  labels = [...(await readFile(LABELS)).subarray(8)];
  await mkdir(SHOTS, { recursive: true });
  console.log(`# screenshots: ${SHOTS}`);
});

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Opens the page; resolves when the first prediction (or an error) is shown. */
async function open(page, origin, query = '') {
  const t0 = Date.now();
  await page.goto(`${origin}/index.html${query}`);
  await page.waitForSelector('body[data-state="ready"], body[data-state="error"]', { timeout: LOAD_TIMEOUT });
  return Date.now() - t0;
}

async function panel(page) {
  return page.evaluate(() => ({
    variant: document.getElementById('rt-build').dataset.variant,
    threads: Number(document.getElementById('rt-threads').dataset.threads),
    width: Number(document.getElementById('rt-width').dataset.width),
    cores: navigator.hardwareConcurrency,
    isolated: crossOriginIsolated,
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
  }));
}

async function predictionFor(page, sample, width) {
  const sel = `#prediction[data-sample="${sample}"]${width ? `[data-width="${width}"]` : ''}`;
  await page.waitForFunction(
    (s) => document.body.dataset.state === 'ready' && document.querySelector(s),
    sel,
    { timeout: 30_000 },
  );
  return Number(await page.locator('#prediction').getAttribute('data-class'));
}

async function classify(page, sample) {
  await page.click(`#samples .sample[data-index="${sample}"]`);
  return predictionFor(page, sample);
}

async function chooseWidth(page, width, sample) {
  await page.check(`#widths input[value="${width}"]`);
  return predictionFor(page, sample, width);
}

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

  test('loads the MNIST model in the threads build and classifies real digits at 8 bits', async () => {
    const { page } = browser;
    const ms = await open(page, server.origin);
    console.log(`# navigation to first prediction: ${ms} ms`);
    const p = await panel(page);
    assert.equal(p.error, null);
    assert.equal(p.isolated, true);
    assert.equal(p.width, 8, 'starts at the widest width');
    if (p.cores >= 2) {
      assert.equal(p.variant, 'threads');
      assert.ok(p.threads > 1, `threads build uses ${p.threads} threads`);
    } else {
      assert.equal(p.variant, 'simd', 'one core: single-thread SIMD build');
    }
    await shot(page, 'isolated-8bit');
    for (const i of EASY) assert.equal(await classify(page, i), labels[i], `test image ${i}`);
    let correct = 0;
    for (let i = 0; i < labels.length; i++) correct += (await classify(page, i)) === labels[i] ? 1 : 0;
    console.log(`# 8-bit accuracy on ${labels.length} test images in the page: ${correct}`);
    assert.ok(correct >= 0.95 * labels.length, `${correct}/${labels.length} correct at 8 bits`);
  });

  test('every width 1..8 can be selected and gives a prediction', async () => {
    const { page } = browser;
    const sample = 0;
    await classify(page, sample);
    for (let w = 8; w >= 1; w--) {
      const predicted = await chooseWidth(page, w, sample);
      const p = await panel(page);
      assert.equal(p.width, w, 'panel shows the chosen width');
      assert.ok(Number.isInteger(predicted) && predicted >= 0 && predicted < 10, `prediction at ${w} bits: ${predicted}`);
      await shot(page, `isolated-${w}bit`);
    }
    // Switching width re-runs the same image: the easy digits stay right down to 2 bits.
    for (const w of [4, 2]) {
      await chooseWidth(page, w, sample);
      for (const i of EASY.slice(1)) assert.equal(await classify(page, i), labels[i], `test image ${i} at ${w} bits`);
      await classify(page, sample);
    }
  });

  test('no request leaves the origin', async () => {
    const seen = [...new Set(browser.requests)];
    assert.ok(seen.some((u) => u.endsWith('/models/mnist.anybit')), `the model request was recorded: ${seen}`);
    assert.ok(server.requests.some((u) => u.endsWith('/anybit_bg.wasm')), 'the server saw the wasm build');
    const foreign = seen.filter((u) => !u.startsWith(`${server.origin}/`) && !/^(data|blob|about):/.test(u));
    assert.deepEqual(foreign, [], 'requests to other origins');
    assert.deepEqual(browser.consoleErrors, [], 'console errors');
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

  test('falls back to the single-thread SIMD build and still classifies', async () => {
    const { page } = browser;
    await open(page, server.origin);
    const p = await panel(page);
    assert.equal(p.error, null);
    assert.equal(p.isolated, false);
    assert.equal(p.variant, 'simd');
    assert.equal(p.threads, 1);
    for (const i of EASY) assert.equal(await classify(page, i), labels[i], `test image ${i}`);
    await shot(page, 'not-isolated');
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
    test(`${file} shows a clear error on the page`, async () => {
      const { page } = browser;
      await open(page, server.origin, `?model=models/${file}`);
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
      const box = page.locator('#error');
      assert.ok(await box.isVisible(), 'error box is visible');
      const code = await box.getAttribute('data-code');
      assert.ok(codes.includes(code), `error code ${code}, expected one of ${codes}`);
      const text = await box.textContent();
      assert.match(text, /Could not load the model/);
      assert.ok(text.length > 60, `message says what went wrong: ${text}`);
      await shot(page, `error-${file.replace('.anybit', '')}`);
    });
  }
});
