// anybit for browsers: each session is a module Web Worker (worker.js) running the best build the
// page supports. Node resolves the "node" export condition to node.js instead (same API, in-process).

import { AnybitError } from './errors.js';
import { checkPoolSize, inProcessSession, isImageLike, Session } from './session.js';

export { AnybitError, Session };

/**
 * Starts a session. Options: build ('auto' | 'scalar' | 'simd' | 'relaxed' | 'threads'), threads
 * (pool size of the threads build; default min(hardwareConcurrency, 8)), worker (a Worker running
 * 'anybit/worker', for setups that must create it themselves; false: no worker, the runtime runs
 * on the calling thread, one thread unless build is 'threads'), prefetch (a model URL the worker
 * downloads while it loads the build and parses once it is up; the first load() of the same URL
 * without `width` takes that model).
 */
export async function createSession({ build = 'auto', threads, worker, prefetch } = {}) {
  const prefetchUrl = prefetch === undefined ? undefined : absoluteUrl(prefetch, 'prefetch');
  if (worker === false) return inPlaceSession({ build, threads, prefetch: prefetchUrl });
  if (typeof Worker !== 'function' && !worker) {
    throw new AnybitError('runtime_unavailable', 'Web Workers are unavailable here');
  }
  // Checked before a worker starts (its init checks the pool size again).
  checkPoolSize(threads);
  // This exact form (a literal URL relative to import.meta.url, type module) is what bundlers such
  // as Vite and webpack recognise and bundle as a worker.
  const w = worker ?? new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'anybit' });
  const pending = new Map();
  let nextId = 1;
  let broken = null;

  const fail = (err) => {
    broken = err;
    for (const { reject, settled } of pending.values()) {
      settled();
      reject(err);
    }
    pending.clear();
  };
  w.addEventListener('message', ({ data }) => {
    const p = pending.get(data?.id);
    if (!p) return;
    if (data.progress) {
      p.onProgress?.(data.progress);
    } else {
      pending.delete(data.id);
      p.settled();
      if (data.ok) p.resolve(data.result);
      else p.reject(new AnybitError(data.error?.code ?? 'internal', data.error?.message ?? 'unknown error'));
    }
  });
  w.addEventListener('error', (e) => {
    e.preventDefault?.();
    fail(new AnybitError('runtime_unavailable', `the anybit worker failed: ${e.message ?? 'could not start it'}`));
  });

  const noop = () => {};
  // `signal` aborting sends a cancel for the request, which the worker handles on arrival (ahead
  // of its queue); the request then rejects with code 'aborted' once the worker has stopped it.
  const call = (type, args, onProgress, signal) => {
    if (broken) return Promise.reject(broken);
    // The worker would fill a copy of the array: the caller's would stay as it was.
    if (type === 'run' && args?.options?.output !== undefined) {
      return Promise.reject(new AnybitError('invalid_argument', "output: only a session on the caller's thread (worker: false) writes into a given array; a worker session's output comes back transferred, without a copy"));
    }
    return new Promise((resolve, reject) => {
      const id = nextId++;
      let settled = noop;
      if (signal) {
        const cancel = () => w.postMessage({ id: nextId++, type: 'cancel', args: { id } });
        signal.addEventListener('abort', cancel, { once: true });
        settled = () => signal.removeEventListener('abort', cancel);
      }
      pending.set(id, { resolve, reject, onProgress, settled });
      try {
        const transfer = [];
        w.postMessage({ id, type, args: outgoing(type, args, transfer) }, transfer);
      } catch (e) {
        pending.delete(id);
        settled();
        reject(new AnybitError('invalid_argument', `cannot send ${type} to the worker: ${e.message}`));
      }
    });
  };

  const close = async () => {
    try {
      await call('dispose');
    } finally {
      w.terminate();
      fail(new AnybitError('disposed', 'the session is disposed'));
    }
  };

  try {
    return new Session(call, close, await call('init', { build, threads, prefetch: prefetchUrl }));
  } catch (e) {
    w.terminate();
    throw e;
  }
}

// The runtime on the caller's thread, as in Node: no message round trip per call, but every call
// blocks that thread for its pass (the page's own thread, for a page: fine for passes of a
// millisecond, not for an attack or a long text batch, which belong in a worker). One thread
// unless the threads build is asked for: the calling thread then leads its pool's workers and
// spins, never blocks, while they finish their parts (a page's thread may not Atomics.wait).
async function inPlaceSession({ build, threads, prefetch }) {
  checkPoolSize(threads);
  if (build !== 'threads' && threads !== undefined && threads !== 1) {
    throw new AnybitError('invalid_argument', `worker: false runs one thread unless build: 'threads' is asked for; got build ${build}, threads ${threads}`);
  }
  // Imported only here: a worker session's page never loads the runtime itself.
  const { createRuntime } = await import('./runtime.js');
  return inProcessSession(createRuntime({ inProcess: true }), { build, threads, prefetch });
}

// A URL as the page means it (a worker would resolve a relative one against its own script).
function absoluteUrl(source, what) {
  try {
    return new URL(source, globalThis.document?.baseURI ?? globalThis.location?.href).href;
  } catch {
    throw new AnybitError('invalid_argument', `${what}: not a URL: ${source}`);
  }
}

/**
 * Runs' inputs as they are sent: a copy of exactly the caller's elements whose buffer is
 * transferred (the worker takes it without a second copy). The caller's own arrays are never
 * detached, and a view into a larger buffer sends only its elements, where structured cloning
 * would copy the whole buffer (and an ImageData would be cloned as an ImageData).
 */
function outgoing(type, args, transfer) {
  if (type === 'run') return { ...args, input: movable(args.input, transfer) };
  if (type === 'runMany') return { ...args, inputs: args.inputs.map((x) => movable(x, transfer)) };
  return args;
}

function movable(input, transfer) {
  if (input instanceof Float32Array) {
    const copy = input.slice();
    transfer.push(copy.buffer);
    return copy;
  }
  if (isImageLike(input) && (input.data instanceof Uint8ClampedArray || input.data instanceof Uint8Array)) {
    const data = input.data.slice();
    transfer.push(data.buffer);
    return { width: input.width, height: input.height, data };
  }
  // Anything else goes as it is, for the runtime to refuse with its own message.
  return input;
}
