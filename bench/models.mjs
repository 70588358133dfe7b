// Whole-model peer benchmark: milliseconds per image for the same graph in anybit, ONNX Runtime Web
// (fp32 and int8 QDQ) and TensorFlow.js (wasm backend, fp32), in one headless Chromium, alternating,
// with the same input, on 1 and 2 threads (bench/page/models-engines.mjs holds the engines).
//
//   bash scripts/peer-models.sh                          # models, ONNX and TF.js files, references
//   (cd e2e-tests && npm ci) && (cd bench && npm ci)     # playwright-core; onnxruntime-web, TF.js
//   bash scripts/build-pkg.sh                            # pkg/wasm, if pkg/ has no wasm yet
//   node bench/models.mjs [--workloads mnist,fashion,resnet20,conv3x3] [--engines anybit,anybit-page,anybit-out,ort,tfjs]
//                         [--widths 8,1] [--threads 1,2] [--reps 40] [--burst 1] [--warmup 5] [--tiering]
//                         [--json out.json] [--md out.md] [--svg out.svg]
//   node bench/models.mjs --from out.json [--md out.md] [--svg out.svg]   (re-renders a saved run)
//
// Workloads: the shipped MNIST and Fashion-MNIST CNNs (models/*.anybit), a ResNet-20 in CIFAR shape
// and the single 3x3 conv 64->64 at 28x28 (random weights: `anybit bench-model`). The text encoder
// has its own peer benchmark, bench/text.mjs. Files: $ANYBIT_CACHE/peers/ (default
// ~/.cache/anybit/peers/), made by scripts/peer-models.sh: for each workload the float graph of the
// anybit model at 8 bits (`anybit peer-export`: weights dequantized from the 8-bit codes, BatchNorm
// folded, PACT clips as Clip/ReLU-with-max nodes) as model-fp32.onnx, model-int8.onnx (ONNX
// Runtime's static QDQ quantizer, per channel) and a TF.js layers model (tfjs/), and
// reference.json: inputs with anybit's float-twin and 8-bit outputs (bits1/reference.json: its
// 1-bit outputs). anybit itself runs the original .anybit file at each --widths width. Everything
// is served to the page from memory by e2e-tests/lib/server.js (COOP/COEP: threads need
// SharedArrayBuffer); ORT's and TF.js's wasm come from bench/node_modules, anybit's from pkg/.
// The run fails if the page asks for anything from another origin.
//
// Threads: one page per thread count (ORT Web and TF.js fix theirs once per page); every engine in
// a page gets the same count: anybit the threads build with a pool of that size (1 thread: the
// relaxed-SIMD build, else SIMD; `anybit-page`, the session with `worker: false`, runs on the
// page's thread as ORT and TF.js do here, leading its pool's workers as they lead theirs;
// `anybit-out`, the same with run()'s `output` option, each run writing into the array the first
// returned: no new output array per run, which ORT Web 1.31.1 cannot offer on its CPU backend (a
// pre-allocated 'cpu' output tensor comes back all zeros: BENCHMARKS.md)), ORT
// `env.wasm.numThreads`, TF.js `setThreadsCount` before its backend starts; TF.js caps that at
// half of navigator.hardwareConcurrency (1 here, whatever it is asked), so a page for N > 1
// threads reports 2N (an init script); the count TF.js reports is checked and recorded.
//
// Method: before any timing, every setting runs every reference input and must reproduce it:
// ORT fp32 and TF.js within 1e-4 * max(1, max |ref|) of the float outputs (max abs difference);
// anybit at 8 and 1 bits within 1e-3 * max |ref| (at least 1e-6) of its own quantized outputs at
// that width (other
// widths: finite and the right length); ORT int8 only reports top-1 agreement and cosine with the
// float outputs (it is a different quantization) and fails only on non-finite or missing values.
// Then every setting is warmed up --warmup times and timed in --reps rounds on the workload's first
// reference input, round-robin over all settings of all workloads, the order rotated every round,
// so drift on this shared machine falls on all settings alike. In a round each setting runs
// --burst times in a row (default 1): with 1, every run follows another engine's, whose pool
// threads may still be spinning (TF.js's and ORT's do after a run) and whose data has left the
// caches, as for a page that calls once per event; with more, the later runs of a turn are those
// of a page that calls one engine repeatedly (frames, a list of images). Two times per
// run: the page's (performance.now around `await run(input)`: for anybit in its worker the trip to
// the worker and back, for ORT making the input tensor and session.run, for TF.js tensor, predict, dataSync and
// dispose) and the engine's (anybit: the `ms` its runtime reports; ORT: session.run; TF.js:
// predict + dataSync). Reported: median and p95 (nearest rank) of the page times, the engine
// median, and per workload and thread count anybit's speed-up over the fastest peer setting
// (its page-time median over anybit's; > 1: anybit is faster). The load average at start and end
// is printed and recorded, with a warning when the machine is busy (bench/stats.mjs).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../e2e-tests/lib/server.js';
import { speedChart } from './speed-chart.mjs';
import { busy, load, median, p95 } from './stats.mjs';
// A page module, readable in Node too (it touches no browser API until an engine loads).
import { ENGINES } from './page/models-engines.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const CACHE = join(process.env.ANYBIT_CACHE ?? join(homedir(), '.cache', 'anybit'), 'peers');
const MAKE = 'run bash scripts/peer-models.sh';

// Workload -> its .anybit file (the original model anybit runs) and its peer folder.
const WORKLOADS = {
  mnist: { anybit: join(ROOT, 'models', 'mnist.anybit'), dir: join(CACHE, 'mnist'), what: 'MNIST CNN (models/mnist.anybit)' },
  fashion: { anybit: join(ROOT, 'models', 'fashion-mnist.anybit'), dir: join(CACHE, 'fashion'), what: 'Fashion-MNIST CNN (models/fashion-mnist.anybit)' },
  resnet20: { anybit: join(CACHE, 'resnet20.anybit'), dir: join(CACHE, 'resnet20'), what: 'ResNet-20, 32x32x3 (random weights)' },
  conv3x3: { anybit: join(CACHE, 'conv3x3.anybit'), dir: join(CACHE, 'conv3x3'), what: '3x3 conv 64->64 at 28x28 (random weights)' },
};

function parseArgs(argv) {
  const o = { workloads: Object.keys(WORKLOADS), engines: ['anybit', 'anybit-page', 'anybit-out', 'ort', 'tfjs'], widths: ['8', '1'], threads: [1, 2], reps: 40, warmup: 5, burst: 1 };
  const list = (s) => s.split(',').filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--workloads') o.workloads = list(next());
    else if (a === '--engines') o.engines = list(next());
    else if (a === '--widths') o.widths = list(next());
    else if (a === '--threads') o.threads = list(next()).map(Number);
    else if (a === '--reps') o.reps = Number(next());
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--json') o.json = next();
    else if (a === '--md') o.md = next();
    else if (a === '--svg') o.svg = next();
    else if (a === '--from') o.from = next();
    else if (a === '--burst') o.burst = Number(next());
    else if (a === '--tiering') o.tiering = true;
    else throw new Error(`unknown argument ${a}`);
  }
  for (const w of o.workloads) if (!WORKLOADS[w]) throw new Error(`unknown workload ${w} (have: ${Object.keys(WORKLOADS).join(', ')})`);
  for (const e of o.engines) if (!ENGINES[e]) throw new Error(`unknown engine ${e} (have: ${Object.keys(ENGINES).join(', ')})`);
  for (const w of o.widths) if (!ENGINES.anybit.variants.includes(w)) throw new Error(`--widths: ${w} is not one of ${ENGINES.anybit.variants.join(', ')}`);
  if (o.threads.some((t) => !(t >= 1 && t <= 16))) throw new Error('--threads: each between 1 and 16');
  if (!(Number.isInteger(o.burst) && o.burst >= 1 && o.burst <= 100)) throw new Error('--burst: an integer in 1..=100');
  if (!(o.reps >= 1) || !(o.warmup >= 0)) throw new Error('--reps must be >= 1 and --warmup >= 0');
  return o;
}

function need(path, how) {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${how}`);
}

// URL path on the bench server -> file, for one workload and engine.
function modelFiles(workload, engine, widths) {
  const w = WORKLOADS[workload];
  const at = (name) => [`/peers/${workload}/${name}`, join(w.dir, name)];
  if (isAnybit(engine)) return Object.fromEntries(widths.map((b) => [b, [`/peers/${workload}/model.anybit`, w.anybit]]));
  if (engine === 'ort') return { fp32: at('model-fp32.onnx'), int8: at('model-int8.onnx') };
  if (engine === 'tfjs') return { fp32: at('tfjs/model.json') };
  throw new Error(`no model files known for engine ${engine}`);
}

const isAnybit = (engine) => engine === 'anybit' || engine === 'anybit-page' || engine === 'anybit-out';
const maxAbs = (xs) => xs.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);
function cosine(a, b) {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  // Two all-zero outputs (a random model at 1 bit can give them) are the same output.
  if (aa === 0 || bb === 0) return aa === bb ? 1 : 0;
  return ab / Math.sqrt(aa * bb);
}

// What a setting's outputs are checked against, and how (the header says why).
function expectation(s, ref) {
  if (isAnybit(s.engine)) {
    const r = s.variant === '8' ? ref.q8 : s.variant === '1' ? ref.q1 : null;
    return r ? { against: `anybit ${s.variant}-bit outputs`, outputs: r, tol: (o) => Math.max(1e-3 * maxAbs(o), 1e-6), strict: true }
      : { against: 'finite, right length', outputs: null, strict: true };
  }
  if (s.variant === 'int8') return { against: 'float outputs (reported only)', outputs: ref.float, tol: null, strict: false };
  return { against: 'float outputs', outputs: ref.float, tol: (o) => 1e-4 * Math.max(1, maxAbs(o)), strict: true };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.from) return render(JSON.parse(await readFile(o.from, 'utf8')), o);
  need(join(ROOT, 'e2e-tests', 'node_modules', 'playwright-core'), 'run (cd e2e-tests && npm ci)');
  if (o.engines.includes('ort')) need(join(ROOT, 'bench', 'node_modules', 'onnxruntime-web', 'dist', 'ort.wasm.min.mjs'), 'run (cd bench && npm ci)');
  if (o.engines.includes('tfjs')) need(join(ROOT, 'bench', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist', 'tfjs-backend-wasm-threaded-simd.wasm'), 'run (cd bench && npm ci)');
  if (o.engines.some(isAnybit)) need(join(ROOT, 'pkg', 'wasm', 'simd'), 'run bash scripts/build-pkg.sh');

  const loadStart = load();
  console.error(`models: load average at start (1/5/15 min): ${loadStart} on ${availableParallelism()} cores`);
  const busyStart = busy('models');

  // Files: every one read now and served from memory, so a rewrite mid-run changes nothing.
  const overrides = {};
  const refs = {};
  const settings = []; // {workload, engine, variant, threads}
  const files = {}; // workload -> engine -> variant -> URL
  for (const workload of o.workloads) {
    const w = WORKLOADS[workload];
    need(join(w.dir, 'reference.json'), MAKE);
    const graph = JSON.parse(await readFile(join(w.dir, 'graph.json'), 'utf8'));
    const reference = JSON.parse(await readFile(join(w.dir, 'reference.json'), 'utf8'));
    const bits1 = join(w.dir, 'bits1', 'reference.json');
    const r1 = existsSync(bits1) ? JSON.parse(await readFile(bits1, 'utf8')) : null;
    if (r1 && JSON.stringify(r1.inputs) !== JSON.stringify(reference.inputs)) throw new Error(`${bits1}: other inputs than ${w.dir}/reference.json: ${MAKE}`);
    refs[workload] = { shape: graph.input.shape, inputs: reference.inputs, float: reference.float_outputs, q8: graph.bits === 8 ? reference.quantized_outputs : null, q1: r1?.quantized_outputs ?? null };
    files[workload] = {};
    for (const engine of o.engines) {
      const known = modelFiles(workload, engine, o.widths);
      const variants = isAnybit(engine) ? o.widths : ENGINES[engine].variants;
      files[workload][engine] = {};
      for (const v of variants) {
        const [url, path] = known[v];
        need(path, MAKE);
        overrides[url] = await readFile(path);
        if (engine === 'tfjs') overrides[url.replace(/model\.json$/, 'weights.bin')] = await readFile(join(dirname(path), 'weights.bin'));
        files[workload][engine][v] = url;
        for (const threads of o.threads) settings.push({ workload, engine, variant: v, threads });
      }
    }
  }

  const { launch } = await import('../e2e-tests/lib/chromium.js');
  const server = await serve(ROOT, { overrides });
  // As bench/run.mjs: optimized wasm code from the start, so warm-up cannot end in baseline code.
  const browser = await launch({ args: o.tiering ? [] : ['--js-flags=--no-liftoff'] });
  const result = {
    date: new Date().toISOString(), args: o, source: source(), cores: availableParallelism(), load: { start: loadStart, busyStart },
    workloads: Object.fromEntries(o.workloads.map((w) => [w, { what: WORKLOADS[w].what, shape: refs[w].shape, inputs: refs[w].inputs.length }])),
    pages: {}, engines: {}, checks: [], rows: [],
  };
  try {
    const pages = {};
    for (const threads of o.threads) {
      const page = threads === o.threads[0] ? browser.page : await browser.context.newPage();
      if (page !== browser.page) {
        page.on('console', (m) => m.type() === 'error' && browser.errors.push(m.text()));
        page.on('pageerror', (e) => browser.errors.push(String(e)));
      }
      // TF.js's wasm backend gives itself at most half of navigator.hardwareConcurrency threads,
      // whatever setThreadsCount asks (1 on this 2-core machine): a page for N > 1 threads reports
      // 2N logical cores, so TF.js can start N. anybit and ORT take their counts as given.
      const hwc = threads > 1 ? 2 * threads : null;
      if (hwc) await page.addInitScript((n) => Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => n, configurable: true }), hwc);
      await page.goto(`${server.origin}/bench/page/models-bench.html?threads=${threads}`);
      await page.waitForFunction(() => window.modelsBenchReady === true);
      pages[threads] = page;
      const f = (result.pages[threads] = { ...(await page.evaluate(() => window.modelsBench.facts())), hardwareConcurrencyRaisedTo: hwc });
      console.error(`models: page for ${threads} thread(s): crossOriginIsolated ${f.crossOriginIsolated}, ${f.visibility}, hardwareConcurrency ${f.hardwareConcurrency}`);
      if (threads > 1 && !f.crossOriginIsolated) throw new Error('the page is not cross-origin isolated');
      for (const workload of o.workloads) await page.evaluate(([w, x]) => window.modelsBench.setInput(w, x), [workload, refs[workload].inputs[0]]);
    }

    for (const s of settings) {
      const key = `${s.workload}/${s.engine}/${s.variant}`;
      const ref = refs[s.workload];
      const info = await pages[s.threads].evaluate((a) => window.modelsBench.load(a), { ...s, files: files[s.workload][s.engine], shape: ref.shape });
      result.engines[`${key}/x${s.threads}`] = info;
      console.error(`models: loaded ${s.workload} ${s.engine} ${s.variant} x${s.threads}: ${info.name} ${info.version ?? ''} (${info.threads} thread(s)${info.backend ? `, backend ${info.backend}` : ''}) in ${info.loadMs.toFixed(0)} ms`);
      if (info.threads !== s.threads) throw new Error(`${key} x${s.threads}: the engine reports ${info.threads} thread(s)`);
      const exp = expectation(s, ref);
      let worst = 0;
      let agree = 0;
      let minCos = 1;
      let finite = true;
      let zeros = 0; // reference outputs that are all zero (a random model at 1 bit can give them)
      for (let i = 0; i < ref.inputs.length; i++) {
        const got = await pages[s.threads].evaluate(([k, x]) => window.modelsBench.output(k, x), [key, ref.inputs[i]]);
        const want = exp.outputs?.[i];
        finite &&= got.every(Number.isFinite) && got.length === ref.float[i].length;
        if (!want) continue;
        zeros += want.every((x) => x === 0);
        const d = got.reduce((m, x, j) => Math.max(m, Math.abs(x - want[j])), 0);
        if (exp.tol) worst = Math.max(worst, d / exp.tol(want));
        agree += argmax(got) === argmax(want);
        minCos = Math.min(minCos, cosine(got, want));
      }
      const n = ref.inputs.length;
      const ok = finite && (!exp.tol || worst <= 1);
      const check = { ...s, against: exp.against, inputs: n, finite, diffOverTolerance: exp.tol ? worst : null, top1: exp.outputs ? agree : null, minCosine: exp.outputs ? minCos : null, zeroReferences: zeros, ok };
      result.checks.push(check);
      console.error(`models: check ${s.workload} ${s.engine} ${s.variant} x${s.threads} vs ${exp.against}: ` +
        (exp.outputs ? `${exp.tol ? `max |diff| / tolerance ${worst.toFixed(3)}, ` : ''}top-1 ${agree}/${n}, min cosine ${minCos.toFixed(6)}` : `finite ${finite}`));
      if (!ok && exp.strict) throw new Error(`${s.workload} ${s.engine} ${s.variant} x${s.threads} does not reproduce ${exp.against} (max |diff| / tolerance ${worst}, finite ${finite}): no figure for it`);
      if (!finite) throw new Error(`${s.workload} ${s.engine} ${s.variant} x${s.threads}: non-finite or missing outputs`);
    }

    const cells = settings.map((s) => ({ ...s, ms: [], engineMs: [] }));
    const timeOne = (c) => pages[c.threads].evaluate((k) => window.modelsBench.time(k), `${c.workload}/${c.engine}/${c.variant}`);
    console.error(`models: timing ${cells.length} settings, ${o.warmup} warm-up + ${o.reps} rounds of ${o.burst} run(s) each, round-robin`);
    for (let r = 0; r < o.warmup; r++) for (const c of cells) await timeOne(c);
    for (let r = 0; r < o.reps; r++) {
      for (let i = 0; i < cells.length; i++) {
        const c = cells[(i + r) % cells.length];
        for (let b = 0; b < o.burst; b++) {
          const t = await timeOne(c);
          c.ms.push(t.ms);
          if (t.engineMs != null) c.engineMs.push(t.engineMs);
        }
      }
    }
    for (const c of cells) {
      result.rows.push({
        workload: c.workload, engine: c.engine, variant: c.variant, threads: c.threads,
        median_ms: median(c.ms), p95_ms: p95(c.ms), min_ms: Math.min(...c.ms),
        engine_median_ms: c.engineMs.length ? median(c.engineMs) : null, ms: c.ms, engine_ms: c.engineMs,
      });
    }
    if (browser.errors.length) throw new Error(`page errors:\n${browser.errors.join('\n')}`);
    const foreign = browser.requests.filter((u) => !u.startsWith(server.origin) && !/^(blob|data|about):/.test(u));
    if (foreign.length) throw new Error(`the page asked for other origins: ${[...new Set(foreign)].join(', ')}`);
  } finally {
    await browser.close();
    await server.close();
  }
  result.load.end = load();
  result.load.busyEnd = busy('models');
  console.error(`models: load average at end (1/5/15 min): ${result.load.end}`);
  result.ratios = ratios(result);

  if (o.json) await writeFile(o.json, JSON.stringify(result, null, 1) + '\n');
  await render(result, o);
}

// The tables (stdout, --md) and the chart (--svg) of a run.
async function render(result, o) {
  const md = markdown(result);
  process.stdout.write(md);
  if (o.md) await writeFile(o.md, md);
  if (o.svg) await writeFile(o.svg, speedChart(result, settingName, isAnybit));
}

// Which tree was measured: the commit, and the files of the package, the runtime and this
// benchmark that differ from it (the page serves pkg/ as it is on disk).
function source() {
  const git = (...a) => {
    try {
      return execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trimEnd();
    } catch {
      return null;
    }
  };
  return { commit: git('rev-parse', 'HEAD'), changed: git('status', '--porcelain', '--', 'pkg', 'crate', 'bench/models.mjs', 'bench/stats.mjs', 'bench/page/models-bench.mjs', 'bench/page/models-engines.mjs')?.split('\n').filter(Boolean) ?? null };
}

// Per workload and thread count: the fastest peer setting (page-time median) and anybit's speed-up
// over it at each width and way of running (peer median / anybit median; > 1: anybit is faster).
function ratios(r) {
  const out = [];
  for (const workload of r.args.workloads) {
    for (const threads of r.args.threads) {
      const rows = r.rows.filter((x) => x.workload === workload && x.threads === threads);
      const peers = rows.filter((x) => !isAnybit(x.engine)).sort((a, b) => a.median_ms - b.median_ms);
      const best = peers[0];
      const entry = { workload, threads, peer: best ? `${best.engine} ${best.variant}` : null, peer_median_ms: best?.median_ms ?? null, anybit: {} };
      for (const x of rows.filter((y) => isAnybit(y.engine))) {
        entry.anybit[`${x.engine}:${x.variant}`] = { median_ms: x.median_ms, engine_median_ms: x.engine_median_ms, speedup: best ? best.median_ms / x.median_ms : null };
      }
      out.push(entry);
    }
  }
  return out;
}

const settingName = (engine, variant) => (engine === 'anybit' ? `anybit ${variant}-bit`
  : engine === 'anybit-page' ? `anybit ${variant}-bit, page's thread`
    : engine === 'anybit-out' ? `anybit ${variant}-bit, page's thread, output reused`
      : engine === 'ort' ? `ORT Web ${variant}` : `TF.js wasm ${variant}`);

function markdown(r) {
  const ua = Object.values(r.pages)[0]?.userAgent ?? '';
  const chromium = /Chrome\/([\d.]+)/.exec(ua)?.[1] ?? '?';
  const name = settingName;
  const f = (x) => (x == null ? '' : x.toFixed(3));
  const threads = r.args.threads;
  let s = `\nWhole models, one image per call, ms per run as the page sees it: median / p95 of ${r.args.reps * (r.args.burst ?? 1)}${(r.args.burst ?? 1) > 1 ? ` (${r.args.reps} turns of ${r.args.burst} runs in a row)` : ''} (engine's own median in brackets); ` +
    `Chromium ${chromium} headless, ${r.cores} cores; load average ${r.load.start} -> ${r.load.end}` +
    `${r.load.busyStart || r.load.busyEnd ? ' (BUSY: figures are slow and noisy)' : ''}; ${r.date}, commit ${r.source.commit?.slice(0, 7) ?? '?'}` +
    `${r.source.changed?.length ? ` with uncommitted changes in ${r.source.changed.map((l) => l.slice(3)).join(', ')}` : ''}\n\n`;
  s += `| workload | engine | ${threads.map((t) => `${t} thread${t > 1 ? 's' : ''}`).join(' | ')} |${threads.length > 1 ? ` x${threads.at(-1)} speed-up |` : ''}\n`;
  s += `|---|---|${threads.map(() => '---|').join('')}${threads.length > 1 ? '---|' : ''}\n`;
  const keys = [...new Set(r.rows.map((x) => `${x.workload}|${x.engine}|${x.variant}`))];
  for (const k of keys) {
    const [workload, engine, variant] = k.split('|');
    const row = threads.map((t) => r.rows.find((x) => x.workload === workload && x.engine === engine && x.variant === variant && x.threads === t));
    const cells = row.map((x) => (x ? `${f(x.median_ms)} / ${f(x.p95_ms)}${x.engine_median_ms != null ? ` (${f(x.engine_median_ms)})` : ''}` : ''));
    const speed = threads.length > 1 ? (row[0] && row.at(-1) ? ` ${(row[0].median_ms / row.at(-1).median_ms).toFixed(2)}x |` : ' |') : '';
    s += `| ${workload} | ${name(engine, variant)} | ${cells.join(' | ')} |${speed}\n`;
  }
  const cols = r.args.engines.filter(isAnybit).flatMap((e) => r.args.widths.map((w) => [e, w]));
  if (cols.length && r.ratios.some((x) => x.peer)) {
    s += `\nanybit's speed-up over the fastest peer setting on the same workload and thread count (page-time medians; > 1: anybit faster; "page's thread": the session with worker: false)\n\n`;
    s += `| workload | threads | fastest peer (ms) | ${cols.map(([e, w]) => name(e, w)).join(' | ')} |\n|---|---|---|${cols.map(() => '---|').join('')}\n`;
    for (const x of r.ratios) {
      const cell = ([e, w]) => x.anybit[`${e}:${w}`];
      s += `| ${x.workload} | ${x.threads} | ${name(...x.peer.split(' '))} (${f(x.peer_median_ms)}) | ${cols.map((c) => (cell(c) ? `${cell(c).speedup.toFixed(2)}x (${f(cell(c).median_ms)})` : '')).join(' | ')} |\n`;
    }
  }
  s += `\nOutput checks before timing (every reference input; the header of bench/models.mjs gives the tolerances)\n\n`;
  s += `| workload | engine | threads | against | inputs | max abs diff / tolerance | top-1 agreement | min cosine |\n|---|---|---|---|---|---|---|---|\n`;
  for (const c of r.checks) {
    s += `| ${c.workload} | ${name(c.engine, c.variant)} | ${c.threads} | ${c.against} | ${c.inputs} | ${c.diffOverTolerance == null ? '' : c.diffOverTolerance.toFixed(3)} | ${c.top1 == null ? '' : `${c.top1}/${c.inputs}`} | ${c.minCosine == null ? '' : c.minCosine.toFixed(5)} |\n`;
  }
  const zero = r.checks.filter((c) => c.zeroReferences > 0 && c.threads === r.args.threads[0]);
  for (const c of zero) {
    s += `\nNote: ${c.zeroReferences} of ${c.inputs} reference outputs of ${c.workload} at ${name(c.engine, c.variant)} are all zero (random weights and inputs: at 1 bit their activations can all round to zero), so that check says little; the timing is of the full pass.\n`;
  }
  const e = r.engines;
  const tf = Object.entries(e).filter(([k]) => k.includes('/tfjs/')).map(([k, v]) => `${k.split('/').at(-1)}: ${v.threads}`);
  s += `\nThreads: one page per count. anybit: the threads build with a pool of N for N > 1, else the relaxed-SIMD (or SIMD) build; ` +
    `ORT Web: env.wasm.numThreads = N (proxy off); TF.js: tf.wasm.setThreadsCount(N) before setBackend('wasm')` +
    `${tf.length ? ` (tf.wasm.getThreadsCount() per page: ${[...new Set(tf)].join(', ')})` : ''}; ` +
    `ORT Web, TF.js and anybit with worker: false run on the page's thread ("output reused": each run writes into the array the first run returned, run()'s output option); anybit's other page times include the trip to its worker and back (run() returns the output with, for a class vector, its probabilities and top 5 classes; conv3x3's 28x28x64 map comes back alone). ` +
    `navigator.hardwareConcurrency per page: ${Object.entries(r.pages).map(([t, p]) => `${t} thread(s): ${p.hardwareConcurrency}${p.hardwareConcurrencyRaisedTo ? ' (raised by an init script: TF.js takes at most half)' : ''}`).join(', ')}; the machine has ${r.cores} cores.\n`;
  return s;
}

main().catch((e) => {
  console.error(`models: ${e.message}`);
  process.exit(1);
});
