// The engines bench/models.mjs times, one entry each: {name, variants, load({variant, threads,
// files, shape}) -> {run(Float32Array) -> Promise<{output, engineMs}>, info}}. The input is one
// image, NHWC [h, w, c] (`shape`) as a flat Float32Array, the same bytes for every engine; run
// returns the model's output (logits, or the conv's NHWC feature map) and the time the engine
// itself took, which the runner records beside the page's time around the whole `await run(x)`.
// Everything an engine does per image (making its input tensor, the pass, reading the result back)
// belongs inside run. The runner checks every output against the workload's reference.json before
// it times anything, so a fast wrong engine reports no figure.
// `threads` is fixed per page: ONNX Runtime Web and TF.js start their wasm (and thread pool) once
// per page, so the runner opens one page per thread count and every engine in it gets the same
// count. `files` maps a variant to the URL of its model file on the bench server.
const ORT_DIST = '/bench/node_modules/onnxruntime-web/dist/';
const TF_DIST = '/bench/node_modules/@tensorflow/tfjs/dist/';
const TF_WASM_DIST = '/bench/node_modules/@tensorflow/tfjs-backend-wasm/dist/';

function script(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
}

// TF.js is one per page: its UMD bundles (global `tf`, `tf.wasm`), the wasm backend started once
// with the page's thread count.
let tfReady = null;
function tfjs(threads) {
  tfReady ??= (async () => {
    await script(`${TF_DIST}tf.min.js`);
    await script(`${TF_WASM_DIST}tf-backend-wasm.min.js`);
    const tf = self.tf;
    // Its .wasm files from node_modules on this server, never a CDN.
    tf.wasm.setWasmPaths(TF_WASM_DIST);
    // An explicit count: without it TF.js takes half the logical cores (1 on this 2-core machine).
    tf.wasm.setThreadsCount(threads);
    if (!(await tf.setBackend('wasm'))) throw new Error('TF.js could not start its wasm backend');
    await tf.ready();
    return { tf, threads: tf.wasm.getThreadsCount() };
  })();
  return tfReady;
}

// anybit as an app would run it: the package's session (`inPlace`: on the page's own thread,
// `worker: false`, else in its worker), loading only the bit planes the width needs.
// `reuse` (on the page's thread only): every run writes its output into the array the first run
// returned (run()'s `output` option), as an app that reads each output before the next run can.
async function anybitLoad({ variant, threads, files }, inPlace, reuse = false) {
  const { createSession } = await import('/pkg/index.js');
  // One thread: the fastest single-thread build this browser runs (relaxed SIMD, else SIMD; the
  // package's auto choice on an isolated page is the threads build); two: the threads build (on
  // the page's thread: that thread leads the pool, as ORT's and TF.js's do).
  const worker = inPlace ? false : undefined;
  const session = threads > 1
    ? await createSession({ build: 'threads', threads, worker })
    : await createSession({ build: 'relaxed', worker }).catch(() => createSession({ build: 'simd', worker }));
  let kept = null;
  // Only the bit planes this width needs (HTTP Range), as an app would load it.
  const info = await session.load(files[variant], { width: Number(variant) });
  return {
    info: { version: session.build.variant, threads: session.build.threadCount, width: info.width },
    // The page's Float32Array goes to the session and the result comes back: what an app waits for.
    async run(input) {
      const r = await session.run(input, reuse && kept ? { output: kept } : undefined);
      if (reuse) kept = r.logits;
      return { output: r.logits, engineMs: r.ms };
    },
  };
}

export const ENGINES = {
  anybit: {
    name: 'anybit (worker)',
    // Weight widths of the one .anybit file.
    variants: ['8', '4', '2', '1'],
    load: (o) => anybitLoad(o, false),
  },
  'anybit-page': {
    name: "anybit (page's thread)",
    variants: ['8', '4', '2', '1'],
    load: (o) => anybitLoad(o, true),
  },
  'anybit-out': {
    name: "anybit (page's thread, output array reused)",
    variants: ['8', '4', '2', '1'],
    load: (o) => anybitLoad(o, true, true),
  },
  ort: {
    name: 'onnxruntime-web (wasm)',
    // No counterpart of anybit-out: ORT Web 1.31.1 leaves a pre-allocated 'cpu' output tensor
    // (`session.run(feeds, {output: new ort.Tensor('float32', new Float32Array(n), dims)})`) all
    // zeros, and an earlier run's output tensor passed so keeps that run's values, so an app
    // cannot skip the output array there (measured: BENCHMARKS.md).
    variants: ['fp32', 'int8'],
    async load({ variant, threads, files, shape }) {
      const ort = await import(`${ORT_DIST}ort.wasm.min.mjs`);
      // The wasm and its worker script from node_modules on this server: never a CDN.
      ort.env.wasm.wasmPaths = ORT_DIST;
      ort.env.wasm.numThreads = threads;
      // Inference on the page's thread, ORT Web's default.
      ort.env.wasm.proxy = false;
      const session = await ort.InferenceSession.create(files[variant], {
        executionProviders: ['wasm'],
        graphOptimizationLevel: 'all',
      });
      const dims = [1, ...shape];
      return {
        info: { version: ort.env.versions?.web ?? ort.env.versions?.common, threads: ort.env.wasm.numThreads },
        async run(input) {
          const feeds = { input: new ort.Tensor('float32', input, dims) };
          const t0 = performance.now();
          const out = await session.run(feeds);
          const engineMs = performance.now() - t0;
          return { output: out.output.data, engineMs };
        },
      };
    },
  },
  tfjs: {
    name: 'TensorFlow.js (wasm backend)',
    variants: ['fp32'],
    async load({ variant, threads, files, shape }) {
      const { tf, threads: actual } = await tfjs(threads);
      const model = await tf.loadLayersModel(files[variant]);
      const dims = [1, ...shape];
      return {
        info: { version: tf.version?.tfjs ?? tf.version_core, threads: actual, backend: tf.getBackend() },
        async run(input) {
          const x = tf.tensor(input, dims, 'float32');
          // The engine's part: the pass and reading its result back (dataSync waits for it).
          const t0 = performance.now();
          const y = model.predict(x);
          const output = y.dataSync();
          const engineMs = performance.now() - t0;
          x.dispose();
          y.dispose();
          return { output, engineMs };
        },
      };
    },
  },
};
