// (b) plain ES modules, no bundler, and (c) a Vite 7 build: the installed package in headless
// Chromium on a cross-origin isolated page (COOP/COEP), so the threads build with a pool is used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { build, createServer } from 'vite';
import { launch } from '../../e2e-tests/lib/chromium.js';
import { serve } from '../../e2e-tests/lib/server.js';
import { APP, MODEL, digits } from '../lib/app.js';

const samples = await digits(5);

// Opens the page and runs apps/check.js's anybitCheck. `options`: createSession's (JSON-able);
// `ownWorker`: the page starts the package's worker.js itself and passes it as `worker`.
async function check(root, path, { isolated = true, ownWorker = false, options = {}, server = null } = {}) {
  server ??= await serve(root, { isolated });
  const browser = await launch();
  try {
    await browser.page.goto(`${server.origin}${path}`);
    await browser.page.waitForSelector('body[data-ready=yes]', { state: 'attached', timeout: 30_000 });
    const out = await browser.page.evaluate(
      ([px, own, opts]) => window.anybitCheck(px, own ? { ...opts, worker: new Worker('/node_modules/anybit/worker.js', { type: 'module' }) } : opts),
      [samples.map((s) => [...s.pixels]), ownWorker, options],
    );
    return { out, errors: browser.errors, requests: server.requests };
  } finally {
    await browser.close();
    await server.close();
  }
}

async function assertWorks({ out, errors, requests }, wasmPath, variant = 'threads') {
  const size = (await readFile(MODEL)).length;
  assert.equal(out.build.variant, variant, out.build.reason);
  if (variant === 'threads') assert.ok(out.build.threadCount > 1, `threadCount ${out.build.threadCount}`);
  else assert.equal(out.build.threadCount, 1);
  assert.deepEqual(out.widths, [1, 2, 3, 4, 5, 6, 7, 8]);
  // The probe agrees with the build that was chosen: threads only where the page is isolated.
  assert.equal(out.probe.build.variant, variant);
  assert.equal(out.probe.simd, true);
  if (variant === 'threads') assert.ok(out.probe.crossOriginIsolated && out.probe.sharedMemory && out.probe.cores >= 2);
  assert.ok(out.probe.reportedCores >= 1 && out.probe.cores >= 1);
  assert.deepEqual(out.progress.at(-1), { loaded: size, total: size, planes: 8, planeTotal: 8 });
  assert.deepEqual(out.predicted, samples.map((s) => s.label));
  assert.equal(out.fromImage, samples[0].label);
  assert.equal(out.oneBit, 1);
  // A run on every thread of the pool equals the session's first run, which may have come before
  // the pool was up (one thread).
  assert.equal(out.sameLate.threads, out.build.threadCount);
  assert.equal(out.sameLate.equal, true, 'same probabilities on all threads as in the first run');
  assert.deepEqual(out.error && [out.error.isAnybitError, out.error.code], [true, 'truncated']);
  assert.equal(out.afterDispose, 'disposed');
  assert.equal(out.badThreads, 'invalid_argument');
  assert.equal(out.inPlaceThreads, 'invalid_argument');
  assert.deepEqual(errors, []);
  // One binary fetched: the chosen build's (the pool's workers get the compiled module by message).
  const wasm = [...new Set(requests.filter((r) => r.endsWith('.wasm')))];
  assert.equal(wasm.length, 1, wasm.join(', '));
  assert.match(wasm[0], wasmPath);
}

test('plain <script type=module> page with an import map: threads build classifies digits', async () => {
  await assertWorks(await check(APP, '/plain/index.html'), /^\/node_modules\/anybit\/wasm\/threads\/anybit_bg\.wasm$/);
});

test('the same page without COOP/COEP headers falls back to the relaxed-SIMD build on one thread', async () => {
  const result = await check(APP, '/plain/index.html', { isolated: false });
  assert.match(result.out.build.reason, /cross-origin isolated/);
  await assertWorks(result, /^\/node_modules\/anybit\/wasm\/relaxed\/anybit_bg\.wasm$/, 'relaxed');
});

test("a worker the page starts itself from the package's worker.js (createSession({worker}))", async () => {
  await assertWorks(await check(APP, '/plain/index.html', { ownWorker: true }), /^\/node_modules\/anybit\/wasm\/threads\/anybit_bg\.wasm$/);
});

test("worker: false runs the runtime on the page's own thread (relaxed-SIMD build, no worker script fetched); threads need the threads build", async () => {
  const result = await check(APP, '/plain/index.html', { options: { worker: false } });
  assert.match(result.out.build.reason, /worker: false/);
  await assertWorks(result, /^\/node_modules\/anybit\/wasm\/relaxed\/anybit_bg\.wasm$/, 'relaxed');
  assert.ok(!result.requests.some((r) => r.endsWith('/worker.js')), result.requests.join(', '));
  const simd = await check(APP, '/plain/index.html', { options: { worker: false, build: 'simd' } });
  await assertWorks(simd, /^\/node_modules\/anybit\/wasm\/simd\/anybit_bg\.wasm$/, 'simd');
});

test("worker: false with the threads build: the page's thread leads a pool of 2, which a second such session shares", async () => {
  const result = await check(APP, '/plain/index.html', { options: { worker: false, build: 'threads', threads: 2 } });
  await assertWorks(result, /^\/node_modules\/anybit\/wasm\/threads\/anybit_bg\.wasm$/);
  assert.equal(result.out.build.threadCount, 2);
  assert.ok(!result.requests.some((r) => r.endsWith('/worker.js')), result.requests.join(', '));
  assert.deepEqual(result.out.secondInPlace, { threads: 2, predicted: samples[0].label, equal: true });
});

test('a requested build is used: plain SIMD (auto takes relaxed SIMD or threads here) and threads with a pool of 3 (the default here is min(cores, 8))', async () => {
  await assertWorks(await check(APP, '/plain/index.html', { options: { build: 'simd' } }),
    /^\/node_modules\/anybit\/wasm\/simd\/anybit_bg\.wasm$/, 'simd');
  const three = await check(APP, '/plain/index.html', { options: { build: 'threads', threads: 3 } });
  assert.equal(three.out.build.threadCount, 3);
  assert.deepEqual(three.out.predicted, samples.map((s) => s.label));
  assert.equal(three.out.build.reason, 'threads build requested');
  // With a pool of 3 the calibration also timed every width on one thread, and each option runs on
  // 1 or 3; following the decision sets the session's count, and the model still classifies.
  const p = three.out.policy;
  assert.equal(p.calThreads, 3);
  assert.deepEqual(p.oneThreadWidths, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(p.optionThreads.every((t) => t === 1 || t === 3), JSON.stringify(p.optionThreads));
  assert.ok(p.threads === 1 || p.threads === 3);
  assert.equal(p.infoThreads, p.threads);
  assert.ok(p.runThreads, 'same prediction after following the decision');
  assert.ok(p.reasons.some((r) => r.startsWith(p.threads === 1 ? '1 thread: at ' : '3 threads: predicted')), JSON.stringify(p.reasons));
  console.log(`pool of 3: decision ${p.threads} thread(s); per width ${p.optionThreads.join(' ')}`);
});

test('Vite 7 app: vite build, then the built page classifies digits with threads', async () => {
  const root = join(APP, 'vite');
  await build({ root, configFile: join(root, 'vite.config.js') });
  // Vite renames the binaries (content hashes); the build's name is in buildInfo, checked above.
  await assertWorks(await check(join(root, 'dist'), '/index.html'), /^\/assets\/anybit_bg-[\w-]+\.wasm$/);
});

test('Vite 7 dev server (the app\'s vite.config.js): the page classifies digits with threads', async () => {
  const root = join(APP, 'vite');
  const requests = [];
  // A plugin's configureServer middleware runs before Vite's own, so it sees every request.
  const log = { name: 'log-requests', configureServer: (s) => void s.middlewares.use((req, _res, next) => {
    requests.push(new URL(req.url, 'http://x').pathname);
    next();
  }) };
  const vite = await createServer({
    root, configFile: join(root, 'vite.config.js'), plugins: [log], server: { host: '127.0.0.1', port: 0 },
  });
  await vite.listen();
  const server = { origin: vite.resolvedUrls.local[0].replace(/\/$/, ''), requests, close: () => vite.close() };
  await assertWorks(await check(root, '/index.html', { server }), /^\/@fs\/.*\/node_modules\/anybit\/wasm\/threads\/anybit_bg\.wasm$/);
});

test("the README's example runs as written on a plain page (from the installed package's README)", async () => {
  const readme = await readFile(join(APP, 'node_modules', 'anybit', 'README.md'), 'utf8');
  const example = readme.match(/^## Example\n\n```js\n([\s\S]*?)^```$/m)?.[1];
  assert.ok(example, 'the README has an example');
  const dir = join(APP, 'readme');
  await mkdir(join(APP, 'models'), { recursive: true });
  await copyFile(MODEL, join(APP, 'models', 'mnist.anybit'));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'example.js'), example);
  await writeFile(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
    '<script type="importmap">{ "imports": { "anybit": "/node_modules/anybit/index.js" } }</script>' +
    '<script type="module" src="example.js"></script>');
  const server = await serve(APP, { isolated: true });
  const browser = await launch();
  try {
    await browser.page.goto(`${server.origin}/readme/index.html`);
    const deadline = Date.now() + 30_000;
    while (!browser.logs.some((l) => l.startsWith('widths')) && !browser.errors.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const size = (await readFile(MODEL)).length;
    assert.deepEqual(browser.errors, []);
    const [variant, threads] = browser.logs[0].split(' ');
    assert.equal(variant, 'threads', browser.logs[0]);
    assert.ok(Number(threads) > 1, browser.logs[0]);
    assert.ok(browser.logs.includes(`${size} of ${size} bytes`), browser.logs.join('\n'));
    assert.match(browser.logs.at(-1), /^widths 1,2,3,4,5,6,7,8; class \d, p = (1|0\.\d+)$/);
  } finally {
    await browser.close();
    await server.close();
  }
});
