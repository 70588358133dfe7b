// The anybit runtime inside a dedicated module Web Worker, so that inference never blocks a page
// and the threads build may block on Atomics.wait. Start it with
//   new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })
// or use client.js, which wraps this protocol in promises.
//
// Protocol: the page posts {id, type, ...args}; the worker answers {id, ok: true, result} or
// {id, ok: false, error: {code, message}}, and {id, progress: {loaded, total, planes, planeTotal}}
// while a model downloads (planes: how many of its bit planes, most significant first, are in).
// Requests run one at a time in arrival order.
//   init     {base?, variant?: 'auto'|'scalar'|'simd'|'relaxed'|'threads', threads?}
//            -> {build, reason}   (load does this implicitly with the defaults)
//   load     {bytes: ArrayBuffer|Uint8Array} or {url}     -> info (see below)
//   info                                                 -> info
//   setWidth {width}                                     -> info
//   setThreads {threads}                                 -> info (1..the pool's size)
//   run      {input: Float32Array}                       -> result
//   runImage {image: ImageData|{width,height,data}, options?: {invert, fit}} -> result
//   calibrate {minMs?}                                   -> calibration (Session.calibrate)
//   decide   {budget?: {latencyMs?, maxBytes?, maxMemoryBytes?}} -> decision (Session.decide; no switch)
//   benchKernels {config: object|string}                 -> the benchmark report
//   dispose                                              -> null (frees the model)
// info = {name, inputShape, labels, widths: [{w, a}], width, threads, eval, build, reason}
// result = {logits, probabilities, top: [{index, label, probability}], predicted, label, width, ms}
// Error codes: those of the Rust runtime (bad_magic, truncated, unsupported_width, ...) plus
// runtime_unavailable (no build could load), fetch_failed, no_model, invalid_argument, internal.

import { codedError, loadRuntime } from './loader.js';
import { PlaneCounter } from './planes.js';

const DEFAULT_BASE = new URL('./pkg/', import.meta.url);

let starting = null; // the first init's promise: a failed start fails every later request alike
let runtime = null; // {wasm, build, reason}
let session = null;
let queue = Promise.resolve();

async function init({ base = DEFAULT_BASE, variant = 'auto', threads } = {}) {
  starting ??= loadRuntime({ base: new URL(base, self.location.href), variant, threads });
  runtime = await starting;
  if (variant !== 'auto' && variant !== runtime.build.variant) {
    throw codedError('invalid_argument', `the ${runtime.build.variant} build is already loaded in this worker`);
  }
  return runtime;
}

function info() {
  if (!session) throw codedError('no_model', 'no model is loaded: send load first');
  return { ...session.info(), build: runtime.wasm.buildInfo(), reason: runtime.reason };
}

async function fetchBytes(url, id) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw codedError('fetch_failed', `could not fetch ${url}: ${e.message}`);
  }
  if (!res.ok) throw codedError('fetch_failed', `could not fetch ${url}: HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length')) || 0;
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const chunks = [];
  const planes = new PlaneCounter();
  let loaded = 0;
  for (const reader = res.body.getReader(); ; ) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    self.postMessage({ id, progress: { loaded, total, ...planes.add(value, loaded) } });
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

const handlers = {
  async init(msg) {
    const rt = await init(msg);
    return { build: rt.wasm.buildInfo(), reason: rt.reason };
  },
  async load(msg) {
    let bytes;
    if (msg.bytes) bytes = msg.bytes instanceof Uint8Array ? msg.bytes : new Uint8Array(msg.bytes);
    else if (msg.download) bytes = await msg.download;
    else throw codedError('invalid_argument', 'load needs bytes or url');
    await init();
    const next = runtime.wasm.Session.load(bytes);
    session?.free();
    session = next;
    return info();
  },
  info,
  setWidth({ width }) {
    info();
    session.setWidth(width);
    return info();
  },
  setThreads({ threads }) {
    info();
    if (typeof threads !== 'number') throw codedError('invalid_argument', 'setThreads needs a number');
    session.setThreads(threads);
    return info();
  },
  run({ input }) {
    info();
    if (!(input instanceof Float32Array)) throw codedError('invalid_argument', 'run needs a Float32Array');
    return session.run(input);
  },
  runImage({ image, options }) {
    info();
    return session.runImage(image, options);
  },
  calibrate({ minMs }) {
    info();
    return session.calibrate(minMs);
  },
  decide({ budget }) {
    info();
    return session.decide(budget);
  },
  async benchKernels({ config }) {
    await init();
    if (typeof runtime.wasm.benchKernels !== 'function') {
      throw codedError('runtime_unavailable', 'this build has no kernel benchmark');
    }
    return runtime.wasm.benchKernels(typeof config === 'string' ? config : JSON.stringify(config ?? {}));
  },
  dispose() {
    session?.free();
    session = null;
    return null;
  },
};

function transferables(result) {
  return ['logits', 'probabilities'].filter((k) => result?.[k]?.buffer).map((k) => result[k].buffer);
}

async function handle(msg) {
  const { id, type } = msg;
  try {
    const handler = Object.hasOwn(handlers, type) ? handlers[type] : null;
    if (!handler) throw codedError('invalid_argument', `unknown request type "${type}"`);
    const result = await handler(msg);
    self.postMessage({ id, ok: true, result }, transferables(result));
  } catch (e) {
    // A wasm trap (a Rust panic aborts) leaves the instance unusable: say so, drop the session.
    const trap = e instanceof WebAssembly.RuntimeError;
    if (trap) session = null;
    const message = trap ? `the runtime crashed (${e.message}); reload the page` : String(e?.message ?? e);
    self.postMessage({ id, ok: false, error: { code: e?.code ?? 'internal', message } });
  }
}

self.addEventListener('message', ({ data }) => {
  if (typeof data?.type !== 'string') return;
  // A model download need not wait for the runtime to compile or for earlier requests: start it
  // now (the catch marks the rejection handled; load awaits the same promise and reports it).
  if (data.type === 'load' && data.url && !data.bytes) {
    data.download = fetchBytes(data.url, data.id);
    data.download.catch(() => {});
  }
  queue = queue.then(() => handle(data));
});
