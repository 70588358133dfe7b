// The trip to the worker: what a page waits for per `session.run(input)` beside what the engine
// spends (the result's `ms`), and the throughput of `session.runMany` with N inputs per call, for
// one model at one width in headless Chromium (issue 18, point 5; default the shipped MNIST model
// at 8 bits on one thread).
//
//   bash scripts/build-pkg.sh && (cd e2e-tests && npm ci)    # pkg/wasm, playwright-core
//   node bench/trip.mjs [--model FILE] [--width 8] [--builds one,threads] [--rounds 20] [--per 50]
//                       [--batches 1,16,64] [--many-images 64] [--baseline REV] [--tiering] [--json out.json]
//   node bench/trip.mjs --app DIR[,DIR...] [--rounds 6] [--per 20] [--no-input-defer]   # the web app
//
// Method: the page (bench/page/trip-bench.mjs) imports /pkg/index.js and starts one session per
// --builds entry ('one': relaxed SIMD, else SIMD, one thread, as bench/cf.mjs; 'threads': the
// threads build with a pool of 2 set to one thread, as the web app runs when Auto picks one), each
// loading the whole model (served from memory) and set to --width. Inputs: the 100 MNIST test
// digits of fixtures/mnist-t100-images.idx3 as Float32Arrays, made once on the page. With
// --baseline REV, the package's JS files at git revision REV (with this tree's wasm builds) are
// served under /baseline/ and run as a session of their own ('one' build): before and after in
// the same run. Every session is warmed up; then in each of --rounds rounds every cell runs, the
// order rotated every round, so drift on this shared 2-core machine falls on all alike: 'run'
// (--per inputs, one `await session.run(x)` after the other, each timed on the page: caller ms,
// and the result's engine ms) and, per --batches N, 'runMany N' (--many-images inputs in calls of
// N; images/s = images / wall time of the calls). Checks: every result of a session equals that
// session's run() of the same input (class and probabilities exactly), and a baseline's equals
// the current package's; a fast wrong run reports no figure. Beside them, 'echo': --per bare
// message round trips to a worker that answers at once (bench/page/trip-echo-worker.mjs), the
// floor under any caller figure on this machine at that moment. The run fails if the page asks
// another origin. Reported: median and p95 (nearest rank) per run; runMany's median images/s over
// the rounds with the slowest and fastest round; --json keeps every timing.
//
// --app: the web app's own path instead, for each built site DIR (`trunk build` output: dist/, or
// a copy built from another revision, for a before and after), served cross-origin isolated in
// its own page of one headless Chromium (default V8 flags, as a visitor's): MNIST at 8 bits,
// ?threads=1. Per round and site, --per test images clicked with the mouse, one at a time, each
// waited for until its prediction is on the page; read from the page's latency line (#rt-latency):
// the engine's ms and what the app itself measured from starting the run to having the result
// (data-round-trip, or the line's text with its 0.1 ms rounding for a site built before that
// attribute), median and p95 over all clicks. The sites take turns every round. Chromium defers
// tasks that arrive after a click (the worker's answer among them) until it has painted the next
// frame (its DeferRendererTasksAfterInput feature, for responsiveness), so the app's figure after a
// click is about a frame; --no-input-defer turns the feature off to show what the app's own path
// costs (as in a browser without that policy).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../e2e-tests/lib/server.js';
import { busy, load, median, p95 } from './stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const MODEL_URL = '/bench/trip-model.anybit';
const DIGITS_URL = '/fixtures/mnist-t100-images.idx3';
const PKG_FILES = ['index.js', 'session.js', 'runtime.js', 'worker.js', 'errors.js'];

function parseArgs(argv) {
  const o = {
    model: join(ROOT, 'models', 'mnist.anybit'), width: 8, builds: ['one'], rounds: 20, per: 50,
    batches: [1, 16, 64], manyImages: 64, baseline: null,
  };
  const list = (s) => s.split(',').filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') o.model = resolve(next());
    else if (a === '--width') o.width = Number(next());
    else if (a === '--builds') o.builds = list(next());
    else if (a === '--rounds') (o.rounds = Number(next())), (o.roundsGiven = true);
    else if (a === '--per') (o.per = Number(next())), (o.perGiven = true);
    else if (a === '--batches') o.batches = list(next()).map(Number);
    else if (a === '--many-images') o.manyImages = Number(next());
    else if (a === '--baseline') o.baseline = next();
    else if (a === '--tiering') o.tiering = true;
    else if (a === '--json') o.json = next();
    else if (a === '--app') o.app = list(next()).map((d) => resolve(d));
    else if (a === '--no-input-defer') o.noInputDefer = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (o.builds.some((b) => b !== 'one' && b !== 'threads')) throw new Error('--builds: one and/or threads');
  for (const [k, v] of [['--rounds', o.rounds], ['--per', o.per], ['--many-images', o.manyImages], ...o.batches.map((b) => ['--batches', b])]) {
    if (!(Number.isInteger(v) && v >= 1)) throw new Error(`${k}: a whole number of at least 1`);
  }
  if (!(Number.isInteger(o.width) && o.width >= 1 && o.width <= 8)) throw new Error('--width: 1..8');
  return o;
}

// The package's JS files at `rev`, and this tree's wasm builds beside them, as server overrides
// under /baseline/.
async function baselineFiles(rev) {
  const out = {};
  for (const f of PKG_FILES) out[`/baseline/${f}`] = execFileSync('git', ['-C', ROOT, 'show', `${rev}:pkg/${f}`]);
  const walk = async (dir, url) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name), `${url}/${e.name}`);
      else out[`${url}/${e.name}`] = await readFile(join(dir, e.name));
    }
  };
  await walk(join(ROOT, 'pkg', 'wasm'), '/baseline/wasm');
  return out;
}

const sameResult = (a, b) => a.predicted === b.predicted && a.width === b.width && a.probabilities.length === b.probabilities.length &&
  a.probabilities.every((p, i) => p === b.probabilities[i]);

// The web app's own path (--app): see the head of this file.
async function appMain(o) {
  const rounds = o.roundsGiven ? o.rounds : 6;
  const per = o.perGiven ? o.per : 20;
  const loadStart = load();
  console.error(`trip --app: load average at start (1/5/15 min): ${loadStart} on ${availableParallelism()} cores`);
  busy('trip');
  const { launch } = await import('../e2e-tests/lib/chromium.js');
  const sites = [];
  try {
    for (const dir of o.app) {
      if (!existsSync(join(dir, 'index.html'))) throw new Error(`${dir}/index.html is missing: build the site (trunk build --release --offline)`);
      const server = await serve(dir, { isolated: true });
      const browser = await launch({ args: o.noInputDefer ? ['--disable-features=DeferRendererTasksAfterInput'] : [] });
      sites.push({ dir, server, browser, rows: [] });
      await browser.page.goto(`${server.origin}/index.html?threads=1`);
      await browser.page.waitForSelector('body[data-state="ready"]', { timeout: 90_000 });
    }
    let at = 1;
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < sites.length; k++) {
        const site = sites[(k + r) % sites.length];
        const page = site.browser.page;
        for (let j = 0; j < per; j++) {
          at = at % 99 + 1; // never the image already shown (0 is the first one shown)
          await page.click(`#samples .sample[data-index="${at}"]`);
          await page.waitForSelector(`body[data-state="ready"] #prediction[data-input="sample:${at}"]`, { state: 'attached', timeout: 30_000 });
          site.rows.push(await page.evaluate(() => {
            const lat = document.getElementById('rt-latency');
            const trip = lat.dataset.roundTrip ?? /([\d.]+) ms with the trip/.exec(lat.textContent)?.[1];
            return { ms: Number(lat.dataset.ms), trip: Number(trip) };
          }));
        }
      }
      console.error(`trip --app: round ${r + 1}/${rounds} done (load ${load()})`);
    }
    for (const s of sites) if (s.browser.errors.length) throw new Error(`${s.dir}: page errors:\n${s.browser.errors.join('\n')}`);
  } finally {
    for (const s of sites) {
      await s.browser.close();
      await s.server.close();
    }
  }
  const loadEnd = load();
  console.error(`trip --app: load average at end (1/5/15 min): ${loadEnd}`);
  const f = (x) => x.toFixed(2);
  const defer = o.noInputDefer ? 'Chromium\'s deferral of tasks after input OFF' : 'Chromium\'s defaults';
  let out = `\nthe web app, MNIST at 8 bits, ?threads=1, test images clicked with the mouse (${rounds} rounds of ${per} per site, turns rotated; ${defer}), load average ${loadStart} -> ${loadEnd}\n\n`;
  out += '| site | clicks | engine ms, median / p95 | app-measured run, median / p95 | difference, median |\n|---|---|---|---|---|\n';
  for (const s of sites) {
    const ms = s.rows.map((x) => x.ms);
    const trip = s.rows.map((x) => x.trip);
    out += `| ${relative(ROOT, s.dir).startsWith('..') ? s.dir : relative(ROOT, s.dir) || '.'} | ${s.rows.length} | ${f(median(ms))} / ${f(p95(ms))} | ${f(median(trip))} / ${f(p95(trip))} | ${f(median(s.rows.map((x) => x.trip - x.ms)))} |\n`;
  }
  process.stdout.write(out);
  if (o.json) await writeFile(o.json, JSON.stringify({ date: new Date().toISOString(), load: { start: loadStart, end: loadEnd }, sites: sites.map((s) => ({ dir: s.dir, rows: s.rows })) }, null, 1) + '\n');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.app) return appMain(o);
  if (!existsSync(join(ROOT, 'pkg', 'wasm', 'threads', 'anybit_bg.wasm'))) throw new Error('pkg/wasm is missing: run bash scripts/build-pkg.sh');
  const loadStart = load();
  console.error(`trip: load average at start (1/5/15 min): ${loadStart} on ${availableParallelism()} cores`);
  busy('trip');
  const modelBytes = await readFile(o.model);
  const overrides = { [MODEL_URL]: modelBytes, ...(o.baseline ? await baselineFiles(o.baseline) : {}) };
  const { launch } = await import('../e2e-tests/lib/chromium.js');
  const server = await serve(ROOT, { overrides });
  // As bench/run.mjs: optimized wasm code from the start, so warm-up cannot end in baseline code.
  const browser = await launch({ args: o.tiering ? [] : ['--js-flags=--no-liftoff'] });
  const result = {
    date: new Date().toISOString(), args: { ...o, model: relative(ROOT, o.model) }, load: { start: loadStart },
    sessions: {}, runs: [], many: [], checks: { mismatches: [] },
  };
  try {
    const page = browser.page;
    await page.goto(`${server.origin}/bench/page/trip-bench.html`);
    await page.waitForFunction(() => window.tripBenchReady === true);
    result.page = await page.evaluate(() => window.tripBench.facts());
    if (!result.page.crossOriginIsolated) throw new Error('the page is not cross-origin isolated');
    const n = await page.evaluate((u) => window.tripBench.digits(u), DIGITS_URL);
    const specs = o.builds.map((build) => ({ key: build, module: '/pkg/index.js', build }));
    if (o.baseline) specs.push({ key: `baseline ${o.baseline}`, module: '/baseline/index.js', build: 'one' });
    for (const s of specs) {
      const info = await page.evaluate((a) => window.tripBench.load(a), { ...s, pool: 2, url: MODEL_URL, width: o.width });
      if (info.threads !== 1 || info.width !== o.width) throw new Error(`session ${s.key}: ${info.threads} threads at ${info.width} bits`);
      result.sessions[s.key] = { ...s, ...info };
      console.error(`trip: session ${s.key}: ${info.build.variant} build (${info.build.isa}, pool of ${info.build.threadCount}), 1 thread, ${info.width} bits${info.hasRunMany ? '' : ', no runMany'}`);
    }
    const idx = (count, from) => Array.from({ length: count }, (_, i) => (from + i) % n);
    for (const s of specs) {
      await page.evaluate(([k, ix]) => window.tripBench.runEach(k, ix), [s.key, idx(20, 0)]);
      if (result.sessions[s.key].hasRunMany) await page.evaluate(([k, ix]) => window.tripBench.runMany(k, ix, 16), [s.key, idx(32, 0)]);
    }
    await page.evaluate((k) => window.tripBench.echo(k), 20);
    const cells = [{ key: 'echo', kind: 'echo', rows: [] }, ...specs.flatMap((s) => [
      { key: s.key, kind: 'run', rows: [] },
      ...(result.sessions[s.key].hasRunMany ? o.batches.map((b) => ({ key: s.key, kind: 'many', n: b, rounds: [] })) : []),
    ])];
    // Per session, the run() result of every input seen: what runMany's must equal.
    const byInput = new Map(specs.map((s) => [s.key, new Map()]));
    const seen = (key, i, r, what) => {
      const m = byInput.get(key);
      if (!m.has(i)) m.set(i, r);
      else if (!sameResult(m.get(i), r)) result.checks.mismatches.push(`${key} ${what}: input ${i}`);
    };
    for (let r = 0; r < o.rounds; r++) {
      for (let c = 0; c < cells.length; c++) {
        const cell = cells[(c + r) % cells.length];
        if (cell.kind === 'echo') {
          cell.rows.push(...(await page.evaluate((k) => window.tripBench.echo(k), o.per)));
        } else if (cell.kind === 'run') {
          const ix = idx(o.per, r * o.per);
          const got = await page.evaluate(([k, x]) => window.tripBench.runEach(k, x), [cell.key, ix]);
          got.forEach((g, j) => seen(cell.key, ix[j], g, 'run'));
          cell.rows.push(...got.map((g) => ({ caller: g.caller, ms: g.ms })));
        } else {
          const ix = idx(o.manyImages, r * o.manyImages);
          const got = await page.evaluate(([k, x, b]) => window.tripBench.runMany(k, x, b), [cell.key, ix, cell.n]);
          got.results.forEach((g, j) => seen(cell.key, ix[j], g, `runMany ${cell.n}`));
          cell.rounds.push({ ms: got.ms, calls: got.calls, images: ix.length, engineMs: got.results.reduce((a, g) => a + g.ms, 0) });
        }
      }
      console.error(`trip: round ${r + 1}/${o.rounds} done (load ${load()})`);
    }
    // A baseline's results equal the current package's 'one' session's (same wasm, same build).
    if (o.baseline && byInput.has('one')) {
      for (const [i, r] of byInput.get(`baseline ${o.baseline}`)) {
        const cur = byInput.get('one').get(i);
        if (cur && !sameResult(cur, r)) result.checks.mismatches.push(`baseline vs current: input ${i}`);
      }
    }
    if (result.checks.mismatches.length) throw new Error(`${result.checks.mismatches.length} results differ:\n${result.checks.mismatches.slice(0, 10).join('\n')}`);
    for (const c of cells) {
      if (c.kind === 'echo') {
        result.echo = { n: c.rows.length, median_ms: median(c.rows), p95_ms: p95(c.rows), rows: c.rows };
        continue;
      }
      const build = result.sessions[c.key].build.variant;
      if (c.kind === 'run') {
        const caller = c.rows.map((x) => x.caller);
        const engine = c.rows.map((x) => x.ms);
        result.runs.push({
          session: c.key, build, n: caller.length,
          caller_median_ms: median(caller), caller_p95_ms: p95(caller), engine_median_ms: median(engine), engine_p95_ms: p95(engine),
          // What the trip adds, per run.
          trip_median_ms: median(c.rows.map((x) => x.caller - x.ms)), trip_p95_ms: p95(c.rows.map((x) => x.caller - x.ms)),
          rows: c.rows,
        });
      } else {
        const perS = c.rounds.map((x) => x.images / (x.ms / 1000));
        result.many.push({
          session: c.key, build, n: c.n, rounds: c.rounds.length,
          images_per_s_median: median(perS), images_per_s_min: Math.min(...perS), images_per_s_max: Math.max(...perS),
          // The engine's share: what the calls would take with a free trip.
          engine_images_per_s: median(c.rounds.map((x) => x.images / (x.engineMs / 1000))),
          rounds_detail: c.rounds,
        });
      }
    }
    if (browser.errors.length) throw new Error(`page errors:\n${browser.errors.join('\n')}`);
    const foreign = browser.requests.filter((u) => !u.startsWith(server.origin) && !/^(blob|data|about):/.test(u));
    if (foreign.length) throw new Error(`the page asked for other origins: ${[...new Set(foreign)].join(', ')}`);
  } finally {
    await browser.close();
    await server.close();
  }
  result.load.end = load();
  console.error(`trip: load average at end (1/5/15 min): ${result.load.end}`);
  process.stdout.write(markdown(result));
  if (o.json) await writeFile(o.json, JSON.stringify(result, null, 1) + '\n');
}

function markdown(r) {
  const chromium = /Chrome\/([\d.]+)/.exec(r.page?.userAgent ?? '')?.[1] ?? '?';
  const f = (x) => x.toFixed(3);
  let s = `\n${r.args.model} at ${r.args.width} bits, one thread, Chromium ${chromium} headless, load average ${r.load.start} -> ${r.load.end}\n\n`;
  s += 'ms per run, median / p95 (nearest rank): caller (`await session.run(x)` on the page) and engine (the result\'s ms)\n\n';
  s += '| session | build | runs | caller | engine | caller - engine |\n|---|---|---|---|---|---|\n';
  for (const x of r.runs) s += `| ${x.session} | ${x.build} | ${x.n} | ${f(x.caller_median_ms)} / ${f(x.caller_p95_ms)} | ${f(x.engine_median_ms)} / ${f(x.engine_p95_ms)} | ${f(x.trip_median_ms)} / ${f(x.trip_p95_ms)} |\n`;
  s += `| echo (a bare round trip to a worker, 784 floats each way: the floor) | - | ${r.echo.n} | ${f(r.echo.median_ms)} / ${f(r.echo.p95_ms)} | - | - |\n`;
  if (r.many.length) {
    s += `\nrunMany: ${r.args.manyImages} images per round in calls of N, images/s median over ${r.many[0].rounds} rounds (slowest - fastest round); engine: images / the results' summed ms\n\n`;
    s += '| session | build | N | images/s | range | engine only |\n|---|---|---|---|---|---|\n';
    for (const m of r.many) s += `| ${m.session} | ${m.build} | ${m.n} | ${m.images_per_s_median.toFixed(0)} | ${m.images_per_s_min.toFixed(0)} - ${m.images_per_s_max.toFixed(0)} | ${m.engine_images_per_s.toFixed(0)} |\n`;
    for (const x of r.runs) s += `\none run() at a time (${x.session}): ${(1000 / x.caller_median_ms).toFixed(0)} images/s from the median caller time\n`;
  }
  return s;
}

main().catch((e) => {
  console.error(`trip: ${e.message}`);
  process.exit(1);
});
