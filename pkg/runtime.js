// The runtime in-process: picks a build, instantiates it, and answers the requests a Session makes
// (`handle(type, args, onProgress)`). worker.js runs it inside a Web Worker; node.js runs it directly.

import { AnybitError, toAnybitError } from './errors.js';
import { checkPoolSize, describe, isImageLike } from './session.js';

export const BUILDS = ['scalar', 'simd', 'relaxed', 'threads'];

/**
 * The one check of a width (bits per weight) before a request reaches wasm: every API taking a
 * width (load with {width}, setWidth) goes through it, so each refuses alike. `width` if it is an
 * integer in 1..=8, else an AnybitError with code `unsupported_width`.
 */
function checkWidth(width) {
  if (!(Number.isInteger(width) && width >= 1 && width <= 8)) {
    throw new AnybitError('unsupported_width', `width must be an integer in 1..=8, got ${JSON.stringify(width)}`);
  }
  return width;
}

/** The attacks `Session.attack` runs (the runtime's names; docs/ATTACKS.md). */
export const ATTACKS = ['fgsm', 'bim', 'pgd-linf', 'pgd-l2', 'mi-fgsm', 'deepfool', 'cw-l2'];

// An attack runs in slices of about this many ms; between two the event loop is free, so progress
// reaches the caller and a cancel is seen: the slice bounds how long a cancel waits.
const ATTACK_SLICE_MS = 40;

// The JS type of every key of an attack request. Ranges are the runtime's to check (one place,
// the same for every caller); this says which key is wrong before wasm sees the object.
const ATTACK_KEYS = {
  attack: 'string', eps: 'number', steps: 'number', stepSize: 'number', target: 'number', advRelu: 'boolean',
  width: 'number', label: 'number', seed: 'number', round: 'boolean', image: 'object', imageOptions: 'object',
};

// The runtime checks text too (typed errors from wasm); this says what was passed, in JS terms.
function checkText(text) {
  if (typeof text !== 'string') {
    const what = text === null ? 'null' : Array.isArray(text) ? 'an array' : typeof text;
    throw new AnybitError('invalid_argument', `text must be a string, got ${what}`);
  }
  return text;
}

function checkAttackRequest(request) {
  if (!request || typeof request !== 'object') {
    throw new AnybitError('invalid_argument', 'attack needs a request object: {image, attack, eps?, steps?, ...}');
  }
  for (const [key, value] of Object.entries(request)) {
    const type = ATTACK_KEYS[key];
    if (!Object.hasOwn(ATTACK_KEYS, key)) {
      throw new AnybitError('invalid_argument', `unknown attack request key "${key}"; the keys are ${Object.keys(ATTACK_KEYS).join(', ')}`);
    }
    if (value !== undefined && (typeof value !== type || value === null)) {
      const shown = typeof value === 'number' || value == null ? String(value) : JSON.stringify(value) ?? typeof value;
      throw new AnybitError('invalid_argument', `attack request: ${key} must be a ${type}, got ${shown}`);
    }
  }
  if (request.attack === undefined) throw new AnybitError('invalid_argument', `attack request: name the attack (one of ${ATTACKS.join(', ')})`);
  if (request.width !== undefined) checkWidth(request.width);
  const { image } = request;
  if (!(image instanceof Float32Array || (image && 'data' in image && 'width' in image && 'height' in image))) {
    throw new AnybitError('invalid_argument', 'attack request: image must be a Float32Array or an ImageData ({width, height, data})');
  }
  return request;
}

const aborted = () => new AnybitError('aborted', 'the attack was cancelled');

function runOne(session, input, options) {
  // `output`: an array to write the output into (any input); the other options are an image's.
  const { output, ...imageOptions } = options ?? {};
  if (output !== undefined && !(output instanceof Float32Array)) {
    throw new AnybitError('invalid_argument', `output must be a Float32Array, got ${describe(output)}`);
  }
  const image = Object.keys(imageOptions).length > 0 ? imageOptions : undefined;
  if (input instanceof Float32Array) {
    if (image !== undefined) throw new AnybitError('invalid_argument', `options ${Object.keys(image).join(', ')} apply to images only`);
    return session.run(input, output);
  }
  if (isImageLike(input)) return session.runImage(input, image, output);
  throw new AnybitError('invalid_argument', 'run needs a Float32Array or an ImageData ({width, height, data})');
}

// The next macrotask, so that messages (a cancel) are handled between slices. setTimeout would be
// clamped to 4 ms after a few nested calls; a MessageChannel message is not.
function nextTask() {
  if (typeof setImmediate === 'function') return new Promise((r) => setImmediate(r));
  return new Promise((r) => {
    const c = new MessageChannel();
    c.port1.onmessage = () => {
      c.port1.close();
      r();
    };
    c.port2.postMessage(null);
  });
}

// Literal import paths, so that bundlers (Vite, Rollup, webpack) see every build and its wasm file.
const IMPORTS = {
  scalar: () => import('./wasm/scalar/anybit.js'),
  simd: () => import('./wasm/simd/anybit.js'),
  relaxed: () => import('./wasm/relaxed/anybit.js'),
  threads: () => import('./wasm/threads/anybit.js'),
};

// Most threads started by default: past this the small layers of the shipped models stop gaining.
const DEFAULT_MAX_THREADS = 8;

// Smallest modules using one SIMD128 op (i8x16.popcnt) and one relaxed-SIMD op
// (i8x16.relaxed_swizzle); WebAssembly.validate says whether this engine has the feature.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253,
  15, 253, 128, 2, 11,
]);

function validates(bytes) {
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

function sharedMemoryWorks() {
  if (typeof SharedArrayBuffer !== 'function' || globalThis.crossOriginIsolated !== true) return false;
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

/**
 * What this engine offers. `threadsAllowed` is false in Node (the threads build needs Web Workers);
 * `inProcess`: the runtime runs on the caller's thread (Node, or a browser session with `worker:
 * false`), where 'auto' takes one thread.
 */
export function detect({ threadsAllowed = true, inProcess = !threadsAllowed } = {}) {
  const node = typeof process === 'object' && typeof process.versions?.node === 'string';
  return {
    simd: validates(SIMD_PROBE),
    // Node < 22 (V8 < 12) has pre-standard relaxed SIMD whose i8 dot gives wrong sums.
    relaxed: validates(RELAXED_PROBE) && !(node && Number(process.versions.node.split('.')[0]) < 22),
    sharedMemory: threadsAllowed && sharedMemoryWorks(),
    worker: threadsAllowed && typeof Worker === 'function',
    cores: Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1),
    inProcess,
  };
}

/**
 * The build to load and why. 'auto' takes threads when cross-origin isolated with shared memory,
 * workers, two or more cores and relaxed SIMD (the threads build uses it); else relaxed SIMD on
 * one thread where the engine has it (its i8 dot product runs 3-8-bit layers up to 2.5x faster
 * than plain SIMD: BENCHMARKS.md), else SIMD, else scalar.
 */
export function chooseBuild(caps, requested = 'auto') {
  if (requested === 'auto') {
    if (!caps.simd) return { variant: 'scalar', reason: 'no WebAssembly SIMD in this engine: portable scalar build' };
    const [one, build] = caps.relaxed ? ['relaxed', 'relaxed-SIMD build'] : ['simd', 'SIMD build (no relaxed SIMD here)'];
    if (caps.inProcess) {
      return { variant: one, reason: `in the caller's thread (Node, or a session with worker: false): ${build} on one thread` };
    }
    if (!caps.sharedMemory) {
      return { variant: one, reason: `no shared memory (not a cross-origin isolated page): ${build} on one thread` };
    }
    if (!caps.worker || caps.cores < 2) {
      return { variant: one, reason: `${caps.cores} core(s) or no nested workers: ${build} on one thread` };
    }
    if (!caps.relaxed) {
      return { variant: 'simd', reason: 'no relaxed SIMD, which the threads build uses: SIMD build on one thread' };
    }
    return { variant: 'threads', reason: 'cross-origin isolated with shared memory: relaxed-SIMD build with threads' };
  }
  if (!BUILDS.includes(requested)) {
    throw new AnybitError('invalid_argument', `unknown build "${requested}"; use auto or one of ${BUILDS.join(', ')}`);
  }
  const missing = {
    scalar: null,
    simd: caps.simd ? null : 'this engine has no WebAssembly SIMD',
    relaxed: caps.relaxed ? null : 'this engine has no (standard) relaxed SIMD',
    threads: !caps.simd ? 'this engine has no WebAssembly SIMD'
      : !caps.relaxed ? 'this engine has no (standard) relaxed SIMD, which the threads build uses'
      : !caps.sharedMemory ? 'no shared memory: needs a cross-origin isolated page (COOP/COEP headers) in a browser'
      : !caps.worker ? 'Web Workers are unavailable' : null,
  }[requested];
  if (missing) throw new AnybitError('runtime_unavailable', `the ${requested} build cannot run here: ${missing}`);
  return { variant: requested, reason: `${requested} build requested` };
}

/**
 * Where each build's binary lies, relative to this module (literal `new URL(..., import.meta.url)`
 * forms, which bundlers rewrite to the emitted files).
 */
const WASM_URLS = {
  scalar: () => new URL('./wasm/scalar/anybit_bg.wasm', import.meta.url),
  simd: () => new URL('./wasm/simd/anybit_bg.wasm', import.meta.url),
  relaxed: () => new URL('./wasm/relaxed/anybit_bg.wasm', import.meta.url),
  threads: () => new URL('./wasm/threads/anybit_bg.wasm', import.meta.url),
};

/**
 * Fetches and compiles `variant`'s binary: streaming compilation (the bytes compile as they
 * arrive) when the server says `application/wasm`, else from the whole body. Resolves to a
 * WebAssembly.Module, or to null when anything fails (the generated glue then loads the binary
 * itself and reports a real failure with its own error).
 */
async function compileBuild(variant) {
  try {
    const res = await fetch(WASM_URLS[variant]());
    if (!res.ok) return null;
    const streaming = typeof WebAssembly.compileStreaming === 'function' && /^application\/wasm\b/.test(res.headers.get('content-type') ?? '');
    return await (streaming ? WebAssembly.compileStreaming(res) : WebAssembly.compile(await res.arrayBuffer()));
  } catch {
    return null;
  }
}

// `module`: a promise of this variant's WebAssembly.Module (compileBuild, started alongside the
// glue's import: the binary's download and compilation overlap the glue's), or of null. The
// threads build's pool starts without being waited for: its workers take 150-400 ms to come up
// in a browser, and passes run on this thread alone until they are (`pool` settles then).
// Resolves to {wasm, pool}: the glue module and the pool's promise (null without threads).
async function instantiate(variant, binaryFor, threads, module = null) {
  let wasm;
  try {
    const [glue, compiled] = await Promise.all([IMPORTS[variant](), module]);
    wasm = glue;
    // Nothing given: the generated glue fetches anybit_bg.wasm beside itself (new URL(...,
    // import.meta.url)) with streaming compilation.
    const binary = compiled ?? (binaryFor ? await binaryFor(variant) : undefined);
    await wasm.default(binary === undefined ? undefined : { module_or_path: binary });
  } catch (e) {
    throw new AnybitError('runtime_unavailable', `cannot load the ${variant} build: ${e?.message ?? e}`);
  }
  let pool = null;
  if (variant === 'threads') {
    try {
      pool = pools.get(wasm) ?? wasm.initThreads(threads);
      pools.set(wasm, pool);
    } catch (e) {
      throw new AnybitError('runtime_unavailable', `cannot start the threads build's pool: ${e?.message ?? e}`);
    }
  }
  return { wasm, pool };
}

// Glue module -> its pool's promise. A pool belongs to the module's one instance: a worker holds
// one session, but every `worker: false` session of a page shares its instance, so the first
// starts the pool (and fixes its size) and the others use it.
const pools = new WeakMap();

// First request of a progressive load: enough for the header of any model the runtime ships
// (wasm layout says whether more is needed), small next to the planes of a real model.
const HEADER_PROBE = 16 << 10;

// Past this many bytes without a complete header, stop re-reading the start of a download.
const MAX_HEADER_SEARCH = 1 << 20;

/**
 * The file's layout, learnt while a model downloads: once its first bytes hold the header, one
 * wasm `layout` call gives where every plane prefix ends (`prefixEnds`), and a progress event can
 * say how many planes are complete: {planes, planeTotal}. Nothing is added for bytes that are not
 * a model file.
 */
function planeCounter(wasm) {
  let layout = null; // false: not a model, or a header too long to look for
  return {
    wants: () => layout === null,
    /** `head`: the file's first bytes so far. */
    learn(head) {
      if (layout !== null || head.length < 8) return;
      try {
        const got = wasm.layout(head);
        if (got.prefixEnds) layout = got;
        else if (head.length > MAX_HEADER_SEARCH) layout = false;
      } catch {
        layout = false; // not a model: the load reports it
      }
    },
    /** The layout once learnt, else null. */
    layout: () => layout || null,
    at: (loaded) => {
      if (!layout) return {};
      const ends = layout.prefixEnds.slice(1);
      return { planes: ends.filter((e) => e <= loaded).length, planeTotal: ends.length };
    },
  };
}

/**
 * GETs `url`, or with `range` = [start, end) only those bytes (HTTP Range); `signal` aborts it.
 * Returns {bytes, start, partial}: `partial` is false when the server ignored the Range and sent
 * the whole file (status 200), and `start` is where the bytes begin in the file. Progress is
 * reported in bytes of this response, `base` added, with the planes complete when `counter`
 * (planeCounter) is given.
 */
async function fetchBytes(url, onProgress, range = null, base = 0, counter = null, signal = undefined) {
  let res;
  try {
    res = await fetch(url, { headers: range ? { Range: `bytes=${range[0]}-${range[1] - 1}` } : undefined, signal });
  } catch (e) {
    throw new AnybitError('fetch_failed', `could not fetch ${url}: ${e.message}`);
  }
  if (!res.ok) throw new AnybitError('fetch_failed', `could not fetch ${url}: HTTP ${res.status} ${res.statusText}`);
  let start = 0;
  const partial = range !== null && res.status === 206;
  if (partial) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== range[0]) {
      throw new AnybitError('fetch_failed', `${url}: the server answered bytes ${res.headers.get('content-range')} to a request for ${range[0]}-${range[1] - 1}`);
    }
    start = range[0];
  }
  // A compressed response's Content-Length counts compressed bytes, not the ones received here.
  const length = Number(res.headers.get('content-length'));
  let total = length > 0 && !res.headers.get('content-encoding') ? length : null;
  const chunks = [];
  let loaded = 0;
  const report = () => {
    if (counter?.wants() && start === 0 && base === 0) counter.learn(chunks.length === 1 ? chunks[0] : concat(chunks));
    onProgress?.({ loaded: base + loaded, total: total === null ? null : base + total, ...counter?.at(base + loaded) });
  };
  if (res.body) {
    for (const reader = res.body.getReader(); ; ) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      if (total !== null && loaded > total) total = null;
      report();
    }
  } else {
    chunks.push(new Uint8Array(await res.arrayBuffer()));
    loaded = chunks[0].length;
    total = loaded;
    report();
  }
  return { bytes: concat(chunks), start, partial };
}

function concat(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Fetches the bytes [from, end) of `url` (at least; a server that ignores the Range sends the whole
 * file, of which the part from `from` on is kept). Returns {more, ranged, received}.
 */
async function fetchRest(url, from, end, onProgress, counter = null) {
  if (end <= from) return { more: new Uint8Array(0), ranged: true, received: 0 };
  const { bytes, partial } = await fetchBytes(url, onProgress, [from, end], from, counter);
  const more = partial ? bytes : bytes.subarray(from);
  if (from + more.length < end) {
    throw new AnybitError('truncated', `${url} ended after ${from + more.length} bytes; ${end} are needed`);
  }
  return { more, ranged: partial, received: bytes.length };
}

/** `have` extended to at least `end` bytes of `url`. */
async function fetchMore(url, have, end, onProgress, counter) {
  const { more, ranged } = await fetchRest(url, have.length, end, onProgress, counter);
  return { bytes: more.length ? concat([have, more]) : have, ranged };
}

/**
 * Progressive load: only the header, the tensors and the first `planes` bit planes, by HTTP Range
 * requests on the one file (a server that ignores Range sends it whole, which is used as is).
 * The layout comes from the counter, which learnt it from the first bytes; wasm is asked again
 * only when the header is longer than the first request (or to say why the bytes are no model).
 * Returns {bytes, ranged, layout}.
 */
async function fetchPrefix(wasm, url, planes, onProgress, counter) {
  const first = await fetchBytes(url, onProgress, [0, HEADER_PROBE], 0, counter);
  if (!first.partial) return { bytes: first.bytes, ranged: false, layout: counter.layout() };
  let bytes = first.bytes;
  let layout = counter.layout() ?? wasm.layout(bytes);
  if (!layout.prefixEnds) {
    ({ bytes } = await fetchMore(url, bytes, layout.headerLen, onProgress, counter));
    counter.learn(bytes);
    layout = counter.layout() ?? wasm.layout(bytes);
  }
  const end = layout.prefixEnds[planes];
  let ranged = true;
  if (end > bytes.length) ({ bytes, ranged } = await fetchMore(url, bytes, end, onProgress, counter));
  return { bytes, ranged, layout };
}

/**
 * SHA-256 of each section of a model file by WebCrypto: at native speed and off this thread,
 * where wasm hashes in the engine's baseline tier on a first load (BENCHMARKS.md, "Later
 * sections, WebCrypto digests, a cheaper header"); the wasm module compares them with the file's.
 * `sections`: flat `[start, end)` pairs in file offsets, `bytes` starting at file offset `at`.
 * Returns the digests, 32 bytes each in one array, or undefined for the wasm module to hash the
 * sections itself: without WebCrypto, where it refuses the bytes (views of shared memory), or for
 * a section that began in bytes sent earlier.
 */
async function digestsOf(bytes, sections, at = 0) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle || sections.some((x) => x < at)) return undefined;
  try {
    const parts = [];
    for (let i = 0; i < sections.length; i += 2) parts.push(subtle.digest('SHA-256', bytes.subarray(sections[i] - at, sections[i + 1] - at)));
    return concat((await Promise.all(parts)).map((d) => new Uint8Array(d)));
  } catch {
    return undefined;
  }
}

/**
 * A wasm Session of a whole model file, or of a prefix holding at least `planes` bit planes
 * (progressive loading), its sections hashed by `digestsOf` (or by wasm, where that gives none).
 */
async function loadChecked(wasm, bytes, planes) {
  const file = planes === undefined ? wasm.Unhashed.parse(bytes) : wasm.Unhashed.parsePrefix(bytes, planes);
  return file.load(await digestsOf(bytes, file.sections()));
}

function asBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && bytes instanceof SharedArrayBuffer)) {
    return new Uint8Array(bytes);
  }
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new AnybitError('invalid_argument', 'a model must be a URL, an ArrayBuffer or a Uint8Array');
}

/**
 * One runtime instance with at most one model. Options of `handle('init', ...)`: build ('auto' or a
 * name), threads (pool size of the threads build). `env`: {binaryFor(variant) -> bytes (Node),
 * readUrl(url, onProgress) -> bytes for URLs fetch cannot read (Node file: URLs), threadsAllowed,
 * inProcess (detect())}.
 */
export function createRuntime(env = {}) {
  const engineCaps = () => detect({ threadsAllowed: env.threadsAllowed ?? true, inProcess: env.inProcess });
  let starting = null;
  let wasm = null;
  // The threads build's pool starting (instantiate), else null.
  let pool = null;
  let reason = null; // why this build: reported with buildInfo()
  let session = null;
  // A progressively loaded model: where more planes come from and how many bytes of it are in.
  let source = null;
  // While an attack runs (its slices leave the event loop free), other requests wait for its end:
  // they would otherwise run between slices on a session the attack is using (in Node; the worker
  // also queues its requests).
  let busy = null;

  // A model download started by init's `prefetch` (and its parse, once the runtime is up): the
  // first load of the same URL without a width takes it (`takePrefetch`).
  let prefetched = null;

  // Per build, the promise of its compiled module (compileBuild): started by warm() or init,
  // whichever comes first, and compiled once.
  const compiled = new Map();
  const compileOnce = (variant) => {
    if (!compiled.has(variant)) compiled.set(variant, compileBuild(variant));
    return compiled.get(variant);
  };

  /**
   * Starts fetching and compiling the build that init with build 'auto' will choose (and imports
   * its glue), before init arrives: a worker started early (say, from a classic script in its
   * page's head, before the page has laid out) gets the worker's message {type: 'warm'}. Init
   * with another build ignores it.
   * Nothing to do where the binary is given (Node) or once init has run.
   */
  function warm() {
    if (starting || env.binaryFor) return;
    try {
      const { variant } = chooseBuild(engineCaps(), 'auto');
      compileOnce(variant);
      IMPORTS[variant]().catch(() => {}); // init imports it again (the same module) and reports
    } catch {
      // init detects and chooses again, and says what failed
    }
  }

  /**
   * `prefetch`: a model URL to download while the build loads, and to parse as soon as it has;
   * the first `load` of that URL without `width` takes the result (any other first load drops it).
   */
  async function init({ build: requested = 'auto', threads, prefetch } = {}) {
    if (starting) return starting;
    if (typeof prefetch === 'string') prefetched = startPrefetch(prefetch);
    starting = (async () => {
      // Checked before choosing: a bad count must not read as "threads failed, fall back to SIMD".
      checkPoolSize(threads);
      const caps = engineCaps();
      const chosen = chooseBuild(caps, requested);
      reason = chosen.reason;
      const n = threads ?? Math.min(caps.cores, DEFAULT_MAX_THREADS);
      // Without a binaryFor (browsers), the binary is fetched and compiled here, alongside the glue.
      const module = env.binaryFor ? null : compileOnce(chosen.variant);
      try {
        ({ wasm, pool } = await instantiate(chosen.variant, env.binaryFor, n, module));
      } catch (e) {
        if (chosen.variant !== 'threads' || requested !== 'auto') throw e;
        reason = `threads build failed (${e.message}): relaxed-SIMD build on one thread`;
        ({ wasm, pool } = await instantiate('relaxed', env.binaryFor, 1));
      }
      // A pool that fails to come up leaves every run on this thread; the build says so.
      pool?.catch((e) => {
        reason = `the thread pool did not start (${e?.message ?? e}): the threads build runs on one thread`;
      });
      // The prefetched model is parsed after this answer has gone (in the next task): while the
      // caller reads it and sends the load that takes the session.
      if (prefetched) prefetched.session = prefetched.bytes.then((b) => nextTask().then(() => (b ? parseModel(b) : null)));
      return buildInfo();
    })();
    return starting;
  }

  // Downloads `url` (progress kept for whoever takes it); `bytes` resolves to null on failure,
  // left for the load that takes it to fetch again and report.
  function startPrefetch(url) {
    const controller = new AbortController();
    const p = { url, controller, last: null, listener: null, session: null };
    const report = (e) => {
      p.last = e;
      p.listener?.(e);
    };
    p.bytes = fetchBytes(url, report, null, 0, null, controller.signal).then((r) => r.bytes, () => null);
    return p;
  }

  // A model's bytes as a wasm Session, or the error it gives.
  async function parseModel(bytes) {
    try {
      return { bytes, session: await loadChecked(wasm, bytes) };
    } catch (e) {
      return { bytes, error: e };
    }
  }

  // The prefetched load for (`url`, `width`), or null (and it is dropped) when it is not for them.
  function takePrefetch(url, width) {
    const p = prefetched;
    prefetched = null;
    if (!p) return null;
    if (url === p.url && width === undefined) return p;
    p.controller.abort();
    p.session?.then((r) => r?.session?.free());
    return null;
  }

  /**
   * What this device offers: the engine's features and whether threads can run (detect(), the
   * part that must be known before a build is chosen) with the device facts the loaded build reads
   * (cores, memory, cross-origin isolation, battery, connection: wasm deviceFacts), and the build.
   */
  async function probe() {
    const t0 = globalThis.performance?.now() ?? 0;
    const caps = engineCaps();
    const facts = await wasm.deviceFacts();
    return {
      simd: caps.simd,
      relaxedSimd: caps.relaxed,
      crossOriginIsolated: facts.crossOriginIsolated,
      sharedMemory: caps.sharedMemory,
      workers: caps.worker,
      reportedCores: facts.reportedCores,
      cores: facts.cores,
      deviceMemoryGiB: facts.deviceMemoryGiB,
      connection: facts.connection,
      battery: facts.battery,
      tookMs: (globalThis.performance?.now() ?? 0) - t0,
      build: buildInfo(),
    };
  }

  function buildInfo() {
    if (!wasm) throw new AnybitError('internal', 'the runtime is not started');
    return { ...wasm.buildInfo(), reason };
  }

  function current() {
    if (!session) throw new AnybitError('no_model', 'no model is loaded: call load first');
    return session;
  }

  function info() {
    const i = current().info();
    return source ? { ...i, transfer: { ...source.transfer } } : { ...i, transfer: null };
  }

  const handlers = {
    init,
    buildInfo,
    async load({ bytes, url, width }, onProgress) {
      let next;
      let from = null;
      if (width !== undefined) {
        checkWidth(width);
        if (url === undefined) throw new AnybitError('invalid_argument', 'width (progressive loading) needs a URL');
      }
      const counter = planeCounter(wasm);
      const early = takePrefetch(url, width);
      if (early) {
        // The prefetch's progress so far, then the rest as it comes; its session when parsed.
        early.listener = onProgress;
        if (early.last) onProgress?.(early.last);
        const got = await early.session;
        if (got) {
          counter.learn(got.bytes);
          onProgress?.({ loaded: got.bytes.length, total: got.bytes.length, ...counter.at(got.bytes.length) });
          if (got.error) throw got.error;
          session?.free();
          session = got.session;
          source = null;
          return info();
        }
        // The download failed: fetched again below, which reports why.
      }
      // A URL only the environment can read (Node file: URLs) is read whole.
      const local = url !== undefined ? await env.readUrl?.(url, onProgress) : undefined;
      if (local === undefined && url !== undefined && width !== undefined) {
        const got = await fetchPrefix(wasm, url, width, onProgress, counter);
        next = await loadChecked(wasm, got.bytes, width);
        from = { url, length: got.bytes.length, layout: got.layout, transfer: { ranged: got.ranged, bytes: got.bytes.length } };
      } else {
        const data = url !== undefined ? local ?? (await fetchBytes(url, onProgress, null, 0, counter)).bytes : asBytes(bytes);
        if (url === undefined) {
          counter.learn(data);
          onProgress?.({ loaded: data.length, total: data.length, ...counter.at(data.length) });
        }
        next = await loadChecked(wasm, data);
      }
      if (width !== undefined) {
        // The widest width the fetched planes serve, up to the one asked for.
        const fits = next.info().loadedWidths.filter((w) => w <= width);
        if (!fits.length) {
          next.free();
          throw new AnybitError('unsupported_width', `this model has no width of ${width} bits or fewer`);
        }
        next.setWidth(Math.max(...fits));
      }
      session?.free();
      session = next;
      source = from;
      return info();
    },
    info,
    probe,
    widths: () => current().widths(),
    async setWidth({ width }) {
      checkWidth(width);
      const s = current();
      // A progressively loaded model fetches the planes a wider width needs (a width of b bits
      // needs the first b planes), then switches.
      if (source?.layout && width > s.planesLoaded && s.widths().some((w) => w.w === width)) {
        // The worker's session holds the bytes so far; only the new ones travel to it.
        const got = await fetchRest(source.url, source.length, source.layout.prefixEnds[width]);
        s.extend(got.more, width, await digestsOf(got.more, s.extendSections(got.more.length), source.length));
        source.length += got.more.length;
        source.transfer.bytes += got.received;
        source.transfer.ranged &&= got.ranged;
      }
      s.setWidth(width);
      return info();
    },
    setThreads({ threads }) {
      if (typeof threads !== 'number') {
        throw new AnybitError('invalid_argument', `threads must be a number, got ${JSON.stringify(threads)}`);
      }
      current().setThreads(threads);
      return info();
    },
    // Measures every thread count, so only once the pool is up (or has failed).
    async calibrate({ minMs }) {
      await pool?.catch(() => {});
      return current().calibrate(minMs);
    },
    decide({ budget }) {
      return current().decide(budget);
    },
    run({ input, options }) {
      return runOne(current(), input, options);
    },
    // One chunk of Session.runMany; `first` as detectMany's. Image options apply to the images
    // among the inputs.
    runMany({ inputs, options, first = 0 }) {
      const s = current();
      if (!Array.isArray(inputs)) throw new AnybitError('invalid_argument', 'runMany needs an array of inputs');
      return inputs.map((input, i) => {
        try {
          return runOne(s, input, input instanceof Float32Array ? undefined : options);
        } catch (e) {
          const err = toAnybitError(e);
          throw new AnybitError(err.code, `inputs[${first + i}]: ${err.message}`);
        }
      });
    },
    encode({ text }) {
      return current().encode(checkText(text));
    },
    runText({ text }) {
      return current().runText(checkText(text));
    },
    detect({ text }) {
      return current().detect(checkText(text));
    },
    // One chunk of Session.detectMany: `first` is the index of texts[0] in the caller's whole list,
    // so that an error names the text the caller passed.
    detectMany({ texts, first = 0 }) {
      const s = current();
      if (!Array.isArray(texts)) throw new AnybitError('invalid_argument', 'detectMany needs an array of strings');
      return texts.map((text, i) => {
        try {
          return s.detect(checkText(text));
        } catch (e) {
          const err = toAnybitError(e);
          throw new AnybitError(err.code, `texts[${first + i}]: ${err.message}`);
        }
      });
    },
    async attack({ request }, onProgress, signal) {
      const s = current();
      const { image, imageOptions, ...rest } = checkAttackRequest(request);
      if (signal?.aborted) throw aborted();
      s.attackStart(image, imageOptions, rest);
      try {
        for (;;) {
          const { done, total, finished } = s.attackStep(ATTACK_SLICE_MS);
          onProgress?.({ done, total });
          if (finished) break;
          await nextTask();
          if (signal?.aborted) throw aborted();
        }
        return s.attackFinish();
      } finally {
        s.attackCancel(); // nothing left after attackFinish; after a cancel or failure, the run
      }
    },
    dispose() {
      takePrefetch(null);
      session?.free();
      session = null;
      source = null;
      return null;
    },
  };

  return {
    warm,
    /** `signal`: an AbortSignal that cancels an attack between two slices. */
    async handle(type, args = {}, onProgress, signal) {
      try {
        const handler = Object.hasOwn(handlers, type) ? handlers[type] : null;
        if (!handler) throw new AnybitError('invalid_argument', `unknown request "${type}"`);
        // A failed start fails every later request alike (with the start's error).
        if (type !== 'init') await (starting ?? init());
        while (busy) await busy;
        if (type !== 'attack') return await handler(args, onProgress);
        // Set with no await since the check above, so a second attack waits for this one.
        let release;
        busy = new Promise((r) => (release = r));
        try {
          return await handler(args, onProgress, signal);
        } finally {
          busy = null;
          release();
        }
      } catch (e) {
        const err = toAnybitError(e);
        if (err.code === 'crashed') session = null;
        throw err;
      }
    },
  };
}
