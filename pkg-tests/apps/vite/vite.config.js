// What a Vite app needs for the package:
// - worker.format 'es': the package's worker loads the builds with dynamic import(), which Vite's
//   default 'iife' worker format cannot split into chunks;
// - optimizeDeps.exclude (dev server only): pre-bundling moves the package into .vite/deps, where
//   its worker and wasm files (found relative to import.meta.url) are not;
// - COOP/COEP headers (dev server and preview) so that the page is cross-origin isolated: threads.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default {
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['anybit'] },
  server: { headers: isolation },
  preview: { headers: isolation },
  build: { outDir: 'dist', emptyOutDir: true },
  logLevel: 'warn',
};
