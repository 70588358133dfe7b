// The precision policy's predicted latency next to the measured one, for every width of a model:
// Session.calibrate() predicts (a measured pass per width; the per-layer GEMM prediction beside it),
// then the widths are run in rounds for 100 ms each and each one's fastest pass is kept (the
// calibration keeps fastest passes too). Shared by bench/policy.mjs (Node) and
// policy-worker.mjs (Chromium).
export function check(mod, bytes) {
  const s = mod.Session.load(bytes);
  try {
    const cal = s.calibrate(5);
    const x = new Float32Array(s.inputShape().reduce((a, d) => a * d, 1)).fill(0.5);
    // Measured in rounds over the widths for 100 ms per width, fastest pass per width kept: this
    // machine is shared, and a burst of load during one width's turn would otherwise be read as
    // that width being slow.
    const widths = cal.gemmMs.map(([w]) => w);
    const best = new Map(widths.map((w) => [w, Infinity]));
    for (const w of widths) {
      s.setWidth(w);
      s.run(x);
    }
    const t = performance.now();
    while (performance.now() - t < 100 * widths.length) {
      for (const w of widths) {
        s.setWidth(w);
        const t0 = performance.now();
        s.run(x);
        best.set(w, Math.min(best.get(w), performance.now() - t0));
      }
    }
    const rows = cal.gemmMs.map(([w, gemm]) => {
      const pass = cal.passMs.find(([pw]) => pw === w)?.[1];
      return { width: w, predictedMs: pass ?? gemm + cal.otherMs, perLayerMs: gemm + cal.otherMs, measuredMs: best.get(w) };
    });
    return { isa: cal.isa, threads: cal.threads, calibrationMs: cal.tookMs, rows };
  } finally {
    s.free();
  }
}
