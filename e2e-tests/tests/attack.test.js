// The adversarial-example demo in headless Chromium, against the built dist/ and the real MNIST
// model and test images: attacks that change the prediction (read from the page's table), the L2
// shown against the one computed from the downloaded PNG and the fixture's pixels, Cancel, bad
// settings, the other image sources, a phone-sized screen, and no request to another origin.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { classify, DIST, idxImages, idxLabels, open, overflow, prediction, prepare, SHOTS, shot } from '../lib/app.js';
import { launch } from '../lib/chromium.js';
import { decodePng } from '../lib/png.js';
import { serve } from '../lib/server.js';
import { DIGITS, drawStrokes } from '../lib/strokes.js';

const ATTACK_TIMEOUT = 120_000;

let images;
let labels;

before(async () => {
  await prepare();
  images = await idxImages('mnist-t100-images.idx3');
  labels = await idxLabels('mnist-t100-labels.idx1');
});

/** Fills in the attack form: {source, sample (1-based), kind, eps, steps, target, width, advRelu}. */
async function setUp(page, { source = 'sample', sample, kind, eps, steps, target, width, advRelu } = {}) {
  await page.check(`#attack-source-${source}`);
  if (sample !== undefined) await page.fill('#attack-sample', String(sample));
  if (kind !== undefined) await page.selectOption('#attack-kind', kind);
  if (eps !== undefined) await page.fill('#attack-eps', String(eps));
  if (steps !== undefined) await page.fill('#attack-steps', String(steps));
  if (!(await page.isDisabled('#attack-target'))) await page.fill('#attack-target', target === undefined ? '' : String(target));
  if (width !== undefined) await page.selectOption('#attack-width', String(width));
  if (advRelu !== undefined) await page.setChecked('#attack-advrelu', advRelu);
}

/** Presses Attack; resolves when a new result or the alert shows: {ok, alert, ms}. */
async function pressAttack(page, timeout = ATTACK_TIMEOUT) {
  const before = Number(await page.locator('#attack-result').getAttribute('data-attacks') ?? 0);
  const t0 = Date.now();
  await page.click('#attack-run');
  await page.waitForFunction((n) => {
    const card = document.getElementById('attack-card');
    const done = card.dataset.state === 'done' && Number(document.getElementById('attack-result').dataset.attacks ?? 0) > n;
    return done || (card.dataset.state === 'idle' && !document.getElementById('attack-error').hidden);
  }, before, { timeout });
  const alert = await page.locator('#attack-error').isVisible() ? await page.locator('#attack-error').textContent() : null;
  return { ok: alert === null, alert, ms: Date.now() - t0 };
}

/** The result on the page: the table's rows by width, the norms shown, the summary. */
async function result(page) {
  return page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    const rows = [...document.querySelectorAll('#attack-table tbody tr')].map((tr) => ({
      width: Number(tr.dataset.width),
      original: Number(tr.dataset.original),
      adversarial: Number(tr.dataset.adversarial),
      changed: tr.dataset.changed === 'true',
      text: tr.textContent,
    }));
    return {
      rows,
      byWidth: Object.fromEntries(rows.map((r) => [r.width, r])),
      l2Text: $('attack-l2').textContent,
      linfText: $('attack-linf').textContent,
      summary: $('attack-summary').textContent,
      across: $('attack-across').textContent,
      download: $('attack-download').getAttribute('download'),
    };
  });
}

describe('adversarial examples', () => {
  let server;
  let browser;
  before(async () => {
    server = await serve(DIST, { isolated: true });
    browser = await launch();
    await open(browser.page, server.origin);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('the demo is there with its controls labelled and each attack\'s defaults prefilled', async () => {
    const { page } = browser;
    await page.waitForSelector('#attack-run:not([disabled])');
    // Every control has an accessible name.
    const unnamed = await page.evaluate(() => [...document.querySelectorAll('#attack-card input, #attack-card select, #attack-card button')]
      .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.textContent.trim()))
      .map((el) => el.id));
    assert.deepEqual(unnamed, [], 'controls without a label');
    const defaults = {
      fgsm: ['0.3', '1'], bim: ['0.3', '10'], 'pgd-linf': ['0.3', '40'], 'pgd-l2': ['2', '50'], 'mi-fgsm': ['0.3', '10'], deepfool: ['', '50'], 'cw-l2': ['', '100'],
    };
    for (const [kind, [eps, steps]] of Object.entries(defaults)) {
      await page.selectOption('#attack-kind', kind);
      assert.equal(await page.inputValue('#attack-eps'), eps, `${kind} eps`);
      assert.equal(await page.inputValue('#attack-steps'), steps, `${kind} steps`);
      assert.equal(await page.isDisabled('#attack-eps'), eps === '', `${kind}: eps field enabled only where the attack has a budget`);
    }
    const widths = await page.locator('#attack-width option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(widths, ['8', '7', '6', '5', '4', '3', '2', '1']);
  });

  test('PGD Linf with its defaults at 8 bits changes the prediction; the L2 shown is the downloaded PNG\'s', async () => {
    const { page } = browser;
    await setUp(page, { sample: 1, kind: 'pgd-linf', width: 8, advRelu: false });
    assert.equal(await page.inputValue('#attack-eps'), '0.3');
    assert.equal(await page.inputValue('#attack-steps'), '40');
    const run = await pressAttack(page);
    assert.ok(run.ok, `attack failed: ${run.alert}`);
    const r = await result(page);
    console.log(`# pgd-linf (eps 0.3, 40 steps) on test image 1 at 8 bits: ${run.ms} ms; ${r.summary} ${r.across}`);
    assert.equal(r.rows.length, 8, 'a row per width');
    assert.deepEqual(r.rows.map((x) => x.width), [8, 7, 6, 5, 4, 3, 2, 1]);
    const at8 = r.byWidth[8];
    assert.equal(at8.original, labels[0], 'the original is classified as its label at 8 bits');
    assert.ok(at8.changed && at8.adversarial !== at8.original, `the prediction at 8 bits changed: ${at8.text}`);
    assert.match(at8.text, /^8\(attacked\)/);
    assert.match(r.summary, /succeeded/);
    await shot(page, 'attack-pgd-linf-8bit');

    // The download: a 28x28 grey PNG whose pixels give the L2 and Linf shown, from the fixture's original.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#attack-download')]);
    assert.equal(download.suggestedFilename(), 'anybit-adversarial-test1-pgd-linf-8bit.png');
    assert.equal(r.download, download.suggestedFilename());
    const png = decodePng(await readFile(await download.path()));
    assert.equal(png.width, 28);
    assert.equal(png.height, 28);
    const grey = Array.from({ length: 784 }, (_, i) => {
      const px = png.data.subarray(i * png.channels, i * png.channels + Math.min(3, png.channels));
      assert.ok(px.every((v) => v === px[0]), `pixel ${i} is grey`);
      if (png.channels === 2 || png.channels === 4) assert.equal(png.data[i * png.channels + png.channels - 1], 255, 'opaque');
      return px[0];
    });
    const diff = grey.map((p, i) => (p - images[0][i]) / 255);
    const l2 = Math.sqrt(diff.reduce((s, d) => s + d * d, 0));
    const linf = Math.max(...diff.map(Math.abs));
    console.log(`# L2 shown ${r.l2Text}, from the PNG ${l2.toFixed(6)}; Linf shown ${r.linfText}, from the PNG ${linf.toFixed(6)}`);
    const decimals = r.l2Text.split('.')[1]?.length ?? 0;
    assert.ok(decimals >= 2, `L2 printed with ${decimals} decimals`);
    // Equal to the printed precision (half a unit of the last digit, and float32's error).
    const close = (a, shown) => Math.abs(a - Number(shown)) <= 0.5 * 10 ** -decimals + 1e-5;
    assert.ok(close(l2, r.l2Text), `the L2 shown, ${r.l2Text}, is the PNG's, ${l2}`);
    assert.ok(close(linf, r.linfText), `the Linf shown, ${r.linfText}, is the PNG's, ${linf}`);
    assert.ok(linf <= 0.3 + 0.5 / 255, `Linf ${linf} within eps 0.3 (plus rounding to k/255)`);
  });

  test('DeepFool (minimal L2, no eps) changes the prediction at 8 bits', async () => {
    const { page } = browser;
    await setUp(page, { sample: 2, kind: 'deepfool', width: 8 });
    assert.ok(await page.isDisabled('#attack-eps'), 'DeepFool takes no eps');
    assert.ok(await page.isDisabled('#attack-target'), 'DeepFool is untargeted');
    const run = await pressAttack(page);
    assert.ok(run.ok, `attack failed: ${run.alert}`);
    const r = await result(page);
    console.log(`# deepfool on test image 2 at 8 bits: ${run.ms} ms; ${r.summary} ${r.across}`);
    const at8 = r.byWidth[8];
    assert.equal(at8.original, labels[1]);
    assert.ok(at8.changed, `the prediction at 8 bits changed: ${at8.text}`);
    assert.ok(Number(r.l2Text) > 0 && Number(r.l2Text) < 10, `a small L2: ${r.l2Text}`);
    assert.equal(r.download, 'anybit-adversarial-test2-deepfool-8bit.png');
    await shot(page, 'attack-deepfool-8bit');
  });

  test('Cancel stops a long attack within a second, and the page stays usable', async () => {
    const { page } = browser;
    await setUp(page, { sample: 3, kind: 'cw-l2', steps: 10000, width: 8 });
    await page.click('#attack-run');
    await page.waitForFunction(() => Number(document.getElementById('attack-progress').dataset.done) > 0, null, { timeout: 60_000 });
    assert.equal(await page.locator('#attack-card').getAttribute('data-state'), 'running');
    assert.ok(await page.locator('#attack-cancel').isVisible(), 'Cancel is shown while the attack runs');
    // The page answers while the attack runs in the worker.
    const busyAt = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(performance.now()))));
    assert.ok(busyAt > 0);
    await shot(page, 'attack-running');
    // Click Cancel and time, in the page, until the section is idle again.
    const took = await page.evaluate(() => new Promise((resolve) => {
      const card = document.getElementById('attack-card');
      const t0 = performance.now();
      const done = () => card.dataset.state === 'idle' && resolve(performance.now() - t0);
      new MutationObserver(done).observe(card, { attributes: true });
      document.getElementById('attack-cancel').click();
      done();
    }));
    const doneAt = Number(await page.locator('#attack-progress').getAttribute('data-done'));
    const total = Number(await page.locator('#attack-progress').getAttribute('data-total'));
    console.log(`# cancel: idle ${took.toFixed(0)} ms after the click, at ${doneAt} of ${total} gradient steps`);
    assert.ok(took < 1000, `idle ${took} ms after Cancel`);
    assert.ok(doneAt < total, 'stopped before the end');
    assert.match(await page.locator('#attack-status').textContent(), /^Cancelled after \d+ of \d+ gradient steps\.$/);
    assert.ok(await page.locator('#attack-cancel').isHidden(), 'Cancel is gone');
    assert.ok(await page.locator('#attack-error').isHidden(), 'a cancel is not an error');
    assert.ok(await page.locator('#attack-run').isEnabled(), 'Attack can be pressed again');
    // The worker is free: a classification answers at once, not after the rest of the attack.
    const t0 = Date.now();
    assert.equal(await classify(page, 4), labels[4]);
    const classifyMs = Date.now() - t0;
    console.log(`# classification after the cancel: ${classifyMs} ms`);
    assert.ok(classifyMs < 2000, `classified ${classifyMs} ms after the cancel`);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(Number(await page.locator('#attack-progress').getAttribute('data-done')), doneAt, 'no progress after the cancel');
    await shot(page, 'attack-cancelled');
    // A following attack runs to the end.
    await setUp(page, { sample: 5, kind: 'fgsm', width: 8 });
    const run = await pressAttack(page);
    assert.ok(run.ok, `attack after the cancel failed: ${run.alert}`);
    assert.equal((await result(page)).byWidth[8].original, labels[4]);
  });

  const BAD = [
    ['eps -1', { kind: 'pgd-linf', eps: '-1' }, /eps/i],
    ['eps NaN', { kind: 'pgd-linf', eps: 'NaN' }, /eps must be a number/],
    ['eps empty', { kind: 'pgd-linf', eps: '' }, /eps is empty/],
    ['eps huge', { kind: 'pgd-linf', eps: '1e9' }, /eps/i],
    ['steps 0', { kind: 'pgd-linf', steps: '0' }, /steps/i],
    ['steps 2.5', { kind: 'bim', steps: '2.5' }, /steps must be a whole number/],
    ['target 99', { kind: 'pgd-linf', target: '99' }, /99/],
  ];
  for (const [name, settings, message] of BAD) {
    test(`bad settings (${name}) give a clear message on the page`, async () => {
      const { page } = browser;
      const errorsBefore = browser.errors.length;
      await setUp(page, { sample: 1, width: 8, ...settings });
      const run = await pressAttack(page, 30_000);
      assert.equal(run.ok, false, 'refused');
      assert.match(run.alert, /Check the attack settings/);
      assert.match(run.alert, message);
      assert.equal(await page.locator('#attack-error').getAttribute('role'), 'alert');
      assert.equal(await page.locator('#attack-card').getAttribute('data-state'), 'idle');
      assert.ok(await page.locator('#attack-run').isEnabled());
      assert.deepEqual(browser.errors.slice(errorsBefore), [], 'no console error');
      if (name === 'eps -1') await shot(page, 'attack-bad-eps');
    });
  }

  test('the drawing on the pad can be attacked', async () => {
    const { page } = browser;
    await page.locator('#pad').scrollIntoViewIfNeeded();
    await drawStrokes(page, '#pad', DIGITS[3]);
    await prediction(page, 'drawing:', 8);
    await setUp(page, { source: 'drawing', kind: 'fgsm', width: 8 });
    const run = await pressAttack(page);
    assert.ok(run.ok, `attack on the drawing failed: ${run.alert}`);
    const r = await result(page);
    assert.equal(r.byWidth[8].original, 3, `the drawn 3: ${r.byWidth[8].text}`);
    assert.equal(r.download, 'anybit-adversarial-drawing-fgsm-8bit.png');
    const ink = await page.evaluate(() => {
      const c = document.getElementById('attack-original');
      return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 0).reduce((s, v) => s + v, 0);
    });
    assert.ok(ink > 0, 'the original shown is the drawing as the model sees it');
    await shot(page, 'attack-drawing');
  });

  test('an image file can be attacked too', async () => {
    const { page } = browser;
    // A test image as a file: dark ink on white, 4x larger.
    const png = await page.evaluate((pixels) => {
      const c = document.createElement('canvas');
      c.width = c.height = 112;
      const small = document.createElement('canvas');
      small.width = small.height = 28;
      const img = small.getContext('2d').createImageData(28, 28);
      pixels.forEach((p, i) => img.data.set([255 - p, 255 - p, 255 - p, 255], 4 * i));
      small.getContext('2d').putImageData(img, 0, 0);
      const ctx = c.getContext('2d');
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(small, 0, 0, 112, 112);
      return c.toDataURL('image/png').split(',')[1];
    }, images[0]);
    await page.setInputFiles('#attack-file', { name: 'seven.png', mimeType: 'image/png', buffer: Buffer.from(png, 'base64') });
    await page.waitForFunction(() => /seven\.png/.test(document.getElementById('attack-source-caption').textContent));
    assert.ok(await page.isChecked('#attack-source-file'), 'choosing a file selects it as the source');
    await page.selectOption('#attack-kind', 'fgsm');
    const run = await pressAttack(page);
    assert.ok(run.ok, `attack on the file failed: ${run.alert}`);
    const r = await result(page);
    assert.equal(r.byWidth[8].original, labels[0], `the 7 in the file: ${r.byWidth[8].text}`);
    assert.equal(r.download, 'anybit-adversarial-file-fgsm-8bit.png');
    await shot(page, 'attack-file');
  });

  test('readable on a 375 px wide phone screen', async () => {
    const { page } = browser;
    await page.setViewportSize({ width: 375, height: 812 });
    try {
      await open(page, server.origin);
      await setUp(page, { sample: 1, kind: 'fgsm', width: 8 });
      const run = await pressAttack(page);
      assert.ok(run.ok, run.alert);
      const wider = await overflow(page);
      assert.ok(wider <= 0, `the page or a card is ${wider} px wider than the screen`);
      const box = await page.locator('#attack-card').boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 375, 'the attack section fits');
      await page.locator('#attack-card').screenshot({ path: join(SHOTS, 'attack-phone-375.png') });
    } finally {
      await page.setViewportSize({ width: 1100, height: 900 });
    }
  });

  test('no request leaves the origin, and no console errors', async () => {
    const seen = [...new Set(browser.requests)];
    assert.ok(seen.some((u) => u.endsWith('/models/mnist.anybit')), 'the model request was recorded');
    const foreign = seen.filter((u) => !u.startsWith(`${server.origin}/`) && !/^(data|blob|about):/.test(u));
    assert.deepEqual(foreign, [], 'requests to other origins');
    assert.deepEqual(browser.errors, [], 'console errors');
  });
});
