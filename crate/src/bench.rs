//! The kernel benchmark routine ([`crate::kernels`]), shared by every host: the native example
//! (`examples/bench_kernels.rs`) and the wasm builds (the JS export `benchKernels`, driven from
//! Node and headless Chromium by `bench/`). The host supplies only a millisecond clock.
//!
//! Figures are effective GMAC/s = rows * depth * cols / time, where the time of one call
//! INCLUDES packing the activations (what a layer pays per call); the GEMM alone is reported
//! beside it. Each figure is the median of `reps` timed repetitions after a warm-up, each
//! repetition long enough (`rep_ms`) that a coarse browser clock (100 us without cross-origin
//! isolation) does not dominate.

use serde::{Deserialize, Serialize};

use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::kernels::{gemm, im2col_reference, pack_gemm_then, window_gemm_then, ActCodes, Isa, PackedActs, PackedWeights, Scheme, Window, WindowActs};
use crate::timing::{interleaved, Reps};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Shape {
    pub name: String,
    pub rows: usize,
    pub depth: usize,
    pub cols: usize,
    /// The convolution this GEMM is, when it is one (stride 1, "same" padding): its activations
    /// are then the im2col of a random image, and Lut is also timed on the window path (no
    /// im2col, the image packed once: `kernels::Window`), as row scheme `lut-window`.
    #[serde(default)]
    pub conv: Option<ConvShape>,
}

/// A square-kernel convolution of an `h x w x c` image, stride 1, padding `k / 2` on every side.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConvShape {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
}

impl ConvShape {
    fn window(&self) -> Window {
        let p = self.k / 2;
        Window { h: self.h, w: self.w, c: self.c, kh: self.k, kw: self.k, top: p, left: p, ho: self.h + 2 * p + 1 - self.k, wo: self.w + 2 * p + 1 - self.k }
    }
}

impl Shape {
    fn new(name: &str, rows: usize, depth: usize, cols: usize) -> Self {
        Shape { name: name.to_string(), rows, depth, cols, conv: None }
    }
    fn macs(&self) -> f64 {
        self.rows as f64 * self.depth as f64 * self.cols as f64
    }
}

/// What to measure. Every field has a default, so `{}` is a valid config.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub shapes: Vec<Shape>,
    /// (wbits, abits) pairs.
    pub widths: Vec<(u8, u8)>,
    /// Scheme names (`Scheme::name`); empty = all.
    pub schemes: Vec<String>,
    /// Isa names (`Isa::name`); empty = all available in this build.
    pub isas: Vec<String>,
    /// Thread counts to measure; counts above 1 need the `threads` feature (else they run on
    /// one thread and are skipped).
    pub threads: Vec<usize>,
    pub reps: usize,
    /// Warm-up calls before timing, and at least `warmup_ms` of them: wasm engines start on a
    /// baseline compiler and tier up hot functions in the background (V8: Liftoff, then
    /// TurboFan), so the first calls of a kernel are not representative.
    pub warmup: usize,
    pub warmup_ms: f64,
    /// Warm-up for the first measurement of each (scheme, Isa, threads): tier-up of a kernel
    /// that has not run yet takes far longer than `warmup_ms` (measured: the first figure of a
    /// run came out ~40% low with 30 ms).
    pub first_warmup_ms: f64,
    /// Minimum length of one timed repetition, in ms (the call is repeated inside it).
    pub rep_ms: f64,
    /// Also time the GEMM alone and the activation packing alone.
    pub gemm_only: bool,
    /// "median" (default) or "min" of the repetitions; "min" is the robust choice on a machine
    /// shared with other work, where interference only ever adds time.
    pub stat: String,
    /// Dot8 with 8-bit activations in two planes even where the engine's dot product would take
    /// them in one (`kernels::two_planes_at_8_bits`): the kernel of engines without that.
    pub dot8_two_planes: bool,
}

impl Default for Config {
    fn default() -> Self {
        let mut widths = Vec::new();
        for b in 1..=8u8 {
            widths.push((b, b));
            if b < 8 {
                widths.push((b, 8));
            }
        }
        Config {
            shapes: vec![
                Shape { conv: Some(ConvShape { h: 28, w: 28, c: 64, k: 3 }), ..Shape::new("conv3x3 64->64 @28x28", 64, 576, 784) },
                Shape::new("conv1x1 128->128 @14x14", 128, 128, 196),
                Shape::new("dense 1024->10", 10, 1024, 1),
            ],
            widths,
            schemes: Vec::new(),
            isas: Vec::new(),
            threads: vec![1],
            reps: 7,
            warmup: 1,
            warmup_ms: 30.0,
            first_warmup_ms: 500.0,
            rep_ms: 10.0,
            gemm_only: true,
            stat: "median".to_string(),
            dot8_two_planes: false,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub shape: String,
    pub rows: usize,
    pub depth: usize,
    pub cols: usize,
    pub wbits: u8,
    pub abits: u8,
    pub scheme: String,
    pub isa: String,
    pub threads: usize,
    /// Median ms per call, activation packing included.
    pub ms: f64,
    pub gmacs: f64,
    /// Median ms per GEMM alone (0 when not measured).
    pub ms_gemm: f64,
    pub gmacs_gemm: f64,
    /// Median ms of the activation packing alone (0 when not measured).
    pub ms_pack: f64,
    /// Speed over the baseline's (Dot16, w8a8, best SIMD Isa, same shape, ONE thread), both
    /// timed in alternating repetitions (1 for the baseline row itself). With one baseline for
    /// every thread count, the ratio of a many-thread row is its speed-up over one thread too.
    pub vs_dot16_w8a8: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Instruction sets compiled into this build.
    pub available: Vec<String>,
    pub threads_feature: bool,
    pub baseline_isa: String,
    /// Whether Dot8 took 8-bit activations as one plane in this run (`kernels::one_plane_at_8_bits`).
    pub dot8_one_plane_at_8_bits: bool,
    pub rows: Vec<Row>,
}

fn parse_scheme(s: &str) -> Result<Scheme> {
    match Scheme::all().iter().find(|x| x.name() == s) {
        Some(&x) => Ok(x),
        None => crate::bail!(ErrorKind::InvalidArgument, "unknown scheme '{s}'"),
    }
}

fn parse_isa(s: &str) -> Result<Isa> {
    match [Isa::Scalar, Isa::Simd128, Isa::Relaxed].into_iter().find(|x| x.name() == s) {
        Some(x) => Ok(x),
        None => crate::bail!(ErrorKind::InvalidArgument, "unknown instruction set '{s}'"),
    }
}

/// Deterministic pseudo-random codes (the values do not change the timing of these kernels,
/// but zeros would flatter nothing and random data keeps the check below meaningful).
fn codes(n: usize, bits: u8, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mask = ((1u16 << bits) - 1) as u8;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8 & mask
        })
        .collect()
}

/// Times each closure with the config's repetitions (see [`interleaved`]).
fn time_many(now: &dyn Fn() -> f64, cfg: &Config, warmup_ms: f64, fs: &mut [&mut dyn FnMut() -> Result<()>]) -> Result<Vec<f64>> {
    let reps = Reps { warmup: cfg.warmup, warmup_ms, reps: cfg.reps, rep_ms: cfg.rep_ms, min: cfg.stat == "min" };
    interleaved(now, &reps, fs)
}

fn time_it(now: &dyn Fn() -> f64, cfg: &Config, warmup_ms: f64, f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
    Ok(time_many(now, cfg, warmup_ms, &mut [f])?[0])
}

/// Runs the benchmark. `now` returns milliseconds from any fixed origin. Every measured
/// configuration is also checked once against the first scheme's result for that problem, so
/// a fast but wrong kernel cannot produce a figure.
pub fn run(cfg: &Config, now: &dyn Fn() -> f64) -> Result<Report> {
    crate::kernels::two_planes_at_8_bits(cfg.dot8_two_planes);
    let report = run_with(cfg, now);
    crate::kernels::two_planes_at_8_bits(false);
    report
}

fn run_with(cfg: &Config, now: &dyn Fn() -> f64) -> Result<Report> {
    let available = Isa::available();
    let isas: Vec<Isa> = if cfg.isas.is_empty() {
        available.clone()
    } else {
        let mut v = Vec::new();
        for s in &cfg.isas {
            let isa = parse_isa(s)?;
            // Asked-for but missing instruction sets are skipped, so one config serves all builds.
            if available.contains(&isa) {
                v.push(isa);
            }
        }
        v
    };
    let schemes: Vec<Scheme> = if cfg.schemes.is_empty() {
        Scheme::all().to_vec()
    } else {
        cfg.schemes.iter().map(|s| parse_scheme(s)).collect::<Result<_>>()?
    };
    let threads: Vec<usize> = cfg
        .threads
        .iter()
        .copied()
        .filter(|&t| t >= 1 && (t == 1 || cfg!(feature = "threads")))
        .collect();
    let baseline_isa = if available.contains(&Isa::Simd128) { Isa::Simd128 } else { Isa::Scalar };
    let mut rows = Vec::new();
    let mut warmed = std::collections::HashSet::new();
    for (si, shape) in cfg.shapes.iter().enumerate() {
        if shape.rows == 0 || shape.cols == 0 || shape.depth == 0 {
            crate::bail!(ErrorKind::InvalidArgument, "bench shape '{}' has a zero dimension", shape.name);
        }
        if let Some(conv) = shape.conv {
            let win = conv.window();
            if !win.fits(Scheme::Lut, Bits::MIN) || win.depth() != shape.depth || win.ho * win.wo != shape.cols {
                crate::bail!(ErrorKind::InvalidArgument, "bench shape '{}': conv {conv:?} is not a {}-deep GEMM over {} columns with channels in groups of 4", shape.name, shape.depth, shape.cols);
            }
        }
        // The baseline's own operands, run alongside every row (see `time_many`).
        let base_w = PackedWeights::new(&codes(shape.rows * shape.depth, 8, 1 + si as u64), shape.rows, shape.depth, Bits::MAX, Scheme::Dot16)?;
        let base_a = codes(shape.cols * shape.depth, 8, 1000 + si as u64);
        let mut base_pa = PackedActs::new();
        let mut base_out = vec![0i32; shape.rows * shape.cols];
        let mut widths = vec![(8u8, 8u8)];
        widths.extend(cfg.widths.iter().copied().filter(|&p| p != (8, 8)));
        for (wb, ab) in widths {
            let (wbits, abits) = (Bits::new(wb)?, Bits::new(ab)?);
            let w = codes(shape.rows * shape.depth, wb, 1 + si as u64);
            // A convolution's activations: the im2col of one image, which the window path packs.
            let image = shape.conv.map(|c| codes(c.h * c.w * c.c, ab, 1000 + si as u64));
            let a = match (shape.conv, &image) {
                (Some(c), Some(image)) => im2col_reference(image, &c.window()),
                _ => codes(shape.cols * shape.depth, ab, 1000 + si as u64),
            };
            let mut reference: Option<Vec<i32>> = None;
            let mut out = vec![0i32; shape.rows * shape.cols];
            let mut pa = PackedActs::new();
            let is_base_pair = (wb, ab) == (8, 8);
            // The baseline (Dot16, w8a8, baseline Isa) is always measured, first, even when the
            // config leaves it out, so every report carries its own reference.
            let mut combos: Vec<(Scheme, Isa)> = Vec::new();
            if is_base_pair {
                combos.push((Scheme::Dot16, baseline_isa));
            }
            for &scheme in &schemes {
                for &isa in &isas {
                    if !combos.contains(&(scheme, isa)) {
                        combos.push((scheme, isa));
                    }
                }
            }
            for &(scheme, isa) in &combos {
                let pw = PackedWeights::new(&w, shape.rows, shape.depth, wbits, scheme)?;
                for &t in &threads {
                    pa.pack_threads(&a, shape.cols, shape.depth, abits, scheme, t)?;
                    gemm(isa, &pw, &pa, &mut out, t)?;
                    match &reference {
                        None => reference = Some(out.clone()),
                        Some(r) if *r != out => crate::bail!(
                            ErrorKind::InvalidArgument,
                            "bench self-check failed: {} {} w{wb}a{ab} on {} disagrees with the first kernel",
                            scheme.name(), isa.name(), shape.name
                        ),
                        _ => {}
                    }
                    // First use of this kernel in the run: give the engine time to tier up.
                    let warm = if warmed.insert((scheme, isa, t)) { cfg.first_warmup_ms.max(cfg.warmup_ms) } else { cfg.warmup_ms };
                    // As the layers run it: each column block packed by the thread that
                    // multiplies it, in one fork.
                    let mut run = || pack_gemm_then(isa, &pw, &mut pa, ActCodes::Ready(&a), shape.cols, abits, &mut out, t, |_, _| (), &|_, _, _, ()| {});
                    let mut base = || {
                        let codes = ActCodes::Ready(&base_a);
                        pack_gemm_then(baseline_isa, &base_w, &mut base_pa, codes, shape.cols, Bits::MAX, &mut base_out, 1, |_, _| (), &|_, _, _, ()| {})
                    };
                    let (ms, vs) = if is_base_pair && scheme == Scheme::Dot16 && isa == baseline_isa && t == 1 {
                        (time_it(now, cfg, warm, &mut run)?, 1.0)
                    } else {
                        let ms = time_many(now, cfg, warm, &mut [&mut base, &mut run])?;
                        (ms[1], ms[0] / ms[1])
                    };
                    let (ms_gemm, ms_pack) = if cfg.gemm_only {
                        (
                            time_it(now, cfg, cfg.warmup_ms, &mut || gemm(isa, &pw, &pa, &mut out, t))?,
                            time_it(now, cfg, cfg.warmup_ms, &mut || pa.pack_threads(&a, shape.cols, shape.depth, abits, scheme, t))?,
                        )
                    } else {
                        (0.0, 0.0)
                    };
                    rows.push(Row {
                        shape: shape.name.clone(),
                        rows: shape.rows,
                        depth: shape.depth,
                        cols: shape.cols,
                        wbits: wb,
                        abits: ab,
                        scheme: scheme.name().to_string(),
                        isa: isa.name().to_string(),
                        threads: t,
                        ms,
                        gmacs: shape.macs() / (ms * 1e6),
                        ms_gemm,
                        gmacs_gemm: if ms_gemm > 0.0 { shape.macs() / (ms_gemm * 1e6) } else { 0.0 },
                        ms_pack,
                        vs_dot16_w8a8: vs,
                    });
                    if let (Some(conv), Some(image)) = (shape.conv, &image) {
                        if conv.window().fits(scheme, abits) {
                            let row = window_row(now, cfg, shape, conv, image, (wbits, abits), &pw, isa, t, reference.as_deref(), &mut base)?;
                            rows.push(row);
                        }
                    }
                }
            }
        }
    }
    Ok(Report {
        available: available.iter().map(|i| i.name().to_string()).collect(),
        threads_feature: cfg!(feature = "threads"),
        baseline_isa: baseline_isa.name().to_string(),
        dot8_one_plane_at_8_bits: crate::kernels::one_plane_at_8_bits(),
        rows,
    })
}

/// The `<scheme>-window` row of a convolution shape (`lut-window`, `dot8-window`): the image
/// packed for the window path and the GEMM over it (`pw`, packed for Lut or Dot8), timed against
/// the baseline `base` as every row, after a check that every pixel's products equal
/// `reference` (the first kernel's, on the im2col).
#[allow(clippy::too_many_arguments)]
fn window_row(
    now: &dyn Fn() -> f64,
    cfg: &Config,
    shape: &Shape,
    conv: ConvShape,
    image: &[u8],
    (wbits, abits): (Bits, Bits),
    pw: &PackedWeights,
    isa: Isa,
    threads: usize,
    reference: Option<&[i32]>,
    base: &mut dyn FnMut() -> Result<()>,
) -> Result<Row> {
    let win = conv.window();
    let rows = shape.rows;
    let mut acts = WindowActs::default();
    let mut scratch = vec![0i32; rows * win.columns()];
    let got = std::sync::Mutex::new(vec![0i32; rows * shape.cols]);
    let scheme = pw.scheme();
    let name = format!("{}-window", scheme.name());
    acts.pack_threads(image, win, abits, scheme, threads)?;
    window_gemm_then(isa, pw, &mut acts, &mut scratch, threads, |_, _| (), &|p0, acc, _, ()| {
        let mut got = got.lock().unwrap_or_else(|e| e.into_inner());
        got[p0 * rows..p0 * rows + acc.len()].copy_from_slice(acc);
    })?;
    let got = got.into_inner().unwrap_or_else(|e| e.into_inner());
    if reference.is_some_and(|r| r != got.as_slice()) {
        crate::bail!(ErrorKind::InvalidArgument, "bench self-check failed: {name} {} w{}a{} on {} disagrees with the first kernel", isa.name(), wbits.get(), abits.get(), shape.name);
    }
    let mut run = || {
        acts.pack_threads(image, win, abits, scheme, threads)?;
        window_gemm_then(isa, pw, &mut acts, &mut scratch, threads, |_, _| (), &|_, _, _, ()| {})
    };
    let ms = time_many(now, cfg, cfg.warmup_ms.max(cfg.first_warmup_ms), &mut [base, &mut run])?;
    let (ms_gemm, ms_pack) = if cfg.gemm_only {
        (
            time_it(now, cfg, cfg.warmup_ms, &mut || window_gemm_then(isa, pw, &mut acts, &mut scratch, threads, |_, _| (), &|_, _, _, ()| {}))?,
            time_it(now, cfg, cfg.warmup_ms, &mut || acts.pack_threads(image, win, abits, scheme, threads))?,
        )
    } else {
        (0.0, 0.0)
    };
    Ok(Row {
        shape: shape.name.clone(),
        rows,
        depth: shape.depth,
        cols: shape.cols,
        wbits: wbits.get(),
        abits: abits.get(),
        scheme: name,
        isa: isa.name().to_string(),
        threads,
        ms: ms[1],
        gmacs: shape.macs() / (ms[1] * 1e6),
        ms_gemm,
        gmacs_gemm: if ms_gemm > 0.0 { shape.macs() / (ms_gemm * 1e6) } else { 0.0 },
        ms_pack,
        vs_dot16_w8a8: ms[0] / ms[1],
    })
}

/// JSON in, JSON out: what the wasm export `benchKernels(config)` calls.
pub fn run_json(config: &str, now: &dyn Fn() -> f64) -> Result<String> {
    let cfg: Config = if config.trim().is_empty() {
        Config::default()
    } else {
        serde_json::from_str(config).map_err(|e| crate::error::Error::new(ErrorKind::InvalidArgument, format!("bench config: {e}")))?
    };
    if cfg.stat != "median" && cfg.stat != "min" {
        crate::bail!(ErrorKind::InvalidArgument, "bench config: stat must be \"median\" or \"min\"");
    }
    let report = run(&cfg, now)?;
    serde_json::to_string(&report).map_err(|e| crate::error::Error::new(ErrorKind::InvalidArgument, format!("bench report: {e}")))
}

impl Report {
    /// A markdown table, one line per measurement, the same on every host.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "builds Isa: {} | threads feature: {} | baseline: dot16 w8a8 {} | dot8 8-bit activations in {} plane(s)\n\n",
            self.available.join(", "),
            self.threads_feature,
            self.baseline_isa,
            if self.dot8_one_plane_at_8_bits { 1 } else { 2 }
        ));
        s.push_str("| shape | w | a | scheme | isa | thr | ms/call | GMAC/s | GEMM-only GMAC/s | vs dot16 w8a8 |\n");
        s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.3} | {:.1} | {:.1} | {:.2}x |\n",
                r.shape, r.wbits, r.abits, r.scheme, r.isa, r.threads, r.ms, r.gmacs, r.gmacs_gemm, r.vs_dot16_w8a8
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(conv: ConvShape, depth: usize, cols: usize) -> Config {
        Config {
            shapes: vec![Shape { conv: Some(conv), ..Shape::new("tiny conv", 5, depth, cols) }],
            widths: vec![(1, 1), (2, 2), (3, 2)],
            schemes: vec!["lut".into(), "dot16".into()],
            reps: 1,
            warmup_ms: 0.0,
            first_warmup_ms: 0.0,
            rep_ms: 0.05,
            gemm_only: false,
            ..Config::default()
        }
    }

    #[test]
    fn a_conv_shape_adds_a_checked_window_row_per_lut_row() {
        let start = std::time::Instant::now();
        let now = || start.elapsed().as_secs_f64() * 1e3;
        let conv = ConvShape { h: 6, w: 5, c: 8, k: 3 };
        let report = run(&tiny(conv, 72, 30), &now).unwrap();
        let lut = report.rows.iter().filter(|r| r.scheme == "lut").count();
        let window: Vec<_> = report.rows.iter().filter(|r| r.scheme == "lut-window").collect();
        assert!(lut >= 4 && window.len() == lut, "{lut} lut rows, {} window rows", window.len());
        assert!(window.iter().all(|r| r.gmacs > 0.0 && r.cols == 30 && r.vs_dot16_w8a8 > 0.0));
        // A conv that is not the shape's GEMM is refused before anything runs.
        let err = run(&tiny(conv, 72, 31), &now).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let odd = ConvShape { c: 6, ..conv };
        assert_eq!(run(&tiny(odd, 54, 30), &now).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
}
