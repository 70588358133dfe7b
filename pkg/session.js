// The Session handed to users, the same in browsers (requests go to a worker) and Node (requests run
// in-process). `call(type, args, onProgress)` is the transport; it rejects with AnybitError.

import { AnybitError } from './errors.js';

export class Session {
  #call;
  #close;
  #build;
  #disposed = false;

  /** @internal use createSession() */
  constructor(call, close, build) {
    this.#call = call;
    this.#close = close;
    this.#build = build;
  }

  /** The build in use as reported when the session started (see buildInfo()). */
  get build() {
    return this.#build;
  }

  #request(type, args, onProgress, signal) {
    if (this.#disposed) return Promise.reject(new AnybitError('disposed', `${type}: the session is disposed`));
    return this.#call(type, args, onProgress, signal);
  }

  buildInfo() {
    return this.#request('buildInfo');
  }

  /**
   * Loads a model from a URL (string or URL) or from bytes, replacing the loaded one. With
   * `width`, only the bit planes that width needs are fetched (HTTP Range); see LoadOptions.
   */
  async load(source, { onProgress, width } = {}) {
    if (onProgress !== undefined && typeof onProgress !== 'function') {
      throw new AnybitError('invalid_argument', 'onProgress must be a function');
    }
    const opt = width === undefined ? {} : { width };
    if (typeof source === 'string' || source instanceof URL) {
      return this.#request('load', { url: resolveUrl(source), ...opt }, onProgress);
    }
    return this.#request('load', { bytes: source, ...opt }, onProgress);
  }

  info() {
    return this.#request('info');
  }

  widths() {
    return this.#request('widths');
  }

  setWidth(width) {
    return this.#request('setWidth', { width });
  }

  /** Threads a run may use (1..the pool's size; a decision's `threads`). */
  setThreads(threads) {
    return this.#request('setThreads', { threads });
  }

  /**
   * What this device offers (SIMD, relaxed SIMD, threads, cores, memory and connection hints) and
   * the build in use; no model needed. With calibrate() it is what decide() and a caller's own
   * policy go on.
   */
  probe() {
    return this.#request('probe');
  }

  /**
   * Times this model at every width on this device for `decide`: passes in rounds (about
   * `10 * minMs` per width, default 5; also on one thread with a pool of more) and every GEMM alone.
   */
  calibrate(minMs) {
    return this.#request('calibrate', { minMs });
  }

  /**
   * The precision policy: the most accurate width whose predicted latency, download and memory
   * fit the budget `{latencyMs?, maxBytes?, maxMemoryBytes?}`, and the thread count for it, with
   * every option and the reasons. It does not switch: call setThreads(decision.threads) and
   * setWidth(decision.width) to follow it, or choose another width.
   */
  decide(budget) {
    return this.#request('decide', { budget });
  }

  /**
   * Runs one input. In a browser the input travels to the worker as a copy of its elements whose
   * buffer is transferred: the caller's array stays usable, and a view into a larger buffer sends
   * only its own elements. `options`: an image's ({invert, fit}), and for a session on the
   * caller's thread (Node, or `worker: false`) `output`: a Float32Array of the output's length
   * that receives the output and comes back as `logits`, instead of a new array per run.
   */
  run(input, options) {
    return this.#request('run', options === undefined ? { input } : { input, options });
  }

  /**
   * Tokenizes `text` with the loaded text model's own tokenizer (truncated to its maximum tokens;
   * `truncated` and `piecesTotal` say so) and runs the model: `{ids, offsets, charOffsets,
   * tokens, truncated, piecesTotal, maxTokens, output, shape, width, ms}` (Encoding in
   * index.d.ts). `offsets` are [start, end) pairs in UTF-16 code units: `text.slice(offsets[2 * i],
   * offsets[2 * i + 1])` is token i's text.
   */
  encode(text) {
    return this.#request('encode', { text });
  }

  /**
   * Classifies `text` with a text classifier: `kind: 'text'` (one class for the text, fields as
   * run()'s) or `kind: 'tokens'` (one class per token: a tagger), with the encoding's fields.
   */
  runText(text) {
    return this.#request('runText', { text });
  }

  /**
   * Counterfactual detection (SemEval-2020 Task 5) with a counterfactual model (`info().task`):
   * `{counterfactual, probability, threshold, antecedent, consequent, tokens, truncated, width, ms}`
   * (Detection in index.d.ts). A span is `{start, end, startUtf16, endUtf16, text}`: `start..=end`
   * in code points, END INCLUSIVE as SemEval counts; `text.slice(startUtf16, endUtf16)` is its text.
   */
  detect(text) {
    return this.#request('detect', { text });
  }

  /**
   * detect() for many texts, sent to the worker DETECT_CHUNK at a time: `onProgress({done, total})`
   * after each chunk, and `signal` aborting rejects at once with code 'aborted' (the worker stops
   * after the chunk in hand). A bad text rejects the whole call with its index in the message
   * (`texts[3]: the text is empty`); strings are checked before anything is sent.
   */
  async detectMany(texts, { onProgress, signal } = {}) {
    checkProgressAndSignal(onProgress, signal);
    if (!Array.isArray(texts)) throw new AnybitError('invalid_argument', `detectMany needs an array of strings, got ${describe(texts)}`);
    texts.forEach((t, i) => {
      if (typeof t !== 'string') throw new AnybitError('invalid_argument', `texts[${i}] must be a string, got ${describe(t)}`);
    });
    return this.#inChunks('detectMany', 'texts', texts, DETECT_CHUNK, {}, onProgress, signal);
  }

  /**
   * run() for many inputs (each a Float32Array or an ImageData-like image; `imageOptions` apply to
   * the images), sent to the worker RUN_CHUNK at a time: one message round trip per chunk instead
   * of one per input. Progress, cancel and errors as detectMany: a bad input rejects the whole
   * call with its index (`inputs[3]: ...`); types are checked before anything is sent.
   */
  async runMany(inputs, { onProgress, signal, imageOptions } = {}) {
    checkProgressAndSignal(onProgress, signal);
    if (!Array.isArray(inputs)) throw new AnybitError('invalid_argument', `runMany needs an array of inputs, got ${describe(inputs)}`);
    if (imageOptions !== undefined && (imageOptions === null || typeof imageOptions !== 'object')) {
      throw new AnybitError('invalid_argument', `imageOptions must be an object ({invert?, fit?}), got ${describe(imageOptions)}`);
    }
    if (imageOptions?.output !== undefined) {
      throw new AnybitError('invalid_argument', 'runMany gives each input its own output array: output applies to run() only');
    }
    inputs.forEach((x, i) => {
      if (!(x instanceof Float32Array || isImageLike(x))) {
        throw new AnybitError('invalid_argument', `inputs[${i}] must be a Float32Array or an ImageData ({width, height, data}), got ${describe(x)}`);
      }
    });
    return this.#inChunks('runMany', 'inputs', inputs, RUN_CHUNK, imageOptions === undefined ? {} : { options: imageOptions }, onProgress, signal);
  }

  // Sends `items` as requests of `type` with `{[key]: chunk, first, ...extra}`, `size` at a time,
  // in order; progress after each chunk, and an abort rejects at once (the worker finishes the
  // chunk in hand, whose answer is dropped).
  async #inChunks(type, key, items, size, extra, onProgress, signal) {
    const total = items.length;
    const results = [];
    const cancelled = () => new AnybitError('aborted', `${type} was cancelled after ${results.length} of ${total} ${key}`);
    while (results.length < total) {
      if (signal?.aborted) throw cancelled();
      const first = results.length;
      const chunk = this.#request(type, { [key]: items.slice(first, first + size), first, ...extra });
      results.push(...(await untilAborted(chunk, signal, cancelled)));
      onProgress?.({ done: results.length, total });
      // In Node the runtime answers within microtasks: let timers (a caller's abort) run between chunks.
      if (typeof setImmediate === 'function') await new Promise((r) => setImmediate(r));
    }
    return results;
  }

  /**
   * Attacks the loaded model on one image (AttackRequest in index.d.ts) and resolves to the
   * AttackResult. It runs in slices: `onProgress({done, total})` follows it, and `signal` aborting
   * stops it at the next slice (rejects with code 'aborted'). The session's width is unchanged
   * afterwards; other requests wait until the attack ends.
   */
  async attack(request, { onProgress, signal } = {}) {
    checkProgressAndSignal(onProgress, signal);
    if (signal?.aborted) throw new AnybitError('aborted', 'the attack was cancelled before it started');
    return this.#request('attack', { request }, onProgress, signal);
  }

  /** Frees the model and stops the worker; later calls reject with code `disposed`. */
  async dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#close();
  }
}

/** An ImageData or a plain `{width, height, data}` (what run() and attacks take besides floats). */
/**
 * A Session whose runtime (`createRuntime()`) runs on the caller's own thread, as in Node and in a
 * browser session with `worker: false`: calls go straight to `runtime.handle`. `init`: the runtime's
 * init options.
 */
export async function inProcessSession(runtime, init) {
  const call = (type, args, onProgress, signal) => runtime.handle(type, args, onProgress, signal);
  return new Session(call, () => call('dispose'), await call('init', init));
}

export const isImageLike = (x) => x !== null && typeof x === 'object' && 'data' in x && 'width' in x && 'height' in x;

/** A thread pool size for createSession: undefined (the default) or an integer in 1..=256. */
export function checkPoolSize(threads) {
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
    throw new AnybitError('invalid_argument', `threads must be an integer in 1..=256, got ${threads}`);
  }
}

// Texts per detectMany message: few enough that progress moves and a cancel is soon seen (a chunk
// is about 1 s of MiniLM-L6 sentences on one thread), many enough that messages cost nothing.
const DETECT_CHUNK = 16;

// Inputs per runMany message: a round trip to the worker costs about 0.1 ms and an MNIST-sized
// run about 0.4 ms, so 32 make the message cost under 1% while a chunk stays short enough (tens
// of ms for small image models) for progress and a cancel to be prompt.
const RUN_CHUNK = 32;

function checkProgressAndSignal(onProgress, signal) {
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new AnybitError('invalid_argument', 'onProgress must be a function');
  }
  if (signal !== undefined && !(typeof signal?.aborted === 'boolean' && typeof signal.addEventListener === 'function')) {
    throw new AnybitError('invalid_argument', 'signal must be an AbortSignal');
  }
}

// `promise`, or the error `cancelled()` makes as soon as `signal` aborts (the promise's own result
// is then dropped).
function untilAborted(promise, signal, cancelled) {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const abort = () => reject(cancelled());
    signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** How a bad argument is named in an error message. */
export function describe(value) {
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

// Relative URLs mean what they mean to the page (a worker would resolve them against its own script).
function resolveUrl(source) {
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  try {
    return (base ? new URL(source, base) : new URL(source)).href;
  } catch {
    throw new AnybitError('invalid_argument', `not a URL: ${source} (in Node, pass the file's bytes or a file: URL)`);
  }
}
