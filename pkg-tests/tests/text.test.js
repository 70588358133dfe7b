// Session.encode and Session.runText from the installed package, on the tiny random text model the
// crate's tests commit (crate/tests/fixtures/tiny-text.anybit: a 1-layer BERT, hidden 8, mean-pooled,
// a 222-token vocabulary, 32 tokens at most): token ids, offsets that slice the JS string back to
// the words, truncation of a megabyte, and typed errors, in Node (in-process) and on a plain page
// in headless Chromium (in the worker, threads build); and the README's text example in Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { launch } from '../../e2e-tests/lib/chromium.js';
import { serve } from '../../e2e-tests/lib/server.js';
import { APP, MODEL, ROOT } from '../lib/app.js';

const { createSession, AnybitError } = await import(pathToFileURL(join(APP, 'entry.mjs')).href);

const TEXT_MODEL = join(ROOT, 'crate', 'tests', 'fixtures', 'tiny-text.anybit');
const HIDDEN = 8;

// Runs in Node and, as source, on the page: everything the checks below need, as plain data.
async function textScenario(session) {
  const text = '😀 Hello, World! Unbelievable';
  const e = await session.encode(text);
  const n = e.ids.length;
  const slices = Array.from({ length: n }, (_, i) => text.slice(e.offsets[2 * i], e.offsets[2 * i + 1]));
  const codePoints = [...text];
  const charSlices = Array.from({ length: n }, (_, i) => codePoints.slice(e.charOffsets[2 * i], e.charOffsets[2 * i + 1]).join(''));
  const error = async (p) => p.then(() => null, (x) => ({ code: x.code, message: x.message, isAnybitError: x.name === 'AnybitError' }));
  const big = 'the quick brown fox jumps over the lazy dog. '.repeat(23302); // 1 MiB + a little
  const started = performance.now();
  const long = await session.encode(big);
  const longMs = performance.now() - started;
  return {
    types: [e.ids.constructor.name, e.offsets.constructor.name, e.charOffsets.constructor.name, e.output.constructor.name],
    ids: [...e.ids],
    tokens: e.tokens,
    slices,
    charSlices,
    offsets: [...e.offsets],
    shape: e.shape,
    output: [...e.output],
    rest: { truncated: e.truncated, piecesTotal: e.piecesTotal, maxTokens: e.maxTokens, width: e.width },
    again: [...(await session.encode(text)).output],
    long: { truncated: long.truncated, piecesTotal: long.piecesTotal, n: long.ids.length, ms: longMs, bytes: big.length },
    errors: {
      number: await error(session.encode(42)),
      missing: await error(session.encode()),
      object: await error(session.encode({ text: 'hello' })),
      empty: await error(session.encode('')),
      spaces: await error(session.encode(' \n\t ')),
      enormous: await error(session.encode('a'.repeat(5 << 20))),
      runTextEmbedding: await error(session.runText('hello')),
      runTextNumber: await error(session.runText(7)),
      image: await error(session.run({ width: 2, height: 2, data: new Uint8ClampedArray(16) })),
    },
    after: (await session.encode('hello')).tokens,
  };
}

function assertScenario(out) {
  assert.deepEqual(out.types, ['Uint32Array', 'Uint32Array', 'Uint32Array', 'Float32Array']);
  // Ids as crate/tests/session_text.rs checks them against the tokenizer (BERT's vocabulary ids
  // for the specials, then the fixture's own words).
  assert.deepEqual(out.tokens, ['[CLS]', '[UNK]', 'hello', ',', 'world', '!', 'un', '##believ', '##able', '[SEP]']);
  assert.deepEqual(out.ids, [101, 100, 208, 215, 209, 217, 210, 211, 212, 102]);
  // UTF-16 offsets slice the JS string back to each token's text; code-point offsets differ after
  // the emoji (one code point, two UTF-16 units) and cut the same text from the code points.
  assert.deepEqual(out.slices, ['', '😀', 'Hello', ',', 'World', '!', 'Un', 'believ', 'able', '']);
  assert.deepEqual(out.charSlices, out.slices);
  assert.deepEqual(out.offsets.slice(0, 6), [0, 0, 0, 2, 3, 8]);
  assert.deepEqual(out.shape, [HIDDEN]);
  assert.equal(out.output.length, HIDDEN);
  assert.ok(out.output.every(Number.isFinite));
  assert.deepEqual(out.again, out.output, 'the same text gives the same embedding');
  assert.deepEqual(out.rest, { truncated: false, piecesTotal: 8, maxTokens: 32, width: 8 });
  // A megabyte: truncated to the model's 32 tokens, every piece counted, and quick.
  assert.deepEqual({ ...out.long, ms: 0 }, { truncated: true, piecesTotal: 233020, n: 32, ms: 0, bytes: out.long.bytes });
  assert.ok(out.long.bytes > 1 << 20);
  assert.ok(out.long.ms < 5000, `1 MiB took ${out.long.ms} ms`);
  const e = out.errors;
  for (const k of Object.keys(e)) assert.equal(e[k]?.isAnybitError, true, k);
  assert.deepEqual([e.number.code, e.number.message], ['invalid_argument', 'text must be a string, got number']);
  assert.deepEqual([e.missing.code, e.missing.message], ['invalid_argument', 'text must be a string, got undefined']);
  assert.equal(e.object.code, 'invalid_argument');
  assert.deepEqual([e.empty.code, e.empty.message], ['invalid_argument', 'the text is empty']);
  assert.deepEqual([e.spaces.code, e.spaces.message], ['invalid_argument', 'the text is empty']);
  assert.equal(e.enormous.code, 'limit_exceeded');
  assert.match(e.enormous.message, /5242880/);
  assert.equal(e.runTextEmbedding.code, 'invalid_argument');
  assert.match(e.runTextEmbedding.message, /no labels.*use encode/);
  assert.equal(e.runTextNumber.code, 'invalid_argument');
  assert.equal(e.image.code, 'invalid_argument');
  assert.match(e.image.message, /takes text, not images/);
  assert.deepEqual(out.after, ['[CLS]', 'hello', '[SEP]'], 'the session works after every refusal');
}

test('Node: encode on a text model (ids, offsets, embedding, truncation, typed errors)', async () => {
  const session = await createSession();
  try {
    const info = await session.load(await readFile(TEXT_MODEL));
    assert.deepEqual(info.text, { maxTokens: 32, vocabSize: 222 });
    assert.deepEqual(info.inputShape, [32, 3]);
    assertScenario(await textScenario(session));
  } finally {
    await session.dispose();
  }
});

test('Node: an image model refuses text, and its info says it is not a text model', async () => {
  const session = await createSession();
  try {
    const info = await session.load(await readFile(MODEL));
    assert.equal(info.text, null);
    for (const call of [() => session.encode('hello'), () => session.runText('hello')]) {
      await assert.rejects(call(), (e) => e instanceof AnybitError && e.code === 'invalid_argument' && /takes images/.test(e.message));
    }
    await assert.rejects(session.encode(null), (e) => e instanceof AnybitError && e.code === 'invalid_argument');
  } finally {
    await session.dispose();
  }
});

test("Node: the README's text example runs as written (from the installed package's README)", async () => {
  const readme = await readFile(join(APP, 'node_modules', 'anybit', 'README.md'), 'utf8');
  const example = readme.match(/^### Text\n[\s\S]*?^```js\n([\s\S]*?)^```$/m)?.[1];
  assert.ok(example, 'the README has a text example');
  const session = await createSession();
  try {
    await session.load(await readFile(TEXT_MODEL));
    const logs = [];
    const AsyncFunction = (async () => {}).constructor;
    await new AsyncFunction('session', 'console', example)(session, { log: (...a) => logs.push(a.join(' ')) });
    assert.deepEqual(logs, [
      '[CLS] 101 ""', '[UNK] 100 "😀"', 'hello 208 "Hello"', ', 215 ","', 'world 209 "World"', '! 217 "!"', '[SEP] 102 ""',
      `embedding of ${HIDDEN} values`,
      'invalid_argument: the text is empty',
    ]);
  } finally {
    await session.dispose();
  }
});

test('Chromium: the same on a plain page, in the worker (threads build)', async () => {
  const dir = join(APP, 'text');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
    '<script type="importmap">{ "imports": { "anybit": "/node_modules/anybit/index.js" } }</script>' +
    '<script type="module">import * as anybit from "anybit"; window.anybit = anybit; document.body.dataset.ready = "yes";</script>');
  await writeFile(join(dir, 'tiny-text.anybit'), await readFile(TEXT_MODEL));
  const server = await serve(APP, { isolated: true });
  const browser = await launch();
  try {
    await browser.page.goto(`${server.origin}/text/index.html`);
    await browser.page.waitForSelector('body[data-ready=yes]', { state: 'attached', timeout: 30_000 });
    const out = await browser.page.evaluate(async (scenario) => {
      const session = await window.anybit.createSession();
      try {
        const info = await session.load('tiny-text.anybit');
        const run = (0, eval)(`(${scenario})`);
        return { build: session.build.variant, info: info.text, ...(await run(session)) };
      } finally {
        await session.dispose();
      }
    }, textScenario.toString());
    assert.equal(out.build, 'threads');
    assert.deepEqual(out.info, { maxTokens: 32, vocabSize: 222 });
    assertScenario(out);
    assert.deepEqual(browser.errors, []);
    console.log(`page: 1 MiB of text encoded (truncated) in ${out.long.ms.toFixed(0)} ms`);
  } finally {
    await browser.close();
    await server.close();
  }
});
