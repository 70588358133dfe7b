// Counterfactual-detection benchmark: milliseconds per dev sentence for a counterfactual model
// (default models/counterfactual.anybit: MiniLM-L6 encoder + a 7-output token head) in headless
// Chromium, per width and thread count, and the CSV scorer's throughput (sentences per second
// through session.detectMany, as web/app/scorer.js calls it).
//
//   bash scripts/build-pkg.sh && (cd e2e-tests && npm ci)    # pkg/wasm, playwright-core
//   node bench/cf.mjs [--model FILE] [--csv FILE] [--widths 8,4,2] [--threads 1,2] [--block 20]
//                     [--warmup 10] [--many-widths 8] [--many-reps 3] [--limit N] [--tiering] [--json out.json]
//
// Sentences: every row of --csv (default e2e-tests/fixtures/cf-200.csv: 200 dev-split sentences,
// 100 counterfactual and 100 not, read with the scorer's own CSV reader, web/app/csv.js); --limit N
// takes the first N only (a quick try, not a figure to report).
//
// Method: the page (bench/page/cf-bench.mjs) imports /pkg/index.js and starts one session per
// --threads entry (1: the relaxed-SIMD build, else SIMD; 2: the threads build with a pool of 2; t1:
// the threads build, pool of 2, set to 1 thread, as the app runs on an isolated page), each
// loading the whole model file once (served from memory: the file read at start, so a trainer
// rewriting it mid-run changes nothing). Every setting (width x threads) is warmed up on --warmup
// sentences; then the sentences are cut into blocks of --block and each block is run by every
// setting in turn, the order rotated every block, so drift on this shared 2-core machine falls on
// all settings alike and every setting times every sentence once. A block starts with setWidth
// (timed apart, never in a sentence's figure). Per sentence two times: the caller's (performance.now
// around `await session.detect(text)` on the page: the message to the worker and back included) and
// the engine's (`ms` of the result: tokenizing, the pass, decoding). Then --many-reps times, per
// thread count and --many-widths width, all sentences in one `session.detectMany(texts,
// {onProgress})`, rotated the same way: throughput = sentences / wall seconds of the call.
// Checks: at 8 bits every result must equal the CLI's predictions
// (e2e-tests/fixtures/cf-200.expected.csv, when its .sha256 names this model: label and offsets
// exactly, probability within 1e-4), and at every width the thread counts and detect/detectMany
// must agree, so a fast wrong run reports no figure. The run fails if the page asks another origin.
// Reported: median and p95 (nearest rank) over the sentences; --json keeps every timing.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../e2e-tests/lib/server.js';
import { parseRows, readSentences } from '../web/app/csv.js';
import { busy, load, median, p95 } from './stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const MODEL_URL = '/bench/cf-model.anybit';

function parseArgs(argv) {
  const o = {
    model: join(ROOT, 'models', 'counterfactual.anybit'),
    csv: join(ROOT, 'e2e-tests', 'fixtures', 'cf-200.csv'),
    widths: [8, 4, 2], threads: ['1', '2'], block: 20, warmup: 10, manyWidths: [8], manyReps: 3,
  };
  const list = (s) => s.split(',').filter(Boolean).map(Number);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') o.model = resolve(next());
    else if (a === '--csv') o.csv = resolve(next());
    else if (a === '--widths') o.widths = list(next());
    else if (a === '--threads') o.threads = next().split(',').filter(Boolean);
    else if (a === '--block') o.block = Number(next());
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--many-widths') o.manyWidths = list(next());
    else if (a === '--many-reps') o.manyReps = Number(next());
    else if (a === '--json') o.json = next();
    else if (a === '--limit') o.limit = Number(next());
    else if (a === '--tiering') o.tiering = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.block >= 1)) throw new Error('--block: at least 1');
  if (o.threads.some((t) => !/^t?[1-9]$/.test(t))) throw new Error('--threads: each 1..9, or t1..t9 (the threads build with a pool of 2 run on that many)');
  if (o.manyWidths.some((w) => !o.widths.includes(w))) throw new Error('--many-widths: each one of --widths');
  return o;
}

function need(path, how) {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${how}`);
}

// What else ran at the start (the load average lags): the busiest processes but this one.
function busiest() {
  try {
    return execFileSync('ps', ['-eo', 'pid,ni,stat,pcpu,etime,comm', '--sort=-pcpu'], { encoding: 'utf8' })
      .split('\n').slice(0, 6).map((l) => l.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

// The CLI's predictions (cf-expected.sh) for this model, or null with the reason.
async function cliPredictions(csvPath, digest) {
  const expected = csvPath.replace(/\.csv$/, '.expected.csv');
  const sha = expected.replace(/\.csv$/, '.sha256');
  if (!existsSync(expected) || !existsSync(sha)) return { rows: null, why: `${relative(ROOT, expected)} is absent` };
  if ((await readFile(sha, 'utf8')).trim() !== digest) return { rows: null, why: `${relative(ROOT, expected)} was made with another model file` };
  const { items } = readSentences(await readFile(expected, 'utf8'));
  // readSentences keeps only id and sentence: the other columns from a plain parse.
  const rows = parseRows(await readFile(expected, 'utf8')).filter((r) => r.fields.length > 1);
  const header = rows[0].fields;
  const col = (name) => header.indexOf(name);
  const out = new Map();
  for (const { fields } of rows.slice(1)) {
    out.set(fields[col('sentenceID')], {
      label: Number(fields[col('pred_label')]),
      probability: Number(fields[col('probability')]),
      antecedent: [Number(fields[col('antecedent_startid')]), Number(fields[col('antecedent_endid')])],
      consequent: [Number(fields[col('consequent_startid')]), Number(fields[col('consequent_endid')])],
    });
  }
  if (out.size !== items.length) throw new Error(`${expected}: ${out.size} rows by sentenceID, ${items.length} sentences`);
  return { rows: out, why: null };
}

const same = (a, b, tol = 1e-4) => a.counterfactual === b.counterfactual && Math.abs(a.probability - b.probability) <= tol &&
  a.antecedent[0] === b.antecedent[0] && a.antecedent[1] === b.antecedent[1] && a.consequent[0] === b.consequent[0] && a.consequent[1] === b.consequent[1];

async function main() {
  const o = parseArgs(process.argv.slice(2));
  need(join(ROOT, 'pkg', 'wasm', 'threads', 'anybit_bg.wasm'), 'run bash scripts/build-pkg.sh');
  need(o.model, 'train and export it (scripts/train-cf.sh) or name one with --model');
  need(o.csv, 'name a CSV with a sentence column with --csv');

  const loadStart = load();
  console.error(`cf: load average at start (1/5/15 min): ${loadStart} on ${availableParallelism()} cores`);
  busy('cf');
  const processes = busiest();

  const modelBytes = await readFile(o.model);
  const digest = createHash('sha256').update(modelBytes).digest('hex');
  const all = readSentences(await readFile(o.csv, 'utf8')).items;
  const items = o.limit ? all.slice(0, o.limit) : all;
  if (!items.length) throw new Error(`${o.csv}: no sentences`);
  const texts = items.map((it) => it.sentence);
  const cli = await cliPredictions(o.csv, digest);
  console.error(`cf: ${texts.length} sentences from ${relative(ROOT, o.csv)}; model ${relative(ROOT, o.model)} (${modelBytes.length} bytes, sha256 ${digest.slice(0, 12)}); ${cli.rows ? 'checked against the CLI at 8 bits' : `NOT checked against the CLI: ${cli.why}`}`);

  const { launch } = await import('../e2e-tests/lib/chromium.js');
  const server = await serve(ROOT, { overrides: { [MODEL_URL]: modelBytes } });
  // As bench/run.mjs: optimized wasm code from the start, so warm-up cannot end in baseline code.
  const browser = await launch({ args: o.tiering ? [] : ['--js-flags=--no-liftoff'] });
  const result = {
    date: new Date().toISOString(), args: { ...o, model: relative(ROOT, o.model), csv: relative(ROOT, o.csv) },
    model: { bytes: modelBytes.length, sha256: digest }, load: { start: loadStart }, processes, sessions: {},
    checks: { cli: cli.rows ? 'matched' : cli.why, mismatches: [] }, setWidthMs: [], rows: [], many: [],
  };
  try {
    const page = browser.page;
    await page.goto(`${server.origin}/bench/page/cf-bench.html`);
    await page.waitForFunction(() => window.cfBenchReady === true);
    result.page = await page.evaluate(() => window.cfBench.facts());
    console.error(`cf: page: crossOriginIsolated ${result.page.crossOriginIsolated}, ${result.page.visibility}, hardwareConcurrency ${result.page.hardwareConcurrency}`);
    if (o.threads.some((t) => t !== '1') && !result.page.crossOriginIsolated) throw new Error('the page is not cross-origin isolated');
    for (const spec of o.threads) {
      const threads = Number(spec.replace('t', ''));
      const pool = spec.startsWith('t') ? Math.max(2, threads) : undefined;
      const info = await page.evaluate((a) => window.cfBench.load(a), { key: `x${spec}`, threads, pool, url: MODEL_URL });
      result.sessions[spec] = info;
      console.error(`cf: session ${spec}: build ${info.build.variant} (${info.build.isa}, pool of ${info.build.threadCount}, running ${info.threads}), widths ${info.widths.join(',')}, loaded in ${info.loadMs.toFixed(0)} ms`);
      if (info.threads !== threads) throw new Error(`session ${spec} runs ${info.threads} thread(s)`);
      for (const w of o.widths) if (!info.widths.includes(w)) throw new Error(`the model has no width ${w} (has ${info.widths.join(',')})`);
    }
    const settings = o.threads.flatMap((spec) => o.widths.map((width) => ({ spec, threads: Number(spec.replace('t', '')), width, key: `x${spec}` })));
    const current = {}; // key -> width the session is at
    const setWidth = async (s) => {
      if (current[s.key] === s.width) return;
      const ms = await page.evaluate(([k, w]) => window.cfBench.setWidth(k, w), [s.key, s.width]);
      result.setWidthMs.push({ session: s.spec, width: s.width, ms });
      current[s.key] = s.width;
    };

    for (const s of settings) {
      await setWidth(s);
      await page.evaluate(([k, t]) => window.cfBench.detectEach(k, t), [s.key, texts.slice(0, o.warmup)]);
    }
    const cells = settings.map((s) => ({ ...s, results: new Array(texts.length) }));
    const blocks = Math.ceil(texts.length / o.block);
    for (let b = 0; b < blocks; b++) {
      const first = b * o.block;
      const block = texts.slice(first, first + o.block);
      for (let i = 0; i < cells.length; i++) {
        const c = cells[(i + b) % cells.length];
        await setWidth(c);
        const got = await page.evaluate(([k, t]) => window.cfBench.detectEach(k, t), [c.key, block]);
        got.forEach((r, j) => { c.results[first + j] = r; });
      }
      console.error(`cf: block ${b + 1}/${blocks} done (load ${load()})`);
    }

    // detectMany, the CSV scorer's call: whole runs, rotated over the settings.
    const manyCells = o.threads.flatMap((spec) => o.manyWidths.map((width) => ({ spec, threads: Number(spec.replace('t', '')), width, key: `x${spec}`, runs: [] })));
    for (let r = 0; r < o.manyReps; r++) {
      for (let i = 0; i < manyCells.length; i++) {
        const c = manyCells[(i + r) % manyCells.length];
        await setWidth(c);
        const got = await page.evaluate(([k, t]) => window.cfBench.detectMany(k, t), [c.key, texts]);
        c.runs.push(got);
        console.error(`cf: detectMany ${c.spec} ${c.width} bits: ${texts.length} sentences in ${(got.ms / 1000).toFixed(2)} s`);
      }
    }

    // Checks: the CLI at 8 bits; thread counts and detectMany agree with each other at every width.
    const mismatch = (what, i, a, b) => result.checks.mismatches.push(`${what}: sentence ${items[i].id}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    for (const c of cells) {
      c.results.forEach((r, i) => {
        if (r.width !== c.width) mismatch(`${c.spec} ${c.width} bits ran at ${r.width}`, i, r.width, c.width);
        if (cli.rows && c.width === 8) {
          const want = cli.rows.get(items[i].id);
          if (!same(r, { ...want, counterfactual: want.label === 1 })) mismatch(`${c.spec} 8 bits vs the CLI`, i, r, want);
        }
        const base = cells.find((d) => d.width === c.width);
        if (base !== c && !same(r, base.results[i])) mismatch(`${c.spec} vs ${base.spec} at ${c.width} bits`, i, r, base.results[i]);
      });
    }
    for (const m of manyCells) {
      const base = cells.find((d) => d.width === m.width && d.spec === m.spec);
      for (const run of m.runs) run.results.forEach((r, i) => { if (!same(r, base.results[i])) mismatch(`detectMany ${m.spec} ${m.width} bits vs detect`, i, r, base.results[i]); });
    }
    if (result.checks.mismatches.length) throw new Error(`${result.checks.mismatches.length} results differ:\n${result.checks.mismatches.slice(0, 10).join('\n')}`);

    for (const c of cells) {
      const caller = c.results.map((r) => r.caller);
      const engine = c.results.map((r) => r.ms);
      result.rows.push({
        width: c.width, threads: c.threads, session: c.spec, build: result.sessions[c.spec].build.variant, n: caller.length,
        caller_median_ms: median(caller), caller_p95_ms: p95(caller), engine_median_ms: median(engine), engine_p95_ms: p95(engine),
        // What the trip to the worker adds, per sentence.
        overhead_median_ms: median(c.results.map((r) => r.caller - r.ms)),
        results: c.results,
      });
    }
    for (const m of manyCells) {
      const secs = m.runs.map((r) => r.ms / 1000);
      result.many.push({
        width: m.width, threads: m.threads, session: m.spec, build: result.sessions[m.spec].build.variant, n: texts.length, seconds: secs,
        sentences_per_s: texts.length / median(secs), engine_ms_sum: m.runs.map((r) => r.results.reduce((a, x) => a + x.ms, 0)),
        progress_events: m.runs[0].progress,
      });
    }
    const tokens = cells[0].results.map((r) => r.tokens);
    result.tokens = { median: median(tokens), p95: p95(tokens), max: Math.max(...tokens), truncated: cells[0].results.filter((r) => r.truncated).length };
    result.checks.cliCompared = cli.rows ? cells.filter((c) => c.width === 8).length * texts.length : 0;
    if (browser.errors.length) throw new Error(`page errors:\n${browser.errors.join('\n')}`);
    const foreign = browser.requests.filter((u) => !u.startsWith(server.origin) && !/^(blob|data|about):/.test(u));
    if (foreign.length) throw new Error(`the page asked for other origins: ${[...new Set(foreign)].join(', ')}`);
  } finally {
    await browser.close();
    await server.close();
  }
  result.load.end = load();
  console.error(`cf: load average at end (1/5/15 min): ${result.load.end}`);
  process.stdout.write(markdown(result));
  if (o.json) await writeFile(o.json, JSON.stringify(result, null, 1) + '\n');
}

function markdown(r) {
  const chromium = /Chrome\/([\d.]+)/.exec(r.page?.userAgent ?? '')?.[1] ?? '?';
  const f = (x) => x.toFixed(1);
  const build = (x) => (x.session.startsWith('t') ? `${x.build} (pool of ${r.sessions[x.session].build.threadCount})` : x.build);
  let s = `\n${r.args.model} on ${r.rows[0].n} sentences of ${r.args.csv} (tokens median ${r.tokens.median}, p95 ${r.tokens.p95}, max ${r.tokens.max}), `;
  s += `Chromium ${chromium} headless, load average ${r.load.start} -> ${r.load.end}; CLI check at 8 bits: ${r.checks.cli}\n\n`;
  s += 'ms per sentence, median / p95: caller (session.detect as the page awaits it) and engine (the result\'s ms)\n\n';
  s += '| bits | threads | build | caller | engine | caller - engine (median) |\n|---|---|---|---|---|---|\n';
  for (const x of r.rows) {
    s += `| ${x.width} | ${x.threads} | ${build(x)} | ${f(x.caller_median_ms)} / ${f(x.caller_p95_ms)} | ${f(x.engine_median_ms)} / ${f(x.engine_p95_ms)} | ${f(x.overhead_median_ms)} |\n`;
  }
  s += '\ndetectMany (the CSV scorer), all sentences in one call\n\n| bits | threads | build | seconds per run | sentences/s (median run) |\n|---|---|---|---|---|\n';
  for (const m of r.many) s += `| ${m.width} | ${m.threads} | ${build(m)} | ${m.seconds.map((x) => x.toFixed(2)).join(', ')} | ${m.sentences_per_s.toFixed(1)} |\n`;
  const sw = r.setWidthMs.map((x) => x.ms);
  if (sw.length) s += `\nsetWidth (between blocks, not in any figure): median ${f(median(sw))} ms over ${sw.length}\n`;
  return s;
}

main().catch((e) => {
  console.error(`cf: ${e.message}`);
  process.exit(1);
});
