// Promise API over worker.js for the page's main thread.
//
//   const rt = new AnybitClient(new URL('./worker.js', import.meta.url));
//   const info = await rt.load({ url: 'models/mnist.anybit' }, (p) => console.log(p.loaded, p.total));
//   await rt.setWidth(2);
//   const { predicted, probabilities, ms } = await rt.run(new Float32Array(28 * 28));
//
// Rejections are Error objects with `code` and `message` (codes listed in worker.js).

export class AnybitClient {
  #worker;
  #next = 1;
  #pending = new Map(); // id -> {resolve, reject, onProgress}

  #dead = null; // why the worker failed; later requests fail at once with it

  constructor(workerUrl, { variant = 'auto', threads, base } = {}) {
    this.#worker = new Worker(workerUrl, { type: 'module' });
    this.#worker.addEventListener('message', ({ data }) => this.#receive(data));
    // A worker that fails to start (script 404, syntax error) fails every request.
    const fail = (message) => {
      this.#dead = `the runtime worker failed: ${message || 'could not start'}`;
      this.#failAll('runtime_unavailable', this.#dead);
    };
    this.#worker.addEventListener('error', (ev) => {
      ev.preventDefault?.();
      fail(ev.message);
    });
    this.ready = this.#request('init', { variant, threads, ...(base ? { base: String(base) } : {}) });
  }

  #receive({ id, ok, result, error, progress }) {
    const p = this.#pending.get(id);
    if (!p) return;
    if (progress) return p.onProgress?.(progress);
    this.#pending.delete(id);
    if (ok) p.resolve(result);
    else p.reject(Object.assign(new Error(error.message), { name: 'AnybitError', code: error.code }));
  }

  #failAll(code, message) {
    for (const p of this.#pending.values()) p.reject(Object.assign(new Error(message), { name: 'AnybitError', code }));
    this.#pending.clear();
  }

  #request(type, args = {}, transfer = [], onProgress) {
    const id = this.#next++;
    if (this.#dead) return Promise.reject(Object.assign(new Error(this.#dead), { name: 'AnybitError', code: 'runtime_unavailable' }));
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      this.#worker.postMessage({ id, type, ...args }, transfer);
    });
  }

  /** Loads a model from {url} (relative to the page) or {bytes}; resolves to its info. */
  async load(source, onProgress) {
    // Not awaiting `ready`: the worker fetches the model while the runtime compiles, and a failed
    // start rejects this request with the same error.
    if (source.url) return this.#request('load', { url: new URL(source.url, globalThis.document?.baseURI ?? globalThis.location.href).href }, [], onProgress);
    return this.#request('load', { bytes: source.bytes });
  }

  info() {
    return this.#request('info');
  }

  setWidth(width) {
    return this.#request('setWidth', { width });
  }

  setThreads(threads) {
    return this.#request('setThreads', { threads });
  }

  /** Runs one sample; `input` is copied, so the caller keeps it. */
  run(input) {
    return this.#request('run', { input });
  }

  runImage(image, options) {
    return this.#request('runImage', { image, options });
  }

  /** Times the loaded model's kernels at every width on this device (for decide). */
  calibrate(minMs) {
    return this.#request('calibrate', { minMs });
  }

  /** The precision policy's choice (width and threads) for `budget` ({latencyMs?, maxBytes?, maxMemoryBytes?}); does not switch. */
  decide(budget) {
    return this.#request('decide', { budget });
  }

  benchKernels(config) {
    return this.#request('benchKernels', { config });
  }

  terminate() {
    this.#failAll('disposed', 'the runtime was terminated');
    this.#worker.terminate();
  }
}
