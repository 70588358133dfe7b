// The counterfactual-detection demo and its CSV scorer in headless Chromium, against the built
// dist/ (web/app/text.js, scorer.js).
//
// Three groups, by what each needs:
// - always: the model is loaded lazily (not before the section is reached, so the first MNIST
//   prediction is not slowed), a missing model gets a clear message, and the scorer's input
//   checks (empty input, over 1 MB, a malformed CSV row named by its line) answer at once;
// - with the crate's tiny fixture (crate/tests/fixtures/tiny-cf.anybit: random weights, so only
//   the mechanics are checked, never the verdicts): progress, the width switch, the 200-row CSV
//   scored and downloaded with offsets that agree with the span texts, Cancel, truncation;
// - with the shipped model (models/counterfactual.anybit, in dist/models/): dev-split sentences
//   (e2e-tests/fixtures/cf-sentences.json) get the right verdicts and the antecedent at the right
//   characters, and the downloaded CSV equals the CLI's predictions (fixtures/cf-200.expected.csv,
//   made by fixtures/cf-expected.sh).
// Groups whose model is absent are skipped with the reason; every group checks that no request
// leaves the origin.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { classify, DIST, marks, open, overflow, prepare, ROOT, SHOTS, shot } from '../lib/app.js';
import { launch } from '../lib/chromium.js';
import { serve } from '../lib/server.js';
import { parseRows, RESULT_COLUMNS } from '../../web/app/csv.js';

const FIXTURES = join(ROOT, 'e2e-tests', 'fixtures');
const CSV_200 = join(FIXTURES, 'cf-200.csv');
const EXPECTED = join(FIXTURES, 'cf-200.expected.csv');
const TINY_EXPECTED = join(FIXTURES, 'cf-200.tiny-expected.csv');
const SHIPPED = join(DIST, 'models', 'counterfactual.anybit');
const TINY = join(ROOT, 'crate', 'tests', 'fixtures', 'tiny-cf.anybit');
const SCORE_TIMEOUT = 300_000;

const noShipped = existsSync(SHIPPED) ? false : `${SHIPPED} is absent (models/counterfactual.anybit not trained yet, or dist/ built before it was): the checks against the real model are skipped`;
// An empty file is one the crate's fixture writer has not finished: absent too.
const noTiny = existsSync(TINY) && statSync(TINY).size > 0 ? false : `${TINY} is absent or empty: the mechanics checks on the tiny fixture are skipped`;

let sentences;
before(async () => {
  await prepare();
  sentences = JSON.parse(await readFile(join(FIXTURES, 'cf-sentences.json'), 'utf8'));
});

/** Waits until the section's model is loaded (or failed): the state and the status line. */
async function sectionReady(page, timeout = 120_000) {
  await page.waitForSelector('#cf-card[data-state="ready"], #cf-card[data-state="error"]', { timeout });
  return page.evaluate(() => ({
    state: document.getElementById('cf-card').dataset.state,
    status: document.getElementById('cf-status').textContent,
    error: document.getElementById('cf-error').hidden ? null : document.getElementById('cf-error').textContent,
    code: document.getElementById('cf-error').dataset.code ?? null,
  }));
}

/** The result on the page once the detection count passes `after` and nothing runs. */
async function readResult(page, after, width) {
  await page.waitForFunction(({ n, w }) => {
    const res = document.getElementById('cf-result');
    return Number(res.dataset.scored ?? 0) > n && document.getElementById('cf-card').getAttribute('aria-busy') === 'false'
      && (w === undefined || res.dataset.width === String(w));
  }, { n: after, w: width }, { timeout: 60_000 });
  return page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    const marksOn = [...document.querySelectorAll('#cf-marked mark')].map((m) => ({
      role: m.dataset.role,
      start: Number(m.dataset.start),
      end: Number(m.dataset.end),
      // The mark's own text, without the role tag drawn after it.
      text: [...m.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join(''),
    }));
    return {
      counterfactual: $('cf-verdict').dataset.counterfactual === 'true',
      probability: Number($('cf-verdict').dataset.probability),
      width: Number($('cf-result').dataset.width),
      verdictText: $('cf-verdict').textContent,
      marked: $('cf-marked').textContent,
      marks: marksOn,
      change: $('cf-change').textContent,
      changed: $('cf-change').dataset.changed ?? null,
      latencyMs: Number($('cf-latency').dataset.ms),
      latencyText: $('cf-latency').textContent,
      truncated: !$('cf-truncated').hidden,
      truncatedText: $('cf-truncated').textContent,
      scored: Number($('cf-result').dataset.scored),
    };
  });
}

const scoredSoFar = (page) => page.evaluate(() => Number(document.getElementById('cf-result').dataset.scored ?? 0));

/** Types `text` into the box and presses Detect; resolves to the result shown. */
async function detect(page, text) {
  const n = await scoredSoFar(page);
  await page.fill('#cf-text', text);
  await page.click('#cf-run');
  return readResult(page, n);
}

/** Picks a width radio; resolves to the re-scored result at that width. */
async function pickWidth(page, width) {
  const n = await scoredSoFar(page);
  await page.check(`#cf-widths input[value="${width}"]`);
  return readResult(page, n, width);
}

/** Waits for the scorer to finish a run or show its alert: {ok, alert, code, line, status}. */
async function scorerOutcome(page, runsBefore, timeout = SCORE_TIMEOUT) {
  await page.waitForFunction((n) => {
    const box = document.getElementById('cf-scorer');
    const done = box.dataset.state === 'done' && Number(document.getElementById('cf-score-result').dataset.runs ?? 0) > n;
    return done || (box.dataset.state !== 'running' && !document.getElementById('cf-score-error').hidden);
  }, runsBefore, { timeout });
  return page.evaluate(() => {
    const err = document.getElementById('cf-score-error');
    return {
      ok: err.hidden,
      alert: err.hidden ? null : err.textContent,
      code: err.dataset.code ?? null,
      line: err.dataset.line ? Number(err.dataset.line) : null,
      status: document.getElementById('cf-score-status').textContent,
    };
  });
}

const runsSoFar = (page) => page.evaluate(() => Number(document.getElementById('cf-score-result').dataset.runs ?? 0));

/**
 * Pastes `text` into the scorer and presses Score. The text is set as a paste would set it (one
 * input event): page.fill types megabytes far too slowly.
 */
async function scoreText(page, text, timeout) {
  const n = await runsSoFar(page);
  await paste(page, text);
  await page.click('#cf-score');
  return scorerOutcome(page, n, timeout);
}

async function paste(page, text) {
  await page.locator('#cf-lines').evaluate((el, t) => {
    el.value = t;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, text);
}

/** Downloads the scorer's CSV: {name, header, rows (objects by column)}. */
async function downloadCsv(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#cf-download')]);
  const text = await readFile(await download.path(), 'utf8');
  const [header, ...rows] = parseRows(text).map((r) => r.fields);
  return { name: download.suggestedFilename(), header, rows: rows.map((f) => Object.fromEntries(header.map((h, i) => [h, f[i]]))) };
}

/** Rows of a CSV file by column name. */
async function csvFile(path) {
  const [header, ...rows] = parseRows(await readFile(path, 'utf8')).map((r) => r.fields);
  return rows.map((f) => Object.fromEntries(header.map((h, i) => [h, f[i]])));
}

/** A downloaded row's spans agree with its sentence: the offsets (characters, end inclusive) cut out the span texts. */
function checkOffsets(row) {
  const chars = [...row.sentence];
  for (const role of ['antecedent', 'consequent']) {
    const s = Number(row[`${role}_startid`]);
    const e = Number(row[`${role}_endid`]);
    if (s === -1) {
      assert.equal(e, -1, `${row.sentenceID} ${role}: -1/-1 together`);
      assert.equal(row[role], '', `${row.sentenceID} ${role}: no text without a span`);
    } else {
      assert.ok(s >= 0 && s <= e && e < chars.length, `${row.sentenceID} ${role} ${s}..${e} inside ${chars.length} characters`);
      assert.equal(chars.slice(s, e + 1).join(''), row[role], `${row.sentenceID} ${role} offsets cut out its text`);
    }
  }
}

/**
 * The downloaded rows equal the CLI's predictions in `expectedCsv` (fixtures/cf-expected.sh), made
 * with the model whose bytes are `modelBytes`: labels, offsets and span texts exactly,
 * probabilities to the 6 decimals both print (1e-4: float32 sums may differ in their order).
 * Predictions of another model are refused with the command that remakes them.
 */
async function assertMatchesCli(rows, expectedCsv, modelBytes, remake) {
  const digest = createHash('sha256').update(modelBytes).digest('hex');
  const made = (await readFile(expectedCsv.replace(/\.csv$/, '.sha256'), 'utf8')).trim();
  assert.equal(made, digest, `${expectedCsv} was made with another model file: run "${remake}"`);
  const expected = await csvFile(expectedCsv);
  assert.equal(rows.length, expected.length, 'as many rows as the CLI wrote');
  const cols = ['sentenceID', 'sentence', 'pred_label', 'antecedent_startid', 'antecedent_endid', 'consequent_startid', 'consequent_endid', 'antecedent', 'consequent'];
  const mismatches = [];
  rows.forEach((row, i) => {
    const want = expected[i];
    const bad = cols.filter((c) => row[c] !== want[c]);
    if (!(Math.abs(Number(row.probability) - Number(want.probability)) <= 1e-4)) bad.push('probability');
    if (bad.length) mismatches.push(`${row.sentenceID}: ${bad.map((c) => `${c} page ${JSON.stringify(row[c])} cli ${JSON.stringify(want[c])}`).join(', ')}`);
  });
  // A mismatch means the wasm runtime and the native one disagree, or the CLI's file predates a
  // change to the runtime (e.g. the span decoder): remake it with an up-to-date build and look again.
  assert.deepEqual(mismatches, [], `rows that differ from the CLI's ${expectedCsv} (if the runtime changed on purpose, run "${remake}" with a fresh build and compare again)`);
}

/** Every request the browser made stayed on the server's origin. */
function assertSameOrigin(browser, server) {
  const seen = [...new Set(browser.requests)];
  const foreign = seen.filter((u) => !u.startsWith(`${server.origin}/`) && !/^(data|blob|about):/.test(u));
  assert.deepEqual(foreign, [], 'requests to other origins');
}

describe('counterfactual demo: lazy loading, a missing model, the scorer\'s input checks', () => {
  let server;
  let browser;
  before(async () => {
    server = await serve(DIST, { isolated: true, overrides: { '/models/garbage-cf.anybit': Buffer.from('this is not a model file at all') } });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('the text model is not fetched before the section is reached; a missing one gets a clear message', async () => {
    const { page } = browser;
    await open(page, server.origin, '?cf=models/absent-cf.anybit');
    const m = await marks(page);
    console.log(`# first MNIST prediction ${m['first-prediction']} ms after navigation, text model not requested yet`);
    assert.ok(m['first-prediction'] > 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!server.requests.some((p) => p.endsWith('absent-cf.anybit')), 'no request for the text model at page start');
    assert.equal(await page.locator('#cf-card').getAttribute('data-state'), 'idle');
    await page.locator('#cf-card').scrollIntoViewIfNeeded();
    const s = await sectionReady(page);
    assert.ok(server.requests.some((p) => p.endsWith('/models/absent-cf.anybit')), 'requested once the section was reached');
    assert.equal(s.state, 'error');
    assert.equal(s.code, 'fetch_failed');
    assert.match(s.error, /The counterfactual model is not available/);
    assert.match(s.error, /not on this server.*models\/counterfactual\.anybit.*digit demos above do not need it/s, s.error);
    assert.ok(await page.locator('#cf-run').isDisabled(), 'Detect stays disabled without a model');
    await page.locator('#cf-card').screenshot({ path: join(SHOTS, 'cf-missing-model.png') });
    // The digit demo is unaffected.
    assert.equal(await classify(page, 1), 2);
  });

  test('empty input, over 1 MB of text and a malformed CSV row get clear messages before any model', async () => {
    const { page } = browser;
    let r = await scoreText(page, '   \n\n ');
    assert.equal(r.ok, false);
    assert.match(r.alert, /Nothing to score: nothing to score: paste sentences, one per line, or choose or drop a CSV file/i);
    // 1 MiB + 1 byte of sentences: refused with the size and what to do.
    const line = 'If I had known about the storm, I would have stayed home.\n';
    const big = line.repeat(Math.ceil((1024 * 1024 + 1) / line.length));
    r = await scoreText(page, big);
    assert.equal(r.code, 'limit_exceeded');
    assert.match(r.alert, /Too much text: that is 1\.\d\d MiB \(1,04\d,\d{3} bytes\) of text; the scorer takes at most 1 MiB \(1,048,576 bytes\) at a time .*Split it/);
    // The same as a file: refused by its size, before it is read.
    let n = await runsSoFar(page);
    await page.setInputFiles('#cf-file', { name: 'big.csv', mimeType: 'text/csv', buffer: Buffer.from(big) });
    r = await scorerOutcome(page, n);
    assert.equal(r.code, 'limit_exceeded');
    assert.match(r.alert, /Too much text: big\.csv is 1\.\d\d MiB .*at most 1 MiB .*Split the file/);
    // Exactly 1 MiB is taken (the scorer starts; the model is missing here, which it then says).
    n = await runsSoFar(page);
    const exact = big.slice(0, 1024 * 1024 - 1) + '\n';
    await paste(page, exact);
    await page.click('#cf-score');
    await page.waitForFunction(() => /could not be loaded/.test(document.getElementById('cf-score-status').textContent), null, { timeout: 30_000 });
    assert.ok(await page.locator('#cf-score-error').isHidden(), 'no size complaint at exactly 1 MiB');
    // A row with a field too many, on line 4 (the quoted line break in row 2 counts).
    r = await scoreText(page, 'sentenceID,sentence\n1,"two\nlines"\n2,If only, I had gone.\n');
    assert.equal(r.code, 'bad_csv');
    assert.equal(r.line, 4);
    assert.match(r.alert, /A row of the CSV is malformed: line 4: the row has 3 fields, the header has 2/);
    r = await scoreText(page, 'sentenceID,sentence\n1,"never closed\n2,x\n');
    assert.equal(r.line, 2);
    assert.match(r.alert, /line 2: a quoted field opens here and is never closed/);
    r = await scoreText(page, 'sentenceID,sentence\n1,""\n');
    assert.match(r.alert, /nothing to score in the CSV: its 1 row has an empty sentence/);
    assert.equal(await page.locator('#cf-scorer').getAttribute('data-state'), 'idle');
    await page.locator('#cf-scorer').screenshot({ path: join(SHOTS, 'cf-bad-csv.png') });
  });

  test('a file that is no counterfactual model gets a clear message: garbage bytes, the MNIST image model', async () => {
    const { page } = browser;
    for (const [file, code, message] of [
      ['garbage-cf.anybit', 'bad_magic', /Could not load the counterfactual model: .*not a model this page's runtime can read/s],
      ['mnist.anybit', 'not_counterfactual', /models\/mnist\.anybit is an image model without a counterfactual head.*Give \?cf= a counterfactual model/s],
    ]) {
      await open(page, server.origin, `?cf=models/${file}`);
      await page.locator('#cf-card').scrollIntoViewIfNeeded();
      const s = await sectionReady(page);
      assert.equal(s.state, 'error', file);
      assert.equal(s.code, code, `${file}: ${s.error}`);
      assert.match(s.error, message);
      assert.ok(await page.locator('#cf-run').isDisabled());
    }
  });

  test('no request leaves the origin; no console error but the missing model\'s 404', () => {
    assertSameOrigin(browser, server);
    const other = browser.errors.filter((e) => !/404/.test(e));
    assert.deepEqual(other, [], 'console errors');
  });
});

/** Shared by the tiny-fixture and the shipped-model groups: one browser on `?cf=<url>`. */
function section(query, overrides) {
  const ctx = {};
  before(async () => {
    ctx.server = await serve(DIST, { isolated: true, overrides: overrides() });
    ctx.browser = await launch();
    ctx.page = ctx.browser.page;
    await open(ctx.page, ctx.server.origin, query);
    await ctx.page.locator('#cf-card').scrollIntoViewIfNeeded();
    const s = await sectionReady(ctx.page, 300_000);
    assert.equal(s.state, 'ready', `the section loaded its model: ${s.error}`);
  });
  after(async () => {
    await ctx.browser?.close();
    await ctx.server?.close();
  });
  return ctx;
}

describe('counterfactual demo mechanics on the tiny fixture (random weights)', { skip: noTiny }, () => {
  const ctx = section('?cf=models/tiny-cf.anybit', () => ({ '/models/tiny-cf.anybit': readFileSync(TINY) }));

  test('loads with its bit planes counted, scores the first example at 8 bits, marks agree with offsets', async () => {
    const { page } = ctx;
    assert.match(await page.locator('#cf-load-text').textContent(), /8 of 8 bit planes/);
    assert.match(await page.locator('#cf-model-note').textContent(), /up to \d+ tokens/);
    // A sentence with an emoji first: UTF-16 and character offsets differ by one from there on.
    const text = '🙂 If they had, I doubt he would have done so well.';
    const r = await detect(page, text);
    assert.equal(r.width, 8);
    assert.ok(r.probability >= 0 && r.probability <= 1, `probability ${r.probability}`);
    assert.match(r.verdictText, /^(Counterfactual|Not counterfactual) \(\d+\.\d%\)$/);
    assert.ok(r.latencyMs > 0, r.latencyText);
    assert.match(r.latencyText, /ms in the worker/);
    assert.equal(r.marked.replace(/antecedent|consequent/g, ''), text, 'the sentence is shown whole (tags aside)');
    for (const m of r.marks) assert.equal([...text].slice(m.start, m.end + 1).join(''), m.text, `${m.role} at characters ${m.start}..${m.end}`);
    if (!r.counterfactual) assert.equal(r.marks.length, 0, 'no spans on a non-counterfactual verdict');
    // Markup in the text is shown as text, never parsed.
    const html = await detect(page, 'If <b>I</b> had <img src=x onerror=alert(1)> known, I would have come.');
    assert.match(html.marked, /<img src=x onerror=alert\(1\)>/);
    assert.equal(await page.locator('#cf-marked img, #cf-marked b').count(), 0);
  });

  test('switching width re-scores live and compares with the 8-bit result', async () => {
    const { page } = ctx;
    const text = 'Yes, the world would be a better place if there were no trade barriers at all.';
    const at8 = await detect(page, text);
    assert.equal(at8.width, 8);
    assert.equal(at8.changed, null, 'nothing to compare at 8 bits');
    for (const w of [4, 2]) {
      const r = await pickWidth(page, w);
      assert.equal(r.width, w);
      assert.ok(['true', 'false'].includes(r.changed), `the note compares with 8 bits: ${r.change}`);
      assert.match(r.change, r.changed === 'true' ? /^Changed from (not )?counterfactual .* at 8 bits\.$/ : /^Same verdict and spans as at 8 bits/);
    }
    // A new sentence at 2 bits is compared too (the page scores it at 8 bits as well).
    const other = await detect(page, 'If they had, I doubt he would have done so well.');
    assert.equal(other.width, 2);
    assert.ok(['true', 'false'].includes(other.changed), other.change);
    assert.equal((await pickWidth(page, 8)).width, 8);
  });

  test('Auto times the model, decides for the budget per sentence, and re-scores at its width', async () => {
    const { page } = ctx;
    await detect(page, 'If they had, I doubt he would have done so well.');
    await page.fill('#cf-budget', '1000');
    const n = await scoredSoFar(page);
    await page.check('#cf-widths input[value="auto"]');
    await page.waitForSelector('#cf-decision:not([hidden])', { timeout: 120_000 });
    const chosen = Number(await page.locator('#cf-decision').getAttribute('data-width'));
    const r = await readResult(page, n, chosen);
    const decision = await page.locator('#cf-decision').textContent();
    console.log(`# Auto, 1000 ms per sentence: ${decision.slice(0, 200)}`);
    assert.match(decision, new RegExp(`^Auto chose ${chosen}-bit weights`));
    assert.equal(r.width, chosen);
    assert.ok(await page.locator('#cf-error').isHidden(), await page.locator('#cf-error').textContent());
    assert.equal((await pickWidth(page, 8)).width, 8);
    assert.ok(await page.locator('#cf-decision').isHidden(), 'a width picked by hand ends Auto');
  });

  test('a long sentence is truncated and the page says so', async () => {
    const { page } = ctx;
    const long = `If ${'the committee had met every single week of the year and '.repeat(40)}it would have finished.`;
    const r = await detect(page, long);
    assert.ok(r.truncated, 'the truncation note shows');
    assert.match(r.truncatedText, /longer than the model takes \(\d+ tokens with \[CLS\] and \[SEP\]\): only its beginning was scored/);
    const s = await scoreText(page, `A short one.\n${long}\nAnother short one.`);
    assert.ok(s.ok, s.alert);
    assert.equal(await page.locator('#cf-score-truncated').getAttribute('data-lines'), '2');
    assert.match(await page.locator('#cf-score-truncated').textContent(), /1 sentence was longer than the model takes/);
  });

  test('the 200-row CSV is scored with progress and downloaded: offsets cut out the span texts, rows equal the CLI\'s', async () => {
    const { page } = ctx;
    const n = await runsSoFar(page);
    await page.setInputFiles('#cf-file', CSV_200);
    await page.waitForFunction(() => Number(document.getElementById('cf-score-progress').dataset.total) === 200, null, { timeout: 30_000 });
    const r = await scorerOutcome(page, n);
    assert.ok(r.ok, r.alert);
    const summary = page.locator('#cf-score-summary');
    assert.equal(await summary.getAttribute('data-n'), '200');
    console.log(`# tiny fixture, 200 rows: ${await summary.textContent()}`);
    assert.equal(await page.locator('#cf-table tbody tr').count(), 200);
    const d = await downloadCsv(page);
    assert.equal(d.name, 'cf-200-counterfactual-8bit.csv');
    assert.deepEqual(d.header, RESULT_COLUMNS);
    const input = await csvFile(CSV_200);
    assert.deepEqual(d.rows.map((x) => x.sentenceID), input.map((x) => x.sentenceID), 'every row, in order');
    assert.deepEqual(d.rows.map((x) => x.sentence), input.map((x) => x.sentence), 'sentences unchanged through the round trip');
    for (const row of d.rows) {
      assert.ok(['0', '1'].includes(row.pred_label));
      assert.ok(Number(row.probability) >= 0 && Number(row.probability) <= 1);
      checkOffsets(row);
    }
    // The same model natively (anybit cf-eval): the page's rows are the CLI's.
    await assertMatchesCli(d.rows, TINY_EXPECTED, readFileSync(TINY), 'bash e2e-tests/fixtures/cf-expected.sh tiny');
    await shot(page, 'cf-tiny-scored');
  });

  test('characters outside the BMP: the download\'s offsets count code points, not UTF-16 units', async () => {
    const { page } = ctx;
    const lines = ['🙂🙂 If they had, I doubt he would have done so well.', 'Yes, the 🌍 would be a better place if there were no trade barriers at all.'];
    const r = await scoreText(page, lines.join('\n'));
    assert.ok(r.ok, r.alert);
    const d = await downloadCsv(page);
    assert.deepEqual(d.rows.map((x) => x.sentence), lines);
    assert.equal(d.name, 'pasted-counterfactual-8bit.csv');
    d.rows.forEach(checkOffsets);
    assert.ok(d.rows.some((x) => x.antecedent !== ''), 'a span to check');
  });

  test('Cancel stops a long run between chunks, and the section stays usable', async () => {
    const { page } = ctx;
    const rows = (await csvFile(CSV_200)).map((x) => x.sentence);
    await paste(page, Array.from({ length: 10 }, () => rows.join('\n')).join('\n')); // 2000 sentences
    await page.click('#cf-score');
    await page.waitForFunction(() => Number(document.getElementById('cf-score-progress').dataset.done) > 0, null, { timeout: 120_000 });
    assert.ok(await page.locator('#cf-cancel').isVisible());
    assert.ok(await page.locator('#cf-widths input[value="4"]').isDisabled(), 'the width is fixed while scoring');
    const took = await page.evaluate(() => new Promise((resolve) => {
      const box = document.getElementById('cf-scorer');
      const t0 = performance.now();
      const done = () => box.dataset.state === 'idle' && resolve(performance.now() - t0);
      new MutationObserver(done).observe(box, { attributes: true });
      document.getElementById('cf-cancel').click();
    }));
    const status = await page.locator('#cf-score-status').textContent();
    console.log(`# cancel: idle ${took.toFixed(0)} ms after the click; ${status}`);
    assert.match(status, /^Cancelled after \d+ of 2000 sentences/);
    assert.ok(await page.locator('#cf-score-error').isHidden(), 'a cancel is not an error');
    assert.ok(await page.locator('#cf-score').isEnabled());
    assert.ok(await page.locator('#cf-widths input[value="4"]').isEnabled(), 'the width can change again');
    const r = await detect(page, 'If only I had known.');
    assert.ok(r.scored > 0);
  });

  test('readable on a 375 px wide phone screen, with a result and the scored table', async () => {
    const { page } = ctx;
    await page.setViewportSize({ width: 375, height: 812 });
    try {
      await detect(page, 'If they had, I doubt he would have done so well.');
      const wider = await overflow(page);
      assert.ok(wider <= 0, `the page or a card is ${wider} px wider than the screen`);
      const box = await page.locator('#cf-card').boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 375, 'the section fits');
      await page.locator('#cf-card').screenshot({ path: join(SHOTS, 'cf-phone-375.png') });
    } finally {
      await page.setViewportSize({ width: 1100, height: 900 });
    }
  });

  test('?cf-width=2 fetches only the planes 2 bits need; picking 8 bits fetches the rest and compares again', async () => {
    const { page, server } = ctx;
    const mark = server.transfers.length;
    const fetched = () => server.transfers.slice(mark).filter((t) => t.path.endsWith('/tiny-cf.anybit'));
    await open(page, server.origin, '?cf=models/tiny-cf.anybit&cf-width=2');
    await page.locator('#cf-card').scrollIntoViewIfNeeded();
    assert.equal((await sectionReady(page)).state, 'ready');
    const first = fetched();
    const whole = statSync(TINY).size;
    const sent = first.reduce((n, t) => n + t.bytes, 0);
    console.log(`# ?cf-width=2: ${sent} of ${whole} bytes by ${first.length} Range request(s)`);
    assert.ok(first.every((t) => t.status === 206), JSON.stringify(first));
    assert.ok(sent < whole, `${sent} of ${whole} bytes`);
    assert.match(await page.locator('#cf-load-text').textContent(), /2 of 8 bit planes/);
    assert.match(await page.locator('#cf-model-note').textContent(), /2 of 8 bit planes fetched/);
    const r = await detect(page, 'If they had, I doubt he would have done so well.');
    assert.equal(r.width, 2);
    assert.match(r.change, /No 8-bit result to compare with/);
    assert.equal((await pickWidth(page, 8)).width, 8);
    assert.doesNotMatch(await page.locator('#cf-model-note').textContent(), /bit planes fetched/);
    const r2 = await pickWidth(page, 2);
    assert.ok(['true', 'false'].includes(r2.changed), `compared with 8 bits once its planes are in: ${r2.change}`);
  });

  test('no request leaves the origin, and no console errors', () => {
    assertSameOrigin(ctx.browser, ctx.server);
    assert.deepEqual(ctx.browser.errors, [], 'console errors');
  });
});

describe('counterfactual demo with the shipped model', { skip: noShipped }, () => {
  const ctx = section('', () => ({}));

  test('a dev counterfactual is marked, with its antecedent at the gold characters', async () => {
    const { page } = ctx;
    const s = sentences.counterfactual;
    const r = await detect(page, s.text);
    console.log(`# ${s.id} at 8 bits: ${r.verdictText}, ${r.marks.map((m) => `${m.role} ${m.start}..${m.end}`).join(', ')}, ${r.latencyText}`);
    assert.equal(r.counterfactual, true, r.verdictText);
    const ant = r.marks.find((m) => m.role === 'antecedent');
    assert.ok(ant, 'an antecedent is marked');
    assert.deepEqual([ant.start, ant.end, ant.text], [s.antecedent.start, s.antecedent.end, s.antecedent.text]);
    const con = r.marks.find((m) => m.role === 'consequent');
    console.log(`# consequent: ${con ? `${con.start}..${con.end} "${con.text}"` : 'none'}; gold ${s.consequent.start}..${s.consequent.end}`);
    await shot(page, 'cf-counterfactual-8bit');
  });

  test('after an emoji the marks still sit on the right characters (UTF-16 for the page, code points in data-*)', async () => {
    const { page } = ctx;
    const s = sentences.counterfactual;
    const r = await detect(page, `🙂 ${s.text}`);
    assert.equal(r.counterfactual, true, r.verdictText);
    const ant = r.marks.find((m) => m.role === 'antecedent');
    assert.ok(ant, 'an antecedent is marked');
    assert.deepEqual([ant.start, ant.end, ant.text], [s.antecedent.start + 2, s.antecedent.end + 2, s.antecedent.text]);
  });

  test('a dev plain sentence is marked not counterfactual', async () => {
    const { page } = ctx;
    const r = await detect(page, sentences.plain.text);
    assert.equal(r.counterfactual, false, r.verdictText);
    assert.equal(r.marks.length, 0);
  });

  test('switching width re-scores the sentence live at each width', async () => {
    const { page } = ctx;
    await detect(page, sentences.antecedentFirst.text);
    const seen = [];
    for (const w of [6, 4, 3, 2]) {
      const r = await pickWidth(page, w);
      assert.equal(r.width, w);
      assert.ok(['true', 'false'].includes(r.changed), r.change);
      seen.push(`${w}: ${r.verdictText}${r.changed === 'true' ? ' (changed)' : ''}, ${r.latencyMs.toFixed(1)} ms`);
    }
    console.log(`# ${sentences.antecedentFirst.id} by width: ${seen.join('; ')}`);
    assert.equal((await pickWidth(page, 8)).width, 8);
  });

  test('the chart shows the subtask-1 F1 per width stored in the file, the current width marked', async () => {
    const { page } = ctx;
    const info = await page.evaluate(() => {
      const svg = document.querySelector('#cf-chart svg');
      return { dots: svg ? svg.querySelectorAll('circle').length : 0, current: svg?.querySelector('circle.current')?.dataset.width, title: svg?.querySelector('title')?.textContent ?? '' };
    });
    assert.equal(info.dots, 8, info.title);
    assert.equal(info.current, '8');
    assert.match(info.title, /^F1 by weight width on .*subtask 1 dev \(1300 sentences\): 1 bits /);
  });

  test('the 200-row CSV is scored at 8 bits, downloaded, and equals the CLI\'s predictions', async (t) => {
    const { page } = ctx;
    const n = await runsSoFar(page);
    await page.setInputFiles('#cf-file', CSV_200);
    const r = await scorerOutcome(page, n);
    assert.ok(r.ok, r.alert);
    console.log(`# shipped model, 200 rows: ${await page.locator('#cf-score-summary').textContent()}`);
    const d = await downloadCsv(page);
    assert.equal(d.name, 'cf-200-counterfactual-8bit.csv');
    assert.deepEqual(d.header, RESULT_COLUMNS);
    assert.equal(d.rows.length, 200);
    d.rows.forEach(checkOffsets);
    // Subtask 1 on these 200 dev rows, for the log (the targets are the CLI's to check on the whole dev split).
    const gold = await csvFile(CSV_200);
    const tp = d.rows.filter((x, i) => x.pred_label === '1' && gold[i].gold_label === '1').length;
    const pp = d.rows.filter((x) => x.pred_label === '1').length;
    const gp = gold.filter((x) => x.gold_label === '1').length;
    console.log(`# subtask 1 on the 200 rows: precision ${(tp / pp).toFixed(3)}, recall ${(tp / gp).toFixed(3)}`);
    if (!existsSync(EXPECTED)) {
      t.skip(`${EXPECTED} is absent: run "bash e2e-tests/fixtures/cf-expected.sh" (anybit cf-eval --predictions) to make it`);
      return;
    }
    await assertMatchesCli(d.rows, EXPECTED, readFileSync(SHIPPED), 'bash e2e-tests/fixtures/cf-expected.sh');
  });

  test('Cancel stops scoring the dev rows', async () => {
    const { page } = ctx;
    const rows = (await csvFile(CSV_200)).map((x) => x.sentence);
    await paste(page, [...rows, ...rows, ...rows].join('\n'));
    await page.click('#cf-score');
    await page.waitForFunction(() => Number(document.getElementById('cf-score-progress').dataset.done) > 0, null, { timeout: 120_000 });
    await page.click('#cf-cancel');
    await page.waitForSelector('#cf-scorer[data-state="idle"]', { timeout: 30_000 });
    assert.match(await page.locator('#cf-score-status').textContent(), /^Cancelled after \d+ of 600 sentences/);
    const r = await detect(page, sentences.plain.text);
    assert.equal(r.counterfactual, false);
  });

  test('no request leaves the origin, and no console errors', () => {
    assertSameOrigin(ctx.browser, ctx.server);
    assert.deepEqual(ctx.browser.errors, [], 'console errors');
  });
});
