// Kernel benchmark runner: loads the wasm builds made by scripts/build-wasm.sh
// (pkg/dist/{scalar,simd,relaxed,threads}/) and runs their benchKernels() export (the Rust routine
// anybit::bench, the same one the native example runs) in Node and in headless Chromium.
//
//   node bench/run.mjs [--hosts node,chromium] [--variants scalar,simd,relaxed,threads]
//                      [--config JSON|@file] [--quick] [--busy] [--threads N] [--tiering] [--json out.json] [--md out.md]
//   node bench/run.mjs --from out.json      (re-renders the tables of a saved run)
//
// --quick: fewer, shorter repetitions and no GEMM-only figures. --busy: the fastest of 30 short
// repetitions instead of the median (for a machine shared with other work).
//
// Each variant measures its own instruction set (scalar build: scalar; simd: simd128; relaxed:
// relaxed; threads: relaxed, the threads build's own, at 1 and N threads). Every report also carries the Dot16 w8a8 SIMD
// baseline measured in the same run, which the "vs" ratios use. Node cannot run the threads build
// (wasm-bindgen-rayon needs Web Workers), so threads run in Chromium only.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { serve } from '../e2e-tests/lib/server.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');

function parseArgs(argv) {
  const o = { hosts: ['node', 'chromium'], variants: ['scalar', 'simd', 'relaxed', 'threads'], config: {}, threads: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--hosts') o.hosts = next().split(',');
    else if (a === '--variants') o.variants = next().split(',');
    else if (a === '--config') o.configArg = next();
    else if (a === '--quick') o.quick = true;
    else if (a === '--busy') o.busy = true;
    else if (a === '--threads') o.threads = Number(next());
    else if (a === '--json') o.json = next();
    else if (a === '--md') o.md = next();
    else if (a === '--from') o.from = next();
    else if (a === '--tiering') o.tiering = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (o.tiering) V8_FLAGS = [];
  return o;
}

// Which Isa and thread counts each build measures; the rest of the config is the user's.
function variantConfig(variant, base, threads) {
  const isas = { scalar: ['scalar'], simd: ['simd128'], relaxed: ['relaxed'], threads: ['relaxed'] }[variant];
  if (!isas) throw new Error(`unknown variant ${variant}`);
  const cfg = { ...base, isas, threads: variant === 'threads' ? [1, threads] : [1] };
  // Without SIMD, Lut and Dot8 are plain-Rust fallbacks 10-100x slower than the other two
  // schemes (seconds per figure at 8 bits); they are tested, not worth timing by default.
  if (variant === 'scalar' && !base.schemes) cfg.schemes = ['dot16', 'bitserial'];
  return cfg;
}

function runNode(variant, config) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...V8_FLAGS.map((f) => `--${f}`), join(HERE, 'node-run.mjs'), variant, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`node ${variant} exited with ${code}`))));
  });
}

async function withChromium(fn) {
  // Imported here: a --hosts node run needs no npm packages (the launcher needs playwright-core).
  const { launch } = await import('../e2e-tests/lib/chromium.js');
  const server = await serve(ROOT);
  const browser = await launch({ args: V8_FLAGS.length ? [`--js-flags=${V8_FLAGS.map((f) => `--${f}`).join(' ')}`] : [] });
  try {
    return await fn(browser.context, server.origin);
  } finally {
    await browser.close();
    await server.close();
  }
}

async function runChromium(context, origin, variant, config, threads) {
  const page = await context.newPage();
  try {
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${origin}/bench/page/index.html`);
    await page.waitForFunction(() => window.benchReady === true);
    const t = variant === 'threads' ? threads : 1;
    const report = await page.evaluate(([v, c, n]) => window.bench(v, c, n), [variant, JSON.stringify(config), t]);
    if (errors.length) throw new Error(errors.join('\n'));
    return JSON.parse(report);
  } finally {
    await page.close();
  }
}

// V8 runs wasm first in its baseline compiler (Liftoff) and swaps in optimized code once a
// function has used its budget; a kernel whose loop runs inside few long calls can stay in
// Liftoff through the warm-up and read 2x slow, at random (seen: 8.8-18 GMAC/s for the same
// kernel over five Node runs, 16-18 with --no-liftoff). The figures are meant as the
// optimized, steady state a long-running page reaches, so the engine compiles optimized code
// up front; --tiering measures with the engine's default tiering instead.
let V8_FLAGS = ['no-liftoff'];

const fmt = (x, d = 1) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(d));
const uniq = (xs) => [...new Set(xs)];

// Per host and shape, a summary: one line per width pair, one column per build (and thread
// count), each cell the fastest scheme there as "GMAC/s scheme (ratio)", GMAC/s including the
// activation packing, ratio = speed over the build's 1-thread Dot16 w8a8 kernel timed in
// alternating repetitions with it. Then, per host and build, the detail: every scheme
// as "with packing / GEMM alone".
function markdown(results) {
  let s = '';
  const col = (r) => `${r.variant}${r.variant === 'threads' ? ` x${r.threads}` : ''}`;
  for (const host of uniq(results.map((r) => r.host))) {
    const hr = results.filter((r) => r.host === host);
    for (const shape of uniq(hr.map((r) => r.shape))) {
      const rows = hr.filter((r) => r.shape === shape);
      const cols = uniq(rows.map(col));
      const { rows: m, depth: k, cols: n } = rows[0];
      s += `\n### ${host}: ${shape} (GEMM ${m} x ${k} x ${n})\n\n`;
      s += 'Fastest scheme per build: GMAC/s incl. activation packing, scheme, (speed over the 1-thread dot16 w8a8 kernel of that build (simd128; scalar in the scalar build), timed in alternating repetitions). "x2 / x1" divides two such ratios.\n\n';
      const multi = cols.filter((c) => c.startsWith('threads x') && c !== 'threads x1');
      const speedCols = cols.includes('threads x1') ? multi.map((c) => `${c.slice(8)} / x1`) : [];
      const head = [...cols, ...speedCols];
      s += `| w | a | ${head.join(' | ')} |\n|---|---|${head.map(() => '---|').join('')}\n`;
      for (const p of uniq(rows.map((r) => `${r.wbits},${r.abits}`))) {
        const [wb, ab] = p.split(',').map(Number);
        const bestOf = (c) => rows
          .filter((r) => col(r) === c && r.wbits === wb && r.abits === ab)
          // By the paired ratio, not raw GMAC/s: raw figures of different rows drift apart.
          .reduce((x, r) => (!x || r.vs_dot16_w8a8 > x.vs_dot16_w8a8 ? r : x), null);
        const cells = cols.map((c) => {
          const best = bestOf(c);
          return best ? `${fmt(best.gmacs)} ${best.scheme}${best.isa === 'relaxed' ? '/relaxed' : ''} (${fmt(best.vs_dot16_w8a8, 2)}x)` : '';
        });
        // Thread scaling of the best scheme at each count (same build, same run).
        const speed = speedCols.map((_, i) => {
          const [one, many] = [bestOf('threads x1'), bestOf(multi[i])];
          return one && many ? `${fmt(many.vs_dot16_w8a8 / one.vs_dot16_w8a8, 2)}x` : '';
        });
        s += `| ${wb} | ${ab} | ${[...cells, ...speed].join(' | ')} |\n`;
      }
    }
    for (const v of uniq(hr.map(col))) {
      const vr = hr.filter((r) => col(r) === v);
      const schemes = uniq(vr.map((r) => `${r.isa} ${r.scheme}`));
      const planes = vr[0]?.dot8Planes;
      s += `\n#### ${host}, ${v} build: every scheme, GMAC/s with packing / GEMM alone${planes ? ` (Dot8: 8-bit activations in ${planes} plane(s))` : ''}\n\n`;
      s += `| shape | w | a | ${schemes.join(' | ')} |\n|---|---|---|${schemes.map(() => '---|').join('')}\n`;
      for (const key of uniq(vr.map((r) => `${r.shape}|${r.wbits}|${r.abits}`))) {
        const [shape, wb, ab] = key.split('|');
        const cells = schemes.map((sc) => {
          const r = vr.find((x) => `${x.isa} ${x.scheme}` === sc && x.shape === shape && x.wbits === +wb && x.abits === +ab);
          return r ? `${fmt(r.gmacs)} / ${fmt(r.gmacs_gemm)}` : '';
        });
        s += `| ${shape} | ${wb} | ${ab} | ${cells.join(' | ')} |\n`;
      }
    }
  }
  return s;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.from) {
    // Re-render the tables of a saved --json run.
    process.stdout.write(markdown(JSON.parse(await readFile(o.from, 'utf8')).results));
    return;
  }
  if (o.configArg) o.config = JSON.parse(o.configArg.startsWith('@') ? await readFile(o.configArg.slice(1), 'utf8') : o.configArg);
  if (o.quick) o.config = { reps: 3, rep_ms: 3, gemm_only: false, ...o.config };
  // On a machine shared with other work: the fastest of many short repetitions, since
  // interference only ever adds time (figures are then best cases, not typical ones).
  if (o.busy) o.config = { reps: 30, rep_ms: 1, stat: 'min', ...o.config };
  const threads = o.threads || Math.max(2, availableParallelism());
  const results = [];
  const missing = o.variants.filter((v) => !existsSync(join(ROOT, 'pkg', 'dist', v, 'anybit_bg.wasm')));
  if (missing.length) throw new Error(`missing builds ${missing.join(', ')}: run scripts/build-wasm.sh ${missing.join(' ')}`);
  const add = (host, variant, report) => {
    for (const r of report.rows) results.push({ host, variant, dot8Planes: report.dot8_one_plane_at_8_bits ? 1 : 2, ...r });
    console.error(`bench: ${host} ${variant}: ${report.rows.length} figures (Isa in build: ${report.available.join(', ')}; ` +
      `Dot8 takes 8-bit activations in ${report.dot8_one_plane_at_8_bits ? 'one plane' : 'two planes'})`);
  };
  if (o.hosts.includes('node')) {
    // Node < 22 has only a pre-standard relaxed SIMD whose i8 dot product is wrong (the
    // benchmark's self-check catches it), so the relaxed build runs in Chromium only there.
    const nodeMajor = Number(process.versions.node.split('.')[0]);
    for (const v of o.variants.filter((v) => v !== 'threads')) {
      if (v === 'relaxed' && nodeMajor < 22) {
        console.error(`bench: node ${process.version}: relaxed build skipped (needs Node >= 22)`);
        continue;
      }
      add('node', v, await runNode(v, variantConfig(v, o.config, threads)));
    }
  }
  if (o.hosts.includes('chromium')) {
    await withChromium(async (context, origin) => {
      const version = context.browser()?.version() ?? '';
      for (const v of o.variants) add(`chromium${version ? ' ' + version : ''}`, v, await runChromium(context, origin, v, variantConfig(v, o.config, threads), threads));
    });
  }
  const md = markdown(results);
  process.stdout.write(md);
  if (o.json) await writeFile(o.json, JSON.stringify({ date: new Date().toISOString(), results }, null, 1));
  if (o.md) await writeFile(o.md, md);
}

main().catch((e) => {
  console.error(`bench: ${e.stack ?? e}`);
  process.exit(1);
});
