// Picks and loads one of the four anybit builds (scalar, simd, relaxed, threads) for this engine.
// Plain ES module with no dependencies; runs in a worker, a page or Node 20.
//
//   const { wasm, build, reason } = await loadRuntime({ base: new URL('./pkg/', import.meta.url) });
//
// `base` is the folder holding <variant>/anybit.js. The threads build must be loaded inside a
// Worker: its parallel calls block with Atomics.wait, which a page's main thread may not do.

export const VARIANTS = ['scalar', 'simd', 'relaxed', 'threads'];

// Most threads used by default: past this the small layers of the shipped models stop gaining.
export const DEFAULT_MAX_THREADS = 8;

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

/** What this engine offers: {simd, relaxed, sharedMemory, worker, cores}. */
export function detect() {
  return {
    simd: validates(SIMD_PROBE),
    relaxed: validates(RELAXED_PROBE),
    sharedMemory: sharedMemoryWorks(),
    // Threads need nested workers, so the runtime itself must be in a worker (or a page with Worker).
    worker: typeof Worker === 'function',
    cores: Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1),
  };
}

/**
 * The build to load and why. `requested` is 'auto' or a variant name; 'auto' takes threads when the
 * page is cross-origin isolated and has at least two cores, else simd, else scalar. Relaxed SIMD is
 * only taken on request (its kernels are compared in the benchmarks first).
 */
export function chooseVariant(caps, requested = 'auto') {
  if (requested !== 'auto') {
    if (!VARIANTS.includes(requested)) {
      throw codedError('invalid_argument', `unknown build "${requested}"; use auto or one of ${VARIANTS.join(', ')}`);
    }
    const missing = {
      scalar: null,
      simd: caps.simd ? null : 'this engine has no WebAssembly SIMD',
      relaxed: caps.relaxed ? null : 'this engine has no relaxed SIMD',
      threads: !caps.simd ? 'this engine has no WebAssembly SIMD'
        : !caps.sharedMemory ? 'the page is not cross-origin isolated (COOP/COEP headers), so no shared memory'
        : !caps.worker ? 'workers are unavailable' : null,
    }[requested];
    if (missing) throw codedError('runtime_unavailable', `the ${requested} build cannot run here: ${missing}`);
    return { variant: requested, reason: `${requested} build requested` };
  }
  if (!caps.simd) return { variant: 'scalar', reason: 'no WebAssembly SIMD in this engine: portable scalar build' };
  if (!caps.sharedMemory) {
    return { variant: 'simd', reason: 'not cross-origin isolated (no COOP/COEP headers): SIMD build on one thread' };
  }
  if (!caps.worker || caps.cores < 2) {
    return { variant: 'simd', reason: `${caps.cores} core(s) or no workers: SIMD build on one thread` };
  }
  return { variant: 'threads', reason: 'cross-origin isolated with shared memory: SIMD build with threads' };
}

export function codedError(code, message) {
  const e = new Error(message);
  e.name = 'AnybitError';
  e.code = code;
  return e;
}

/**
 * Imports and instantiates a build. Options: base (URL of the folder with the variant folders),
 * variant ('auto' or a name), threads (pool size for the threads build; default
 * min(hardwareConcurrency, 8)). Falls back from threads to simd if the pool cannot start.
 * Returns {wasm, build, reason}; `wasm` is the wasm-bindgen module (Session, buildInfo, ...).
 */
export async function loadRuntime({ base, variant = 'auto', threads } = {}) {
  if (!base) throw codedError('invalid_argument', 'loadRuntime needs the base URL of the builds');
  const caps = detect();
  let { variant: chosen, reason } = chooseVariant(caps, variant);
  try {
    return await instantiate(base, chosen, threads ?? Math.min(caps.cores, DEFAULT_MAX_THREADS), reason);
  } catch (e) {
    if (chosen !== 'threads' || variant !== 'auto') throw e;
    reason = `threads build failed (${e.message}): SIMD build on one thread`;
    return await instantiate(base, 'simd', 1, reason);
  }
}

async function instantiate(base, variant, threads, reason) {
  const url = new URL(`${variant}/anybit.js`, base);
  // The binary is fetched alongside its JS glue, not after it (one round trip less at startup).
  const binary = fetch(new URL(`${variant}/anybit_bg.wasm`, base));
  binary.catch(() => {}); // a failure surfaces from init below
  let wasm;
  try {
    wasm = await import(url.href);
    await wasm.default({ module_or_path: binary });
  } catch (e) {
    throw codedError('runtime_unavailable', `cannot load the ${variant} build from ${url.href}: ${e.message}`);
  }
  if (variant === 'threads') {
    if (!Number.isInteger(threads) || threads < 1) {
      throw codedError('invalid_argument', `thread count must be a positive integer, got ${threads}`);
    }
    await wasm.initThreads(threads);
  }
  return { wasm, build: wasm.buildInfo(), reason };
}
