// anybit for browsers: each session is a module Web Worker (worker.js) running the best build the
// page supports. Node resolves the "node" export condition to node.js instead (same API, in-process).

import { AnybitError } from './errors.js';
import { checkPoolSize, chooseBuild, compileOnPage, detect, fetchBytes, isImageLike } from './runtime.js';
import { Session } from './session.js';

export { AnybitError, Session };

/**
 * Starts a session. Options: build ('auto' | 'scalar' | 'simd' | 'relaxed' | 'threads'), threads
 * (pool size of the threads build; default min(hardwareConcurrency, 8)), worker (a Worker running
 * 'anybit/worker', for setups that must create it themselves), prefetch (a model URL to download
 * while the runtime starts; a later load() of the same URL without `width` takes those bytes).
 */
export async function createSession({ build = 'auto', threads, worker, prefetch } = {}) {
  if (typeof Worker !== 'function' && !worker) {
    throw new AnybitError('runtime_unavailable', 'Web Workers are unavailable here');
  }
  // Checked before anything is fetched (the worker's init checks the pool size again).
  checkPoolSize(threads);
  const early = prefetch === undefined ? null : startPrefetch(prefetch);
  // A worker takes tens to hundreds of ms to start and then to import the runtime; the page
  // compiles the build meanwhile (the same choice the worker makes; a mismatch is ignored there).
  let compiling = null;
  let variant = null;
  try {
    variant = chooseBuild(detect(), build).variant;
    compiling = compileOnPage(variant);
  } catch {
    // A build that cannot run here: the worker's init says why, with its own error.
  }
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
  // `owned`: buffers of the package's own (a prefetched model) that travel transferred.
  const post = (type, args, onProgress, signal, owned = []) => {
    if (broken) return Promise.reject(broken);
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
        const transfer = [...owned];
        w.postMessage({ id, type, args: outgoing(type, args, transfer) }, transfer);
      } catch (e) {
        pending.delete(id);
        settled();
        reject(new AnybitError('invalid_argument', `cannot send ${type} to the worker: ${e.message}`));
      }
    });
  };

  // With `prefetch`, the downloaded bytes go to the worker as a load queued behind init, so the
  // model is parsed the moment the runtime is up; the caller's first load() of that URL (without
  // `width`) takes that load's result and progress. Any other first load drops it (not yet sent:
  // never sent; sent: replaced by the caller's, which runs after it).
  let prefetched = null;
  if (early) {
    const relay = { target: null, last: null };
    const report = (p) => {
      relay.last = p;
      relay.target?.(p);
    };
    const sent = early.bytes(report).then(
      (bytes) => (early.dropped ? null : { result: post('load', { bytes }, report, undefined, [bytes.buffer]) }),
      () => null, // a failed download: the caller's load fetches again and reports the failure
    );
    sent.then((x) => x?.result.catch(() => {})); // the caller's load reports a failure
    prefetched = { ...early, relay, sent };
  }
  const call = (type, args, onProgress, signal) => {
    if (type !== 'load' || !prefetched) return post(type, args, onProgress, signal);
    const p = prefetched;
    prefetched = null;
    if (args.url !== p.url || args.width !== undefined) {
      p.drop();
      return post(type, args, onProgress, signal);
    }
    p.relay.target = onProgress ?? null;
    if (p.relay.last) onProgress?.(p.relay.last);
    return p.sent.then((x) => x?.result ?? post(type, args, onProgress, signal));
  };
  const close = async () => {
    early?.drop();
    try {
      await call('dispose');
    } finally {
      w.terminate();
      fail(new AnybitError('disposed', 'the session is disposed'));
    }
  };

  try {
    const started = post('init', { build, threads, compiled: compiling !== null });
    if (compiling) {
      compiling.then((module) => {
        if (!broken) w.postMessage({ type: 'module', args: module && { variant, module } });
      });
    }
    return new Session(call, close, await started);
  } catch (e) {
    early?.drop();
    w.terminate();
    throw e;
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

/**
 * Starts downloading a model on the page. `bytes(onProgress)` resolves to the file's bytes,
 * reporting to `onProgress` what has arrived (at once) and what arrives later; `drop()` stops the
 * download and marks it unwanted (`dropped`).
 */
function startPrefetch(source) {
  let url;
  try {
    url = new URL(source, globalThis.document?.baseURI ?? globalThis.location?.href).href;
  } catch {
    throw new AnybitError('invalid_argument', `prefetch: not a URL: ${source}`);
  }
  const controller = new AbortController();
  let listener = null;
  let last = null;
  const download = fetchBytes(url, (p) => {
    last = p;
    listener?.(p);
  }, null, 0, null, controller.signal).then((r) => r.bytes);
  download.catch(() => {}); // a failure is the later load's to report
  const self = {
    url,
    dropped: false,
    drop() {
      self.dropped = true;
      controller.abort();
    },
    bytes(onProgress) {
      listener = onProgress ?? null;
      if (last && listener) listener(last);
      return download;
    },
  };
  return self;
}
