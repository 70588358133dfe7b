// Navigation to the first prediction of the web app (issue 18, point 6), cold and warm, for one or
// more built sites alternated: a before and an after of a start-up change in one run.
//
//   trunk build --release --offline                      # dist/ (and e2e-tests: npm ci)
//   node bench/first-prediction.mjs [--sites dist[,DIR...]] [--rounds 6] [--per 2] [--launch-settle MS]
//
// Method: each site (a `trunk build` output directory) is served cross-origin isolated, as the e2e
// tests serve dist/. Per round and site, --per times: a freshly launched headless Chromium with a
// fresh profile opens the page (cold: nothing cached, nothing compiled), waits for the first
// prediction, then opens it again in the same browser (warm: a returning visitor). The figure is
// the page's own mark `anybit:first-prediction` (ms since navigation start), the one the e2e test
// prints; beside it `anybit:first-prediction-painted` (the end of the frame that paints it; '-'
// for a site built before that mark) and the runtime-ready mark. Sites take turns every round, so drift on
// this shared machine falls on all alike. Printed: per site, the median and range of each.
// --launch-settle MS waits that long after each launch before the cold navigation: a first visit
// in a browser that has finished starting, where by default the page loads while Chromium's own
// processes still start on the same cores (as in the e2e test's cold figure).
import { join } from 'node:path';

import { marks, open, ROOT } from '../e2e-tests/lib/app.js';
import { launch } from '../e2e-tests/lib/chromium.js';
import { serve } from '../e2e-tests/lib/server.js';
import { busy, load, median } from './stats.mjs';

const o = { sites: ['dist'], rounds: 6, per: 2, launchSettle: 0 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) throw new Error(`${k} needs a value`);
  if (k === '--sites') o.sites = v.split(',');
  else if (k === '--rounds') o.rounds = Number(v);
  else if (k === '--per') o.per = Number(v);
  else if (k === '--launch-settle') o.launchSettle = Number(v);
  else throw new Error(`unknown argument ${k} (--sites, --rounds, --per, --launch-settle)`);
}
if (!(o.rounds >= 1 && o.per >= 1)) throw new Error('--rounds and --per must be at least 1');
if (!(o.launchSettle >= 0)) throw new Error('--launch-settle must be a number of ms, 0 or more');

// After each navigation, every site waits alike before its marks are read and the next
// navigation starts (the painted mark comes a frame after the prediction; a site built before it
// has none, and waiting for it only there would give its warm start a quieter machine).
const SETTLE_MS = 1000;

const start = load();
busy('first-prediction');
const sites = [];
for (const s of o.sites) sites.push({ name: s, server: await serve(s.startsWith('/') ? s : join(ROOT, s), { isolated: true }), cold: [], warm: [], readyCold: [], readyWarm: [], paintedCold: [], paintedWarm: [] });
try {
  for (let r = 0; r < o.rounds; r++) {
    for (const site of sites) {
      for (let i = 0; i < o.per; i++) {
        const b = await launch();
        try {
          if (o.launchSettle > 0) await b.page.waitForTimeout(o.launchSettle);
          await open(b.page, site.server.origin);
          await b.page.waitForTimeout(SETTLE_MS);
          const cold = await marks(b.page, { paintedWaitMs: 0 });
          await open(b.page, site.server.origin);
          await b.page.waitForTimeout(SETTLE_MS);
          const warm = await marks(b.page, { paintedWaitMs: 0 });
          if (!cold['first-prediction'] || !warm['first-prediction']) throw new Error(`${site.name}: no first prediction (errors: ${b.errors.join('; ')})`);
          site.cold.push(cold['first-prediction']);
          site.warm.push(warm['first-prediction']);
          site.readyCold.push(cold['runtime-ready']);
          site.readyWarm.push(warm['runtime-ready']);
          if (cold['first-prediction-painted']) site.paintedCold.push(cold['first-prediction-painted']);
          if (warm['first-prediction-painted']) site.paintedWarm.push(warm['first-prediction-painted']);
        } finally {
          await b.close();
        }
      }
    }
  }
} finally {
  for (const s of sites) await s.server.close();
}

const fmt = (xs) => (xs.length ? `${median(xs)} (${Math.min(...xs)} - ${Math.max(...xs)})` : '-');
const settled = o.launchSettle > 0 ? `, each given ${o.launchSettle} ms to finish starting before the cold navigation` : '';
console.log(`Navigation to the first MNIST prediction, ms: median (range) of ${o.rounds * o.per} fresh browsers per site${settled}, sites alternated; load average ${start} -> ${load()}\n`);
console.log('| site | cold | warm | painted, cold | painted, warm | runtime ready, cold | runtime ready, warm |');
console.log('|---|---|---|---|---|---|---|');
for (const s of sites) console.log(`| ${s.name} | ${fmt(s.cold)} | ${fmt(s.warm)} | ${fmt(s.paintedCold)} | ${fmt(s.paintedWarm)} | ${fmt(s.readyCold)} | ${fmt(s.readyWarm)} |`);
