// The page's inputs in headless Chromium: digits drawn stroke by stroke with the mouse, image
// files (chosen and dropped, good and broken), and the Fashion-MNIST model with its real test images.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  chooseWidth, DIST, idxImages, idxLabels, modelGraph, newPrediction, open, prediction, prepare, shot,
} from '../lib/app.js';
import { launch } from '../lib/chromium.js';
import { serve } from '../lib/server.js';
import { DIGITS, drawStrokes } from '../lib/strokes.js';

let images;
let labels;

before(async () => {
  await prepare();
  images = await idxImages('mnist-t100-images.idx3');
  labels = await idxLabels('mnist-t100-labels.idx1');
});

/** A PNG of a real 28x28 test image, `scale` times larger, dark ink on white as on paper. */
async function testImagePng(page, pixels, scale = 4) {
  const b64 = await page.evaluate(({ pixels, scale }) => {
    const small = document.createElement('canvas');
    small.width = small.height = 28;
    const img = small.getContext('2d').createImageData(28, 28);
    pixels.forEach((p, i) => img.data.set([255 - p, 255 - p, 255 - p, 255], 4 * i));
    small.getContext('2d').putImageData(img, 0, 0);
    const big = document.createElement('canvas');
    big.width = big.height = 28 * scale;
    const ctx = big.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, big.width, big.height);
    return big.toDataURL('image/png').split(',')[1];
  }, { pixels, scale });
  return Buffer.from(b64, 'base64');
}

describe('drawing, image files and the Fashion-MNIST model', () => {
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

  test('a 3 drawn stroke by stroke is a 3, at 8 bits and at 1 bit', async () => {
    const { page } = browser;
    await drawStrokes(page, '#pad', DIGITS[3]);
    const r8 = await prediction(page, 'drawing:', 8);
    assert.equal(r8.cls, 3, `drawn 3 at 8 bits: ${r8.text}`);
    assert.equal(r8.bars, 10, 'ten probability bars');
    assert.equal(r8.top, 3, 'the bar of 3 is highlighted');
    await shot(page, 'draw-3-8bit');
    const r1 = await chooseWidth(page, 1, 'drawing:');
    assert.equal(r1.cls, 3, `drawn 3 at 1 bit: ${r1.text}`);
    assert.equal(r1.change, 'Same prediction as at 8 bits.');
    await shot(page, 'draw-3-1bit');
    await chooseWidth(page, 8, 'drawing:');
  });

  test('Clear empties the pad and the prediction', async () => {
    const { page } = browser;
    await page.click('#clear');
    assert.equal(await page.locator('#prediction').textContent(), '–');
    assert.equal(await page.locator('#probabilities li').count(), 0);
    const ink = await page.evaluate(() => {
      const c = document.getElementById('pad');
      return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.reduce((s, v) => s + v, 0);
    });
    assert.equal(ink, 0, 'the pad is blank');
  });

  for (const [digit, how] of [[1, {}], [7, {}], [3, { scale: 0.4, offset: [0.05, 0.55] }]]) {
    const what = how.scale ? `a small ${digit} in a corner` : `a ${digit}`;
    test(`${what}, drawn stroke by stroke (${DIGITS[digit].length} stroke(s)), is a ${digit}`, async () => {
      const { page } = browser;
      await page.click('#clear');
      await drawStrokes(page, '#pad', DIGITS[digit], how);
      const r = await prediction(page, 'drawing:', 8);
      assert.equal(r.cls, digit, `${what}: ${r.text}`);
      await shot(page, `draw-${digit}${how.scale ? '-small' : ''}`);
    });
  }

  test('an image file of a real test digit (dark on white, 4x) is classified as its label', async () => {
    const { page } = browser;
    for (const i of [0, 1, 2, 3, 4]) {
      const buffer = await testImagePng(page, images[i]);
      const file = { name: `digit-${i}.png`, mimeType: 'image/png', buffer };
      const r = await newPrediction(page, () => page.setInputFiles('#file', file), 'file:', 8);
      assert.equal(r.cls, labels[i], `file of test image ${i}: ${r.text}`);
    }
    await shot(page, 'file-digit');
  });

  test('a dropped image file is classified too', async () => {
    const { page } = browser;
    const b64 = (await testImagePng(page, images[7], 3)).toString('base64');
    const dt = await page.evaluateHandle((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      return dt;
    }, b64);
    const r = await newPrediction(page, () => page.dispatchEvent('#input-card', 'drop', { dataTransfer: dt }), 'file:', 8);
    assert.equal(r.cls, labels[7], `dropped test image 7: ${r.text}`);
  });

  test('a broken image file gives a clear message and keeps the last prediction', async () => {
    const { page } = browser;
    const kept = await page.locator('#prediction').getAttribute('data-input');
    await page.setInputFiles('#file', { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('not really a PNG') });
    const box = page.locator('#error');
    await box.waitFor({ state: 'visible' });
    assert.equal(await box.getAttribute('data-code'), 'bad_image');
    const text = await box.textContent();
    assert.match(text, /Could not use broken\.png/);
    assert.match(text, /not an image this browser can decode/);
    assert.match(text, /Choose a PNG, JPEG/);
    assert.equal(await page.locator('#prediction').getAttribute('data-input'), kept);
    await shot(page, 'error-broken-image');
  });

  test('the Fashion-MNIST model classifies its real test images, with the labels from its file', async () => {
    const { page } = browser;
    const graph = await modelGraph('fashion-mnist.anybit');
    const fl = await idxLabels('fmnist-t100-labels.idx1');
    await page.check('#models input[value="fashion"]');
    const r = await prediction(page, 'sample:0', 8);
    assert.equal(r.cls, fl[0], `Fashion test image 0 (${graph.labels[fl[0]]}): ${r.text}`);
    assert.equal(r.topLabel, graph.labels[fl[0]], 'bar labelled with the class name from the file');
    assert.ok(r.text.startsWith(graph.labels[fl[0]]), r.text);
    assert.equal(await page.locator('#rt-model').textContent(), graph.name);
    assert.ok(await page.locator('#draw-area').isHidden(), 'no drawing pad for clothes');
    const load = await page.locator('#load-text').textContent();
    assert.match(load, /Fashion-MNIST.*8 of 8 bit planes/);
    await shot(page, 'fashion-8bit');
    let correct = 0;
    for (let i = 0; i < fl.length; i++) {
      await page.click(`#samples .sample[data-index="${i}"]`);
      correct += (await prediction(page, `sample:${i}`, 8)).cls === fl[i] ? 1 : 0;
    }
    const stored = Object.fromEntries(graph.eval[0].accuracy)[8];
    console.log(`# Fashion-MNIST 8-bit accuracy on ${fl.length} test images in the page: ${correct} (stored eval on 10000: ${(stored * 100).toFixed(2)}%)`);
    assert.ok(correct >= 0.75 * fl.length, `${correct}/${fl.length} correct at 8 bits`);
    const r1 = await chooseWidth(page, 1, `sample:${fl.length - 1}`);
    assert.ok(r1.cls >= 0 && r1.cls < 10);
    await shot(page, 'fashion-1bit');
    await chooseWidth(page, 8, `sample:${fl.length - 1}`);
  });

  test('a Fashion-MNIST test image as a file (dark on white, 4x) is classified as its label', async () => {
    const { page } = browser;
    const fi = await idxImages('fmnist-t100-images.idx3');
    const fl = await idxLabels('fmnist-t100-labels.idx1');
    for (const i of [0, 1, 2]) {
      const buffer = await testImagePng(page, fi[i]);
      const file = { name: `fashion-${i}.png`, mimeType: 'image/png', buffer };
      const r = await newPrediction(page, () => page.setInputFiles('#file', file), 'file:', 8);
      assert.equal(r.cls, fl[i], `file of Fashion test image ${i}: ${r.text}`);
    }
  });

  test('no request leaves the origin', async () => {
    const seen = [...new Set(browser.requests)];
    assert.ok(seen.some((u) => u.endsWith('/models/fashion-mnist.anybit')), 'the Fashion model was fetched');
    const foreign = seen.filter((u) => !u.startsWith(`${server.origin}/`) && !/^(data|blob|about):/.test(u));
    assert.deepEqual(foreign, [], 'requests to other origins');
    assert.deepEqual(browser.errors, [], 'console errors');
  });
});
