// The one Chromium launcher of the page tests (e2e-tests/), the npm package's tests (pkg-tests/)
// and the benchmark runners (bench/): Debian's Chromium driven by playwright-core, which is pinned
// in e2e-tests/package.json only; Node resolves it from this file's location, so the other two
// import this module by relative path. Each launch gets a fresh profile and no background traffic
// of Chromium's own: the machine's network is closed, and every request seen comes from the page.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Returns {context, page, requests, logs, errors, close}: `requests` lists every URL asked for,
 * `logs` the page's console messages other than errors, `errors` its console errors and uncaught
 * exceptions. `args`: more Chromium flags (bench/run.mjs: V8's --js-flags).
 */
export async function launch({ args = [] } = {}) {
  const profile = await mkdtemp(join(tmpdir(), 'anybit-chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, ...args],
    // A desktop window for every run, so screenshots and layouts compare between runs
    // (e2e-tests/tests/app.test.js returns to it after its phone-sized check).
    viewport: { width: 1100, height: 900 },
  });
  const requests = [];
  const logs = [];
  const errors = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  // Dedicated workers' requests (the wasm builds, the model) are reported through the page.
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => (m.type() === 'error' ? errors : logs).push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  return {
    context,
    page,
    requests,
    logs,
    errors,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
