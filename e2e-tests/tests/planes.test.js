// web/planes.js, which counts a model's bit planes as its bytes arrive, on the real shipped model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { planeEnds, PlaneCounter } from '../../web/planes.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('plane ends come from the safetensors header, the last one at the end of the file', async () => {
  const bytes = new Uint8Array(await readFile(join(ROOT, 'models', 'mnist.anybit')));
  const ends = planeEnds(bytes);
  assert.equal(ends.length, 8);
  assert.equal(ends[7], bytes.length, 'the least significant plane ends the file');
  const plane = ends[1] - ends[0];
  ends.slice(1).forEach((e, i) => assert.equal(e - ends[i], plane, 'planes are equally long'));
  assert.equal(planeEnds(bytes.subarray(0, 7)), null, 'no header length yet');
  assert.equal(planeEnds(bytes.subarray(0, 100)), null, 'header incomplete');
  assert.deepEqual(planeEnds(new TextEncoder().encode('\x04\0\0\0\0\0\0\0nope')), [], 'not JSON');
});

test('counted in chunks, planes complete most significant first, one at a time', async () => {
  const bytes = new Uint8Array(await readFile(join(ROOT, 'models', 'mnist.anybit')));
  const ends = planeEnds(bytes);
  const headerEnd = 8 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  const counter = new PlaneCounter();
  const seen = [];
  for (let at = 0; at < bytes.length; at += 1000) {
    const chunk = bytes.subarray(at, Math.min(at + 1000, bytes.length));
    const { planes, planeTotal } = counter.add(chunk, at + chunk.length);
    seen.push(planes);
    assert.equal(planeTotal, at + chunk.length >= headerEnd ? 8 : 0, 'the total is known once the header is in');
    assert.equal(planes, ends.filter((e) => e <= at + chunk.length).length);
  }
  assert.equal(seen.at(-1), 8);
  assert.deepEqual([...new Set(seen)], [0, 1, 2, 3, 4, 5, 6, 7, 8], 'every count from 0 to 8 was reported');
});
