// Loads one wasm build (pkg/dist/<variant>/) in this worker, as the package's runtime does, and
// runs attack-measure.mjs on the model and image it is sent; posts the figures back.
import { measureAttack } from './attack-measure.mjs';

self.onmessage = async ({ data: { variant, model, image, options } }) => {
  try {
    const mod = await import(`../../pkg/dist/${variant}/anybit.js`);
    await mod.default();
    self.postMessage({ ok: true, rows: measureAttack(mod, new Uint8Array(model), new Float32Array(image), options) });
  } catch (e) {
    self.postMessage({ ok: false, error: `${e.code ?? ''} ${e.message ?? e}`.trim() });
  }
};
