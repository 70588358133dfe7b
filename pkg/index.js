// anybit for browsers: each session is a module Web Worker (worker.js) running the best build the
// page supports. Node resolves the "node" export condition to node.js instead (same API, in-process).

import { AnybitError } from './errors.js';
import { Session } from './session.js';

export { AnybitError, Session };

/**
 * Starts a session. Options: build ('auto' | 'scalar' | 'simd' | 'relaxed' | 'threads'), threads
 * (pool size of the threads build; default min(hardwareConcurrency, 8)), worker (a Worker running
 * 'anybit/worker', for setups that must create it themselves).
 */
export async function createSession({ build = 'auto', threads, worker } = {}) {
  if (typeof Worker !== 'function' && !worker) {
    throw new AnybitError('runtime_unavailable', 'Web Workers are unavailable here');
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

  // `signal` aborting sends a cancel for the request, which the worker handles on arrival (ahead
  // of its queue); the request then rejects with code 'aborted' once the worker has stopped it.
  const call = (type, args, onProgress, signal) => {
    if (broken) return Promise.reject(broken);
    return new Promise((resolve, reject) => {
      const id = nextId++;
      const cancel = () => w.postMessage({ id: nextId++, type: 'cancel', args: { id } });
      signal?.addEventListener('abort', cancel, { once: true });
      const settled = () => signal?.removeEventListener('abort', cancel);
      pending.set(id, { resolve, reject, onProgress, settled });
      try {
        w.postMessage({ id, type, args });
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
    return new Session(call, close, await call('init', { build, threads }));
  } catch (e) {
    w.terminate();
    throw e;
  }
}
