// anybit for Node (>= 20): the single-threaded SIMD build (scalar where SIMD is missing) runs
// in-process; the same Session API as in browsers, without a worker.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { AnybitError } from './errors.js';
import { createRuntime } from './runtime.js';
import { inProcessSession, Session } from './session.js';

export { AnybitError, Session };

/** Starts a session. Options: build ('auto' | 'scalar' | 'simd' | 'relaxed'). */
export async function createSession({ build = 'auto', threads } = {}) {
  if (threads !== undefined && threads !== 1) {
    throw new AnybitError('invalid_argument', `Node runs one thread; threads must be 1 or left out, got ${threads}`);
  }
  const runtime = createRuntime({
    threadsAllowed: false,
    binaryFor: (variant) => readFile(new URL(`./wasm/${variant}/anybit_bg.wasm`, import.meta.url)),
    async readUrl(url, onProgress) {
      if (!url.startsWith('file:')) return undefined;
      let bytes;
      try {
        bytes = await readFile(fileURLToPath(url));
      } catch (e) {
        throw new AnybitError('fetch_failed', `could not read ${url}: ${e.message}`);
      }
      onProgress?.({ loaded: bytes.length, total: bytes.length });
      return bytes;
    },
  });
  return inProcessSession(runtime, { build });
}
