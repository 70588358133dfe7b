// The precision policy's predicted latency next to the measured one, for every width of a model:
// Session.calibrate() predicts, then each width is run for 100 ms and its fastest pass is kept
// (the calibration keeps fastest passes too). Shared by bench/policy.mjs (Node) and
// policy-worker.mjs (Chromium).
export function check(mod, bytes) {
  const s = mod.Session.load(bytes);
  try {
    const cal = s.calibrate(5);
    const x = new Float32Array(s.inputShape().reduce((a, d) => a * d, 1)).fill(0.5);
    const rows = [];
    for (const [w, gemm] of cal.gemmMs) {
      s.setWidth(w);
      s.run(x);
      let best = Infinity;
      const t = performance.now();
      while (performance.now() - t < 100) {
        const t0 = performance.now();
        s.run(x);
        best = Math.min(best, performance.now() - t0);
      }
      rows.push({ width: w, predictedMs: gemm + cal.otherMs, measuredMs: best });
    }
    return { isa: cal.isa, threads: cal.threads, calibrationMs: cal.tookMs, rows };
  } finally {
    s.free();
  }
}
