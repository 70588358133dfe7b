// Text-encoder benchmark: milliseconds per sentence for all-MiniLM-L6-v2 in headless Chromium, per
// engine (bench/page/text-engines.mjs: ONNX Runtime Web today), model variant, thread count and
// sentence length.
//
//   bash scripts/fetch-minilm.sh && nice python3 scripts/minilm_onnx.py   # model + ONNX files
//   (cd e2e-tests && npm ci) && (cd bench && npm ci)                      # playwright-core, onnxruntime-web
//   node bench/text.mjs [--engines ort,anybit] [--variants fp32,int8] [--threads 1,2] [--tokens 16,64,128]
//                       [--reps 20] [--warmup 5] [--tiering] [--json out.json]
//
// Files: $ANYBIT_CACHE/minilm/ (default ~/.cache/anybit/minilm/): model/vocab.txt and
// onnx/model-{fp32,int8}.onnx, served to the page from memory by e2e-tests/lib/server.js (which
// sends COOP/COEP: ORT's threads need SharedArrayBuffer); ORT's own wasm comes from
// bench/node_modules. The run fails if the page asks for anything from another origin.
//
// Sentences: of exactly 16, 64, 128 tokens, [CLS] + words + [SEP], the words taken in turn from a
// list of common words that are each one token of the vocabulary (a whole word found in
// vocab.txt is its own WordPiece), so the ids are the tokenizer's without running one here.
// Timing cannot depend on which words they are, only on how many.
//
// Method: before any timing, each engine and variant embeds three fixture sentences
// (tools/tests/fixtures/minilm/reference.json: shortest, median, longest) and must match the
// float64 reference (fp32: max abs difference <= 1e-4; int8: cosine >= 0.97). Every setting is
// warmed up, then timed one sentence at a time in round-robin over all settings, the order
// rotated every round, so drift on this shared 2-core machine falls on all settings alike. One
// page per thread count (ORT Web fixes its thread count once per page); pages share one browser.
// Reported: median and p95 (nearest rank: of 20 repetitions, the 19th fastest) of the --reps
// timings, in ms per sentence; --json keeps every timing, the checks and the page facts.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../e2e-tests/lib/server.js';
import { busy, load, median, p95 } from './stats.mjs';
// A page module, readable in Node too (it touches no browser API until an engine loads): the
// runner takes each engine's variants from it.
import { ENGINES } from './page/text-engines.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const CACHE = join(process.env.ANYBIT_CACHE ?? join(homedir(), '.cache', 'anybit'), 'minilm');
const FIXTURE = join(ROOT, 'tools', 'tests', 'fixtures', 'minilm', 'reference.json');

// Common English words, each a single entry of the BERT uncased vocabulary (checked at start).
const WORDS = ('the model reads this short text and returns one vector for all of its words so we can see how long each ' +
  'run takes on a small machine with two cores when the page is busy or quiet in the morning after work').split(' ');

function parseArgs(argv) {
  const o = { engines: ['ort', 'anybit'], variants: null, threads: [1, 2], tokens: [16, 64, 128], reps: 20, warmup: 5 };
  const list = (s) => s.split(',').filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--engines') o.engines = list(next());
    else if (a === '--variants') o.variants = list(next());
    else if (a === '--threads') o.threads = list(next()).map(Number);
    else if (a === '--tokens') o.tokens = list(next()).map(Number);
    else if (a === '--reps') o.reps = Number(next());
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--json') o.json = next();
    else if (a === '--tiering') o.tiering = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (o.tokens.some((n) => !(n >= 3 && n <= 512))) throw new Error('--tokens: each between 3 and 512');
  return o;
}

// Where each engine's model files come from: URL path on the bench server -> file on disk. An
// engine added to text-engines.mjs adds its entry here.
function modelFiles(engine) {
  if (engine === 'ort') {
    return {
      fp32: ['/minilm/model-fp32.onnx', join(CACHE, 'onnx', 'model-fp32.onnx')],
      int8: ['/minilm/model-int8.onnx', join(CACHE, 'onnx', 'model-int8.onnx')],
    };
  }
  if (engine === 'anybit') {
    // One file for every width: `anybit import` of the MiniLM folder (docs/TEXT.md).
    const file = ['/minilm/minilm.anybit', join(CACHE, 'minilm.anybit')];
    return { 8: file, 4: file, 2: file };
  }
  throw new Error(`no model files known for engine ${engine}`);
}

function need(path, how) {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${how}`);
}

async function sentenceIds(tokens) {
  const vocabPath = join(CACHE, 'model', 'vocab.txt');
  need(vocabPath, 'run bash scripts/fetch-minilm.sh');
  const vocab = new Map((await readFile(vocabPath, 'utf8')).split('\n').map((w, i) => [w, i]));
  const missing = WORDS.filter((w) => !vocab.has(w));
  if (missing.length) throw new Error(`not single tokens of vocab.txt: ${missing.join(' ')}`);
  const [cls, sep] = [vocab.get('[CLS]'), vocab.get('[SEP]')];
  const out = {};
  for (const n of tokens) {
    const words = Array.from({ length: n - 2 }, (_, i) => WORDS[i % WORDS.length]);
    out[n] = { text: words.join(' '), ids: [cls, ...words.map((w) => vocab.get(w)), sep] };
  }
  return out;
}

function cosine(a, b) {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  need(join(ROOT, 'bench', 'node_modules', 'onnxruntime-web', 'dist', 'ort.wasm.min.mjs'), 'run (cd bench && npm ci)');
  need(FIXTURE, 'run nice python3 scripts/minilm_reference.py');

  // The machine is shared (2 cores, other builds): the load average says how quiet it was.
  const loadStart = load();
  console.error(`text: load average at start (1/5/15 min): ${loadStart} on ${availableParallelism()} cores`);
  busy('text');

  const sentences = await sentenceIds(o.tokens);
  const reference = JSON.parse(await readFile(FIXTURE, 'utf8')).sentences;
  const checks = [0, reference.length >> 1, reference.length - 1].map((i) => reference[i]);

  const overrides = {};
  const settings = []; // {engine, variant, threads}
  const files = {};
  for (const engine of o.engines) {
    if (!ENGINES[engine]) throw new Error(`unknown engine ${engine} (have: ${Object.keys(ENGINES).join(', ')})`);
    const variants = o.variants ?? ENGINES[engine].variants;
    const known = modelFiles(engine);
    files[engine] = {};
    for (const v of variants) {
      if (!known[v]) throw new Error(`${engine}: no file for variant ${v}`);
      const [url, path] = known[v];
      need(path, engine === 'anybit'
        ? 'run bash scripts/fetch-minilm.sh, then cargo run --release -p anybit-tools -- import --from ~/.cache/anybit/minilm/model --out ~/.cache/anybit/minilm/minilm.anybit, and bash scripts/build-wasm.sh simd threads'
        : 'run bash scripts/fetch-minilm.sh && nice python3 scripts/minilm_onnx.py');
      overrides[url] = await readFile(path);
      files[engine][v] = url;
      for (const threads of o.threads) settings.push({ engine, variant: v, threads });
    }
  }

  const { launch } = await import('../e2e-tests/lib/chromium.js');
  const server = await serve(ROOT, { overrides });
  // As bench/run.mjs: optimized wasm code from the start, so warm-up cannot end in baseline code.
  const browser = await launch({ args: o.tiering ? [] : ['--js-flags=--no-liftoff'] });
  const result = { date: new Date().toISOString(), args: o, load: { start: loadStart }, pages: {}, engines: {}, checks: [], rows: [] };
  try {
    const pages = {};
    for (const threads of o.threads) {
      const page = threads === o.threads[0] ? browser.page : await browser.context.newPage();
      await page.goto(`${server.origin}/bench/page/text-bench.html?threads=${threads}`);
      await page.waitForFunction(() => window.textBenchReady === true);
      pages[threads] = page;
      result.pages[threads] = await page.evaluate(() => window.textBench.facts());
      const f = result.pages[threads];
      // A hidden page could be throttled; headless pages report "visible" (seen), checked anyway.
      console.error(`text: page for ${threads} thread(s): crossOriginIsolated ${f.crossOriginIsolated}, ${f.visibility}, hardwareConcurrency ${f.hardwareConcurrency}`);
      if (threads > 1 && !result.pages[threads].crossOriginIsolated) throw new Error('the page is not cross-origin isolated');
    }
    for (const s of settings) {
      const info = await pages[s.threads].evaluate((a) => window.textBench.load(a), { ...s, files: files[s.engine] });
      result.engines[`${s.engine}/${s.variant}/x${s.threads}`] = info;
      console.error(`text: loaded ${s.engine} ${s.variant} x${s.threads}: ${info.name} ${info.version ?? ''} in ${info.loadMs.toFixed(0)} ms`);
      for (const c of checks) {
        const got = await pages[s.threads].evaluate(([k, sentence]) => window.textBench.embed(k, sentence), [`${s.engine}/${s.variant}`, { ids: c.ids, text: c.text }]);
        const maxAbs = Math.max(...got.map((x, i) => Math.abs(x - c.embedding[i])));
        const cos = cosine(got, c.embedding);
        const minCos = ENGINES[s.engine].minCosine?.[s.variant] ?? 0.97;
        const ok = got.length === c.embedding.length && got.every(Number.isFinite) && (s.variant === 'fp32' ? maxAbs <= 1e-4 : cos >= minCos);
        result.checks.push({ ...s, sentenceID: c.sentenceID, tokens: c.ids.length, maxAbs, cosine: cos, ok });
        if (!ok) throw new Error(`${s.engine} ${s.variant} x${s.threads} is wrong on fixture sentence ${c.sentenceID}: max abs ${maxAbs}, cosine ${cos}`);
      }
    }
    for (const v of new Set(settings.map((s) => s.variant))) {
      const cs = result.checks.filter((c) => c.variant === v);
      console.error(`text: ${v} vs the float64 reference (${cs.length} embeddings): max abs ${Math.max(...cs.map((c) => c.maxAbs)).toExponential(2)}, min cosine ${Math.min(...cs.map((c) => c.cosine)).toFixed(6)}`);
    }

    const cells = settings.flatMap((s) => o.tokens.map((tokens) => ({ ...s, tokens, ms: [] })));
    const timeOne = (c) => pages[c.threads].evaluate(([k, sentence]) => window.textBench.time(k, sentence), [`${c.engine}/${c.variant}`, sentences[c.tokens]]);
    for (let r = 0; r < o.warmup; r++) for (const c of cells) await timeOne(c);
    for (let r = 0; r < o.reps; r++) {
      for (let i = 0; i < cells.length; i++) {
        const c = cells[(i + r) % cells.length];
        c.ms.push(await timeOne(c));
      }
    }
    for (const c of cells) result.rows.push({ engine: c.engine, variant: c.variant, threads: c.threads, tokens: c.tokens, median_ms: median(c.ms), p95_ms: p95(c.ms), min_ms: Math.min(...c.ms), ms: c.ms });
    if (browser.errors.length) throw new Error(`page errors:\n${browser.errors.join("\n")}`);
    const foreign = browser.requests.filter((u) => !u.startsWith(server.origin) && !/^(blob|data|about):/.test(u));
    if (foreign.length) throw new Error(`the page asked for other origins: ${[...new Set(foreign)].join(', ')}`);
  } finally {
    await browser.close();
    await server.close();
  }
  result.load.end = load();
  result.sentences = Object.fromEntries(Object.entries(sentences).map(([n, s]) => [n, s.text.split(' ').slice(0, 8).join(' ') + ' ...']));
  console.error(`text: load average at end (1/5/15 min): ${result.load.end}`);

  process.stdout.write(markdown(result));
  if (o.json) await writeFile(o.json, JSON.stringify(result, null, 1) + '\n');
}

function markdown(r) {
  const ua = Object.values(r.pages)[0]?.userAgent ?? '';
  const chromium = /Chrome\/([\d.]+)/.exec(ua)?.[1] ?? '?';
  let s = `\nall-MiniLM-L6-v2, one sentence per call, ms: median / p95 of ${r.args.reps} (Chromium ${chromium}, headless; load average ${r.load.start} -> ${r.load.end})\n\n`;
  const threads = [...new Set(r.rows.map((x) => x.threads))];
  s += `| engine | variant | tokens | ${threads.map((t) => `${t} thread${t > 1 ? 's' : ''}`).join(' | ')} |${threads.length > 1 ? ` x${threads.at(-1)} speed-up (medians) |` : ''}\n`;
  s += `|---|---|---|${threads.map(() => '---|').join('')}${threads.length > 1 ? '---|' : ''}\n`;
  const keys = [...new Set(r.rows.map((x) => `${x.engine}|${x.variant}|${x.tokens}`))];
  for (const k of keys) {
    const [engine, variant, tokens] = k.split('|');
    const row = threads.map((t) => r.rows.find((x) => x.engine === engine && x.variant === variant && x.tokens === +tokens && x.threads === t));
    const cells = row.map((x) => (x ? `${x.median_ms.toFixed(2)} / ${x.p95_ms.toFixed(2)}` : ''));
    const speed = threads.length > 1 && row[0] && row.at(-1) ? ` ${(row[0].median_ms / row.at(-1).median_ms).toFixed(2)}x |` : threads.length > 1 ? ' |' : '';
    s += `| ${engine} | ${variant} | ${tokens} | ${cells.join(' | ')} |${speed}\n`;
  }
  return s;
}

main().catch((e) => {
  console.error(`text: ${e.message}`);
  process.exit(1);
});
