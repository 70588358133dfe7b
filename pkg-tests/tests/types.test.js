// The hand-written types: a small TypeScript consumer of the installed package compiles with
// strict mode, and a misuse of the API is a type error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { APP, ROOT } from '../lib/app.js';

const TSC = join(ROOT, 'pkg-tests', 'node_modules', 'typescript', 'bin', 'tsc');
const tsc = (project) => promisify(execFile)(process.execPath, [TSC, '--noEmit', '-p', project]).then(
  () => '',
  (e) => e.stdout + e.stderr,
);

test('tsc --noEmit (strict) passes on a consumer of the package', async () => {
  assert.equal(await tsc(join(APP, 'ts')), '');
});

test('a wrong argument type is a type error', async () => {
  const dir = join(APP, 'ts');
  await writeFile(join(dir, 'wrong.ts'), `import { createSession } from 'anybit';\n` +
    `const s = await createSession();\nawait s.run([1, 2, 3]);\nawait s.setWidth('8');\n` +
    `await s.attack({ image: new Float32Array(784), attack: 'pgd' });\nawait s.encode(42);\n` +
    `await s.detectMany('one text');\nawait s.runMany([[0.5, 0.5]]);\n`);
  const out = await tsc(join(dir, 'tsconfig.wrong.json'));
  assert.match(out, /wrong\.ts\(3,/);
  assert.match(out, /wrong\.ts\(4,/);
  assert.match(out, /wrong\.ts\(5,.*'"pgd"' is not assignable to type 'AttackName'/);
  assert.match(out, /wrong\.ts\(6,.*'number' is not assignable to parameter of type 'string'/);
  assert.match(out, /wrong\.ts\(7,.*'string' is not assignable to parameter of type 'readonly string\[\]'/);
  assert.match(out, /wrong\.ts\(8,.*'\[number, number\]' is not assignable to type 'Float32Array<ArrayBufferLike> \| ImageLike'/);
});
