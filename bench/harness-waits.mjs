// How the test harness's way of waiting for the page changes the first-prediction figure it reads
// (issue 18, point 6): Playwright's waitForSelector, which first compiles Playwright's injected
// script on the page's thread, against the one small DevTools expression e2e-tests/lib/app.js
// `open()` evaluates now. The figure is the page's own mark `anybit:first-prediction`.
//
//   trunk build --release --offline                      # dist/ (and e2e-tests: npm ci)
//   node bench/harness-waits.mjs [--site dist] [--rounds 8]
//
// Method: per round, one freshly launched headless Chromium per way of waiting (the order
// alternates every round), cold, as the e2e test's cold figure; printed: the median and the
// figures of each.
import { join } from 'node:path';

import { marks, open, ROOT } from '../e2e-tests/lib/app.js';
import { launch } from '../e2e-tests/lib/chromium.js';
import { serve } from '../e2e-tests/lib/server.js';
import { busy, load, median } from './stats.mjs';

const o = { site: join(ROOT, 'dist'), rounds: 8 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) throw new Error(`${k} needs a value`);
  if (k === '--site') o.site = v;
  else if (k === '--rounds') o.rounds = Number(v);
  else throw new Error(`unknown argument ${k} (--site, --rounds)`);
}

const WAYS = {
  // What e2e-tests/lib/app.js did before: the selector engine is injected into the page first.
  waitForSelector: async (page, origin) => {
    await page.goto(`${origin}/index.html`);
    await page.waitForSelector('body[data-state="ready"], body[data-state="error"]', { timeout: 90_000 });
  },
  // What it does now.
  'DevTools expression': (page, origin) => open(page, origin),
};

const start = load();
busy('harness-waits');
const server = await serve(o.site, { isolated: true });
const got = Object.fromEntries(Object.keys(WAYS).map((w) => [w, []]));
try {
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 ? Object.keys(WAYS).reverse() : Object.keys(WAYS);
    for (const way of order) {
      const b = await launch();
      try {
        await WAYS[way](b.page, server.origin);
        got[way].push((await marks(b.page, { paintedWaitMs: 0 }))['first-prediction']);
      } finally {
        await b.close();
      }
    }
  }
} finally {
  await server.close();
}
console.log(`Navigation to the first MNIST prediction, cold, ms (${o.rounds} fresh browsers per way of waiting, alternated; ${o.site}; load average ${start} -> ${load()})\n`);
console.log('| the harness waits with | median | every figure |');
console.log('|---|---|---|');
for (const [way, xs] of Object.entries(got)) console.log(`| ${way} | ${median(xs)} | ${xs.join(' ')} |`);
