// What the page tests share: where dist/ and the screenshots are, and how to wait for the page.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = resolve(process.env.ANYBIT_DIST ?? join(ROOT, 'dist'));
export const SHOTS = resolve(process.env.ANYBIT_SCREENSHOTS ?? join(ROOT, 'e2e-tests', 'screenshots'));
export const LOAD_TIMEOUT = 90_000;

/** Checks that dist/ is built and the screenshot folder exists; prints the folder. */
export async function prepare() {
  await stat(join(DIST, 'index.html')).catch(() => {
    throw new Error(`${DIST}/index.html missing: run "trunk build --release --offline" first`);
  });
  await mkdir(SHOTS, { recursive: true });
  console.log(`# screenshots: ${SHOTS}`);
}

/** Labels of an IDX label file in dist/ (header: 4 magic bytes + count), read here, not from the page. */
export async function idxLabels(name) {
  return [...(await readFile(join(DIST, 'fixtures', name))).subarray(8)];
}

/** Images of an IDX image file in dist/ as arrays of 28x28 bytes. */
export async function idxImages(name) {
  const bytes = (await readFile(join(DIST, 'fixtures', name))).subarray(16);
  return Array.from({ length: bytes.length / 784 }, (_, i) => [...bytes.subarray(i * 784, (i + 1) * 784)]);
}

/** The graph stored in a model file in dist/ (safetensors header, __metadata__.anybit). */
export async function modelGraph(name) {
  const bytes = await readFile(join(DIST, 'models', name));
  const n = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')).__metadata__.anybit);
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/**
 * Evaluates `expression` (JavaScript whose value is a promise) in the page through the DevTools
 * protocol and resolves with its value once it settles, or rejects after `timeoutMs`. For waiting
 * on the page while it loads: Playwright's own waits (`waitForSelector`, `waitForFunction`) first
 * compile its injected script, hundreds of KB, on the page's thread, which a first visit's
 * measured path then shares (BENCHMARKS.md, "The harness's waits"); this adds one small expression.
 */
async function settled(page, expression, timeoutMs) {
  const cdp = await page.context().newCDPSession(page);
  let timer;
  try {
    const evaluated = cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    // Rejects when the session is detached after a timeout; the race has been decided by then.
    evaluated.catch(() => {});
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not settled after ${timeoutMs} ms: ${expression.slice(0, 80)}`)), timeoutMs);
    });
    const r = await Promise.race([evaluated, late]);
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  } finally {
    clearTimeout(timer);
    await cdp.detach().catch(() => {});
  }
}

// Resolves once <body data-state> is ready or error (view.js sets it), watched by a
// MutationObserver: no polling on the page's thread.
const SHOWN = `new Promise((resolve) => {
  const done = () => ['ready', 'error'].includes(document.body?.dataset.state);
  if (done()) return resolve(true);
  new MutationObserver((_, o) => {
    if (done()) {
      o.disconnect();
      resolve(true);
    }
  }).observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
})`;

/** Opens the page; resolves when the first prediction (or an error) is shown, with the wall time. */
export async function open(page, origin, query = '') {
  const t0 = Date.now();
  await page.goto(`${origin}/index.html${query}`);
  await settled(page, SHOWN, LOAD_TIMEOUT);
  return Date.now() - t0;
}

/**
 * The page's own timing marks (ms since navigation start), e.g. {'first-prediction': 412}. The
 * mark 'first-prediction-painted' comes a frame after the first prediction: waited for up to
 * `paintedWaitMs` (a site built before it never sets it).
 */
export async function marks(page, { paintedWaitMs = 2000 } = {}) {
  if (paintedWaitMs > 0) {
    const painted = `new Promise((resolve) => {
      if (performance.getEntriesByName('anybit:first-prediction-painted').length) return resolve(true);
      new PerformanceObserver((list, o) => {
        if (list.getEntriesByName('anybit:first-prediction-painted').length) {
          o.disconnect();
          resolve(true);
        }
      }).observe({ type: 'mark' });
    })`;
    await settled(page, painted, paintedWaitMs).catch(() => {});
  }
  return settled(page, `Promise.resolve(Object.fromEntries(
    performance.getEntriesByType('mark').filter((m) => m.name.startsWith('anybit:'))
      .map((m) => [m.name.slice(7), Math.round(m.startTime)])))`, 10_000);
}

/**
 * Px by which the page, or the content of any card, is wider than the screen (0 or less: it
 * fits). The cards below the first screen clip their overflow (paint containment, from
 * content-visibility), so the page's width alone would not show theirs: each card is scrolled
 * into view, rendered, and measured; the page is scrolled back to where it was.
 */
export async function overflow(page) {
  return page.evaluate(async () => {
    const { scrollX, scrollY } = window;
    const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    let worst = document.documentElement.scrollWidth - document.documentElement.clientWidth;
    for (const card of document.querySelectorAll('.card')) {
      card.scrollIntoView();
      await frame();
      worst = Math.max(worst, card.scrollWidth - card.clientWidth);
    }
    window.scrollTo(scrollX, scrollY);
    await frame();
    return Math.max(worst, document.documentElement.scrollWidth - document.documentElement.clientWidth);
  });
}

/** The "What runs" panel, raw values and shown text. */
export async function panel(page) {
  return page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    return {
      variant: $('rt-build').dataset.variant,
      buildText: $('rt-build').textContent,
      threads: Number($('rt-threads').dataset.threads),
      threadsText: $('rt-threads').textContent,
      width: Number($('rt-width').dataset.width),
      widthText: $('rt-width').textContent,
      latencyMs: Number($('rt-latency').dataset.ms),
      latencyText: $('rt-latency').textContent,
      model: $('rt-model').textContent,
      cores: navigator.hardwareConcurrency,
      isolated: crossOriginIsolated,
      error: $('error').hidden ? null : $('error').textContent,
    };
  });
}

/** Waits for the prediction for `input` ("sample:3", or a prefix like "drawing:") at `width`. */
export async function prediction(page, input, width) {
  const attr = input.endsWith(':') ? `[data-input^="${input}"]` : `[data-input="${input}"]`;
  const sel = `#prediction${attr}${width ? `[data-width="${width}"]` : ''}`;
  await page.waitForFunction(
    (s) => document.body.dataset.state === 'ready' && document.querySelector(s),
    sel,
    { timeout: 30_000 },
  );
  return page.evaluate(() => {
    const out = document.getElementById('prediction');
    const bars = [...document.querySelectorAll('#probabilities li')];
    return {
      cls: Number(out.dataset.class),
      width: Number(out.dataset.width),
      text: out.textContent,
      change: document.getElementById('change').textContent,
      bars: bars.length,
      top: bars.findIndex((li) => li.classList.contains('top')),
      topLabel: document.querySelector('#probabilities li.top .label')?.textContent,
    };
  });
}

export async function classify(page, sample) {
  await page.click(`#samples .sample[data-index="${sample}"]`);
  return (await prediction(page, `sample:${sample}`)).cls;
}

/** Picks a width with its radio button; resolves to the prediction for `input` at that width. */
export async function chooseWidth(page, width, input) {
  await page.check(`#widths input[value="${width}"]`);
  return prediction(page, input, width);
}

/** Runs `action` (which gives the page a new input) and waits until a result for a new input shows. */
export async function newPrediction(page, action, input, width) {
  const before = await page.locator('#prediction').getAttribute('data-input');
  await action();
  await page.waitForFunction((b) => document.getElementById('prediction').dataset.input !== b, before, { timeout: 30_000 });
  return prediction(page, input, width);
}
