// Per-layer time of one model pass on one thread and on the threads build's pool, in headless
// Chromium: which layers a second thread speeds up, and by how much (issue 18, point 4).
//
//   bash scripts/build-wasm.sh threads && (cd e2e-tests && npm ci)
//   node bench/layers-threads.mjs [--model FILE] [--width 8] [--threads 2] [--passes 200]
//
// Method: a worker loads pkg/dist/threads/ with a pool of --threads, loads the model at --width and
// calls `Session.profile` (each node timed with performance.now() inside the pass; 5 us steps in a
// cross-origin isolated page) --passes times per thread count, alternating one thread and the pool
// pass by pass, so drift on this shared machine falls on both. Printed: every layer's fastest time
// per count and their ratio (interference only ever adds time), the sum of those minima, and the
// median pass (sum of one pass's layer times). Layers under the clock's step show as 0. Default
// model: ResNet-20 from scripts/peer-models.sh, else the shipped MNIST model.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { ROOT } from '../e2e-tests/lib/app.js';
import { launch } from '../e2e-tests/lib/chromium.js';
import { serve } from '../e2e-tests/lib/server.js';
import { busy, load, median } from './stats.mjs';

const resnet = join(process.env.ANYBIT_CACHE ?? join(homedir(), '.cache', 'anybit'), 'peers', 'resnet20.anybit');
const o = { model: existsSync(resnet) ? resnet : join(ROOT, 'models', 'mnist.anybit'), width: 8, threads: 2, passes: 200 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) throw new Error(`${k} needs a value`);
  if (k === '--model') o.model = v;
  else if (k === '--width') o.width = Number(v);
  else if (k === '--threads') o.threads = Number(v);
  else if (k === '--passes') o.passes = Number(v);
  else throw new Error(`unknown argument ${k} (--model, --width, --threads, --passes)`);
}
if (!existsSync(join(ROOT, 'pkg', 'dist', 'threads', 'anybit_bg.wasm'))) throw new Error('pkg/dist/threads missing: run "bash scripts/build-wasm.sh threads" first');
if (!(o.threads >= 2 && o.passes >= 1)) throw new Error('--threads must be at least 2 and --passes at least 1');

const start = load();
busy('layers-threads');
const server = await serve(ROOT, { isolated: true, overrides: { '/bench-model.anybit': await readFile(o.model) } });
const browser = await launch();
let r;
try {
  await browser.page.goto(`${server.origin}/bench/page/layers-threads.html`);
  await browser.page.waitForSelector('body[data-ready="yes"]', { state: 'attached' });
  r = await browser.page.evaluate((args) => window.profileLayers(args), { model: '/bench-model.anybit', width: o.width, passes: o.passes, threads: o.threads });
} finally {
  await browser.close();
  await server.close();
}
if (!r.ok) throw new Error(`the page failed: ${r.error}`);

const [one, many] = r.layers.map((l) => new Map(l));
const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
console.log(`${o.model} at ${o.width} bits: fastest time per layer over ${o.passes} passes, 1 and ${o.threads} threads (ms); load average ${start} -> ${load()}\n`);
console.log(`| layer | 1 thread | ${o.threads} threads | speed-up |`);
console.log('|---|---|---|---|');
let [s1, s2] = [0, 0];
for (const [name, t1] of one) {
  const t2 = many.get(name);
  s1 += t1;
  s2 += t2;
  if (t1 > 0 || t2 > 0) console.log(`| ${name} | ${t1.toFixed(4)} | ${t2.toFixed(4)} | ${ratio(t1, t2)} |`);
}
console.log(`| sum of the minima | ${s1.toFixed(3)} | ${s2.toFixed(3)} | ${ratio(s1, s2)} |`);
const [p1, p2] = r.pass.map(median);
console.log(`| median pass | ${p1.toFixed(3)} | ${p2.toFixed(3)} | ${ratio(p1, p2)} |`);
