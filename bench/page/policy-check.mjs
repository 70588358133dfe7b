// The precision policy's predicted latency next to the measured one, for every width of a model:
// Session.calibrate() predicts (a measured pass per width; the per-layer GEMM prediction beside it),
// then the widths are run in rounds for `checkMs` each (default 100 ms) and each one's passes are read as the
// calibration reads them. Shared by bench/policy.mjs (Node) and
// policy-worker.mjs (Chromium).
export function check(mod, bytes, checkMs = 100) {
  const s = mod.Session.load(bytes);
  try {
    const cal = s.calibrate(5);
    const x = new Float32Array(s.inputShape().reduce((a, d) => a * d, 1)).fill(0.5);
    // Measured in rounds over the widths for `checkMs` per width: this
    // machine is shared, and a burst of load during one width's turn would otherwise be read as
    // that width being slow.
    const widths = cal.gemmMs.map(([w]) => w);
    const samples = new Map(widths.map((w) => [w, []]));
    for (const w of widths) {
      s.setWidth(w);
      s.run(x);
    }
    const t = performance.now();
    while (performance.now() - t < checkMs * widths.length) {
      for (const w of widths) {
        s.setWidth(w);
        const t0 = performance.now();
        s.run(x);
        samples.get(w).push(performance.now() - t0);
      }
    }
    // Read as the calibration reads its passes (policy::typical_ms): the median of the means of
    // five consecutive groups, so one stall of the process moves one group only.
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const typical = (xs) => xs.length < 5 ? mean(xs)
      : [0, 1, 2, 3, 4].map((g) => mean(xs.slice(Math.floor(g * xs.length / 5), Math.floor((g + 1) * xs.length / 5)))).sort((a, b) => a - b)[2];
    const rows = cal.gemmMs.map(([w, gemm]) => {
      const pass = cal.passMs.find(([pw]) => pw === w)?.[1];
      return { width: w, predictedMs: pass ?? gemm + cal.otherMs, perLayerMs: gemm + cal.otherMs, measuredMs: typical(samples.get(w)) };
    });
    return { isa: cal.isa, threads: cal.threads, calibrationMs: cal.tookMs, rows };
  } finally {
    s.free();
  }
}
