// Loads one wasm build (pkg/dist/<variant>/), starts its thread pool when asked, runs
// benchKernels(config) and posts the report JSON back.
self.onmessage = async ({ data: { variant, config, threads } }) => {
  try {
    const mod = await import(`../../pkg/dist/${variant}/anybit.js`);
    await mod.default();
    if (threads > 1) {
      if (!self.crossOriginIsolated) throw new Error('threads need a cross-origin isolated page');
      await mod.initThreads(threads);
    }
    self.postMessage({ ok: true, report: mod.benchKernels(config) });
  } catch (e) {
    self.postMessage({ ok: false, error: `${e.code ?? ''} ${e.message ?? e}`.trim() });
  }
};
