// Where one anybit setting's time goes as the page sees it: a sampling CPU profile (Chrome
// DevTools protocol, 20 us) of `runs` timed runs of one workload in bench/page/models-bench.html,
// self time per function, JS and wasm alike (the output array's allocation shows as the glue's
// `__wbg_new_from_slice`).
//
//   bash scripts/peer-models.sh && bash scripts/build-pkg.sh && (cd e2e-tests && npm ci)
//   node bench/page-profile.mjs [--workload conv3x3] [--width 1] [--engine anybit-page] [--runs 3000]
//
// Prints the median page and engine time without and then with the profiler (sampling adds to
// both), and the 30 functions with the most self time.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { ROOT } from '../e2e-tests/lib/app.js';
import { launch } from '../e2e-tests/lib/chromium.js';
import { serve } from '../e2e-tests/lib/server.js';

const o = { workload: 'conv3x3', width: '1', engine: 'anybit-page', runs: 3000 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) throw new Error(`${k} needs a value`);
  if (k === '--workload') o.workload = v;
  else if (k === '--width') o.width = v;
  else if (k === '--engine') o.engine = v;
  else if (k === '--runs') o.runs = Number(v);
  else throw new Error(`unknown argument ${k} (--workload, --width, --engine, --runs)`);
}
if (!['anybit', 'anybit-page', 'anybit-out'].includes(o.engine)) throw new Error('--engine: anybit, anybit-page or anybit-out');
const dir = join(process.env.ANYBIT_CACHE ?? join(homedir(), '.cache', 'anybit'), 'peers');
const url = `/peers/${o.workload}/model.anybit`;
// The shipped models are the MNIST and Fashion workloads' (as bench/models.mjs has them).
const shipped = { mnist: 'mnist.anybit', fashion: 'fashion-mnist.anybit' }[o.workload];
const overrides = { [url]: await readFile(shipped ? join(ROOT, 'models', shipped) : join(dir, `${o.workload}.anybit`)) };
const ref = JSON.parse(await readFile(join(dir, o.workload, 'reference.json'), 'utf8'));
const graph = JSON.parse(await readFile(join(dir, o.workload, 'graph.json'), 'utf8'));

const server = await serve(ROOT, { overrides });
const browser = await launch({ args: ['--js-flags=--no-liftoff'] });
try {
  const { page } = browser;
  await page.goto(`${server.origin}/bench/page/models-bench.html?threads=1`);
  await page.waitForFunction(() => window.modelsBenchReady === true);
  await page.evaluate((a) => window.modelsBench.load(a), { workload: o.workload, engine: o.engine, variant: o.width, threads: 1, files: { [o.width]: url }, shape: graph.input.shape });
  await page.evaluate(([w, x]) => window.modelsBench.setInput(w, x), [o.workload, ref.inputs[0]]);
  const key = `${o.workload}/${o.engine}/${o.width}`;
  // Median page and engine ms of n runs, timed in the page.
  const runs = (n) => page.evaluate(async ([k, n]) => {
    const t = [];
    for (let i = 0; i < n; i++) t.push(await window.modelsBench.time(k));
    const mid = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
    return [mid(t.map((r) => r.ms)), mid(t.map((r) => r.engineMs))];
  }, [key, n]);
  const f = ([p, e]) => `page ${p.toFixed(3)} ms, engine ${e.toFixed(3)} ms`;
  console.log(`${key}: ${f(await runs(300))}`);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 20 });
  await cdp.send('Profiler.start');
  console.log(`profiled, ${o.runs} runs: ${f(await runs(o.runs))}`);
  const { profile } = await cdp.send('Profiler.stop');
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const { functionName, url: u, lineNumber } = nodes.get(id).callFrame;
    const name = `${functionName || '(anonymous)'} ${u.split('/').pop()}:${lineNumber}`;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  });
  for (const [name, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${(100 * t / total).toFixed(1).padStart(5)}%  ${name.slice(0, 160)}`);
} finally {
  await browser.close();
  await server.close();
}
