// The engines bench/text.mjs times, one entry each: {name, variants, minCosine?, load({variant,
// threads, files}) -> {run({ids, text}) -> Promise<Float32Array>, info}}. `ids` are one
// sentence's token ids ([CLS] ... [SEP], plain numbers), `text` the sentence; run returns its
// 384-float mean-pooled embedding, which the
// runner checks against tools/tests/fixtures/minilm/reference.json before it times anything, so a
// fast wrong engine reports no figure. Everything an engine does per sentence (input conversion,
// the pass, pooling, reading the result back) belongs inside run: the page times the await.
// `threads` is fixed per page: ONNX Runtime Web starts its wasm (and thread pool) once per page,
// so the runner opens one page per thread count and every engine in it gets the same count.
// `files` maps a variant to the URL of its model file on the bench server.
// bench/text.mjs picks engines by key (--engines ort,anybit).
const ORT_DIST = '/bench/node_modules/onnxruntime-web/dist/';

export const ENGINES = {
  ort: {
    name: 'onnxruntime-web (wasm)',
    variants: ['fp32', 'int8'],
    async load({ variant, threads, files }) {
      const ort = await import(`${ORT_DIST}ort.wasm.min.mjs`);
      // The wasm and its worker script from node_modules on this server: never a CDN, which is
      // ORT's default and which the closed network here could not reach anyway.
      ort.env.wasm.wasmPaths = ORT_DIST;
      ort.env.wasm.numThreads = threads;
      // Inference on the page's thread, ORT Web's (and transformers.js's) default.
      ort.env.wasm.proxy = false;
      const session = await ort.InferenceSession.create(files[variant], {
        executionProviders: ['wasm'],
        graphOptimizationLevel: 'all',
      });
      const tensor = (values, n) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [1, n]);
      return {
        info: { version: ort.env.versions?.web ?? ort.env.versions?.common, threads: ort.env.wasm.numThreads },
        async run({ ids }) {
          const n = ids.length;
          const feeds = { input_ids: tensor(ids, n), attention_mask: tensor(new Array(n).fill(1), n), token_type_ids: tensor(new Array(n).fill(0), n) };
          // Only the sentence embedding: last_hidden_state would be copied out for nothing.
          const out = await session.run(feeds, ['embedding']);
          return out.embedding.data;
        },
      };
    },
  },
  anybit: {
    name: 'anybit',
    // Widths of the one file. Untrained narrow widths are not faithful encoders (docs/TEXT.md:
    // mean cosine 0.92 at 4 bits, 0.29 at 2), so the fixture check asks each width for what it
    // was measured to reach, natively, on the 200 sentences (worst case, rounded down).
    variants: ['8', '4', '2'],
    minCosine: { 8: 0.99, 4: 0.8, 2: 0.0 },
    async load({ variant, threads, files }) {
      const { createSession } = await import('/pkg/index.js');
      // One thread: the fastest single-thread build this browser runs (relaxed SIMD, else SIMD;
      // the package's auto choice on an isolated page is the threads build); two: the threads build.
      const session = threads > 1
        ? await createSession({ build: 'threads', threads })
        : await createSession({ build: 'relaxed' }).catch(() => createSession({ build: 'simd' }));
      // The page loads only the bit planes this width needs (HTTP Range), as an app would.
      await session.load(files[variant], { width: Number(variant) });
      return {
        info: { version: session.build.variant, threads: session.build.threadCount },
        // Tokenizing, the trip to the worker and back, and the pass: what the page waits for.
        async run({ text }) {
          return (await session.encode(text)).output;
        },
      };
    },
  },
};
