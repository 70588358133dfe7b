// Session.detect and Session.detectMany from the installed package, on the tiny counterfactual model
// the crate's tests commit (crate/tests/fixtures/tiny-cf.anybit: a random 2-layer BERT with a
// 7-column counterfactual head, a 50-word vocabulary, 160 tokens at most, thresholds for 8, 4 and 2
// bits, an eval table with metrics; crate/tests/session_cf.rs builds it): spans that slice the JS
// string back, thresholds per width, detectMany's chunks, progress and cancel, truncation, typed
// errors, in Node (in-process) and on a plain page in headless Chromium (in the worker, threads
// build); and the README's counterfactual example in Node. The model is random, so the verdicts
// are checked against their own probability and threshold, not against a meaning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { launch } from '../../e2e-tests/lib/chromium.js';
import { serve } from '../../e2e-tests/lib/server.js';
import { APP, ROOT } from '../lib/app.js';

const { createSession, AnybitError } = await import(pathToFileURL(join(APP, 'entry.mjs')).href);

const FIXTURES = join(ROOT, 'crate', 'tests', 'fixtures');
const CF_MODEL = join(FIXTURES, 'tiny-cf.anybit');
const TEXT_MODEL = join(FIXTURES, 'tiny-text.anybit');

// Runs in Node and, as source, on the page: everything the checks below need, as plain data.
async function cfScenario(session) {
  const error = async (p) => p.then(() => null, (x) => ({ code: x.code, message: x.message, isAnybitError: x.name === 'AnybitError' }));
  const noMs = (r) => ({ ...r, ms: 0 });
  const text = 'If 😀 it had rained, we would have stayed home.';
  const codePoints = [...text];
  const d = await session.detect(text);
  const span = (s) => s && { ...s, js: text.slice(s.startUtf16, s.endUtf16), chars: codePoints.slice(s.start, s.end + 1).join('') };

  const widths = [];
  for (const w of [8, 7, 4, 3, 2, 1]) {
    await session.setWidth(w);
    const r = await session.detect(text);
    widths.push({ width: r.width, threshold: r.threshold, consistent: r.counterfactual === r.probability >= r.threshold, p: r.probability });
  }
  await session.setWidth(8);

  const texts = Array.from({ length: 40 }, (_, i) => (i % 2 ? text : `if we had ${i} more time , it would have been better .`));
  const progress = [];
  const many = await session.detectMany(texts, { onProgress: (p) => progress.push(p) });
  const one = [await session.detect(texts[0]), await session.detect(texts[1])];

  // Cancel after the first chunk (from onProgress), during a chunk, and before anything is sent.
  const afterFirst = new AbortController();
  const cancelProgress = [];
  const cancelledAfterChunk = await error(session.detectMany(texts, {
    signal: afterFirst.signal,
    onProgress: (p) => {
      cancelProgress.push(p);
      afterFirst.abort();
    },
  }));
  const during = new AbortController();
  const inFlight = session.detectMany(texts, { signal: during.signal });
  during.abort();
  const cancelledInFlight = await error(inFlight);
  const pre = new AbortController();
  pre.abort();
  const preProgress = [];
  const preAborted = await error(session.detectMany(texts, { signal: pre.signal, onProgress: (p) => preProgress.push(p) }));

  const big = 'if it had rained , we would have stayed home . '.repeat(22310); // 1 MiB + a little
  const long = await session.detect(big);
  return {
    detection: { ...noMs(d), antecedent: span(d.antecedent), consequent: span(d.consequent) },
    ms: d.ms,
    widths,
    many: { n: many.length, progress, firstTwo: many.slice(0, 2).map(noMs), one: one.map(noMs), widths: [...new Set(many.map((r) => r.width))] },
    cancel: { afterChunk: cancelledAfterChunk, cancelProgress, inFlight: cancelledInFlight, preAborted, preProgress },
    empty: await session.detectMany([]),
    long: { truncated: long.truncated, tokens: long.tokens, antecedentEnd: long.antecedent?.end ?? null },
    errors: {
      empty: await error(session.detect('')),
      spaces: await error(session.detect(' \n\t ')),
      number: await error(session.detect(42)),
      enormous: await error(session.detect('a'.repeat(5 << 20))),
      manyNotArray: await error(session.detectMany('if it had rained')),
      manyNumber: await error(session.detectMany(['if it had rained', 7])),
      manyEmpty: await error(session.detectMany(['if it had rained', '  ', 'home'])),
      manyLate: await error(session.detectMany([...texts, ''])),
      badProgress: await error(session.detectMany(texts, { onProgress: 5 })),
      badSignal: await error(session.detectMany(texts, { signal: {} })),
    },
    after: (await session.detect('if it had rained')).antecedent?.text ?? null,
  };
}

function assertScenario(out) {
  const d = out.detection;
  assert.equal(d.counterfactual, d.probability >= d.threshold);
  assert.ok(d.probability > 0 && d.probability < 1, String(d.probability));
  assert.equal(d.threshold, 0.5);
  assert.deepEqual([d.tokens, d.truncated, d.width, d.ms], [14, false, 8, 0]);
  assert.ok(out.ms > 0);
  // The antecedent is always there (a legal tagging has exactly one); each span slices the string
  // back in UTF-16 units and in code points (end inclusive).
  assert.ok(d.antecedent, 'an antecedent');
  for (const s of [d.antecedent, d.consequent].filter(Boolean)) {
    assert.equal(s.js, s.text);
    assert.equal(s.chars, s.text);
    assert.ok(s.start <= s.end && s.startUtf16 < s.endUtf16);
    // The emoji is one code point but two UTF-16 units.
    assert.equal(s.startUtf16 - s.start, s.start > 3 ? 1 : 0);
    assert.equal(s.endUtf16 - s.end, s.end >= 3 ? 2 : 1);
  }
  if (d.consequent) assert.ok(d.consequent.end < d.antecedent.start || d.antecedent.end < d.consequent.start, 'spans overlap');
  // Thresholds per width: the stored one, else the nearest wider width's.
  assert.deepEqual(out.widths.map((w) => [w.width, w.threshold, w.consistent]),
    [[8, 0.5, true], [7, 0.5, true], [4, 0.45, true], [3, 0.45, true], [2, 0.4, true], [1, 0.4, true]]);
  assert.ok(new Set(out.widths.map((w) => w.p)).size > 1, 'each width is its own model');
  // detectMany: chunks of 16, each text as detect() says it.
  assert.equal(out.many.n, 40);
  assert.deepEqual(out.many.progress, [{ done: 16, total: 40 }, { done: 32, total: 40 }, { done: 40, total: 40 }]);
  assert.deepEqual(out.many.firstTwo, out.many.one);
  assert.deepEqual(out.many.widths, [8]);
  const c = out.cancel;
  assert.deepEqual(c.cancelProgress, [{ done: 16, total: 40 }]);
  assert.deepEqual(c.afterChunk, { code: 'aborted', message: 'detectMany was cancelled after 16 of 40 texts', isAnybitError: true });
  assert.deepEqual(c.inFlight, { code: 'aborted', message: 'detectMany was cancelled after 0 of 40 texts', isAnybitError: true });
  assert.deepEqual([c.preAborted.code, c.preProgress], ['aborted', []]);
  assert.deepEqual(out.empty, []);
  // A megabyte: truncated to the model's 160 tokens, spans inside what it saw.
  assert.equal(out.long.truncated, true);
  assert.equal(out.long.tokens, 160);
  assert.ok(out.long.antecedentEnd !== null && out.long.antecedentEnd < 1000, String(out.long.antecedentEnd));
  const e = out.errors;
  for (const k of Object.keys(e)) assert.equal(e[k]?.isAnybitError, true, k);
  assert.deepEqual([e.empty.code, e.empty.message], ['invalid_argument', 'the text is empty']);
  assert.deepEqual([e.spaces.code, e.spaces.message], ['invalid_argument', 'the text is empty']);
  assert.deepEqual([e.number.code, e.number.message], ['invalid_argument', 'text must be a string, got number']);
  assert.equal(e.enormous.code, 'limit_exceeded');
  assert.deepEqual([e.manyNotArray.code, e.manyNotArray.message], ['invalid_argument', 'detectMany needs an array of strings, got string']);
  assert.deepEqual([e.manyNumber.code, e.manyNumber.message], ['invalid_argument', 'texts[1] must be a string, got number']);
  assert.deepEqual([e.manyEmpty.code, e.manyEmpty.message], ['invalid_argument', 'texts[1]: the text is empty']);
  assert.deepEqual([e.manyLate.code, e.manyLate.message], ['invalid_argument', 'texts[40]: the text is empty']);
  assert.equal(e.badProgress.code, 'invalid_argument');
  assert.equal(e.badSignal.code, 'invalid_argument');
  assert.equal(typeof out.after, 'string', 'the session works after every refusal and cancel');
}

function assertInfo(info) {
  assert.deepEqual(info.task, { type: 'counterfactual', thresholds: [[8, 0.5], [4, 0.45], [2, 0.4]] });
  assert.deepEqual(info.text, { maxTokens: 160, vocabSize: 50 });
  assert.deepEqual(info.eval.map((e) => [e.metric, e.n, e.accuracy[0]]), [['f1', 10, [8, 0.9]], ['exact_match', 10, [8, 0.6]]]);
}

test('Node: detect and detectMany on a counterfactual model (spans, widths, chunks, cancel, typed errors)', async () => {
  const session = await createSession();
  try {
    assertInfo(await session.load(await readFile(CF_MODEL)));
    assertScenario(await cfScenario(session));
  } finally {
    await session.dispose();
  }
});

test('Node: models without the counterfactual task refuse detect, and their info has no task', async () => {
  const session = await createSession();
  try {
    for (const [file, what] of [[TEXT_MODEL, 'text'], [join(ROOT, 'models', 'mnist.anybit'), 'image']]) {
      const info = await session.load(await readFile(file));
      assert.equal(info.task, null);
      for (const call of [() => session.detect('if it had rained'), () => session.detectMany(['if it had rained'])]) {
        await assert.rejects(call(), (e) => e instanceof AnybitError && e.code === 'invalid_argument'
          && e.message.includes(`this ${what} model is not a counterfactual detector`));
      }
    }
  } finally {
    await session.dispose();
  }
});

test("Node: the README's counterfactual example runs as written (from the installed package's README)", async () => {
  const readme = await readFile(join(APP, 'node_modules', 'anybit', 'README.md'), 'utf8');
  const example = readme.match(/^### Counterfactual detection\n[\s\S]*?^```js\n([\s\S]*?)^```$/m)?.[1];
  assert.ok(example, 'the README has a counterfactual example');
  const session = await createSession();
  try {
    await session.load(await readFile(CF_MODEL));
    const logs = [];
    const AsyncFunction = (async () => {}).constructor;
    await new AsyncFunction('session', 'console', example)(session, { log: (...a) => logs.push(a.join(' ')) });
    assert.equal(logs.length, 5, logs.join('\n'));
    assert.match(logs[0], /^(not )?counterfactual \(p = 0\.\d\d, threshold 0\.5\)$/);
    assert.match(logs[1], /^antecedent \d+\.\.=\d+ "[^"]+"$/);
    assert.match(logs[2], /^(consequent "[^"]+"|no consequent)$/);
    assert.equal(logs[3], '2 of 2');
    assert.match(logs[4], /^(true|false),(true|false)$/);
  } finally {
    await session.dispose();
  }
});

test('Chromium: the same on a plain page, in the worker (threads build)', async () => {
  const dir = join(APP, 'cf');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
    '<script type="importmap">{ "imports": { "anybit": "/node_modules/anybit/index.js" } }</script>' +
    '<script type="module">import * as anybit from "anybit"; window.anybit = anybit; document.body.dataset.ready = "yes";</script>');
  await writeFile(join(dir, 'tiny-cf.anybit'), await readFile(CF_MODEL));
  const server = await serve(APP, { isolated: true });
  const browser = await launch();
  try {
    await browser.page.goto(`${server.origin}/cf/index.html`);
    await browser.page.waitForSelector('body[data-ready=yes]', { state: 'attached', timeout: 30_000 });
    const out = await browser.page.evaluate(async (scenario) => {
      const session = await window.anybit.createSession();
      try {
        const info = await session.load('tiny-cf.anybit');
        const run = (0, eval)(`(${scenario})`);
        return { build: session.build.variant, info, ...(await run(session)) };
      } finally {
        await session.dispose();
      }
    }, cfScenario.toString());
    assert.equal(out.build, 'threads');
    assertInfo(out.info);
    assertScenario(out);
    assert.deepEqual(browser.errors, []);
  } finally {
    await browser.close();
    await server.close();
  }
});
