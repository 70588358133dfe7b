// The one setting the package needs from a Vite app: its worker loads the builds with dynamic
// import(), which Vite's default 'iife' worker format cannot split into chunks.
export default {
  worker: { format: 'es' },
  build: { outDir: 'dist', emptyOutDir: true },
  logLevel: 'warn',
};
