//! Precision policy: predicts each width's latency on this device and picks the width for a
//! caller's budget.
//!
//! [`calibrate`] measures two things on this device. (1) A forward pass of the model itself at
//! every width its loaded planes serve (passes in shuffled rounds after a warm-up, read by
//! [`typical_ms`]): the
//! prediction for those widths. (2) Every integer GEMM of the model at every width, timed alone
//! with the kernels the runtime would use, plus the rest of a pass (quantizing, im2col, pooling,
//! affine: f32 work that barely depends on the width), taken as the median over the measured
//! widths of pass minus GEMMs: the per-layer prediction, used for widths that cannot run yet
//! (planes not downloaded) and reported next to the pass for the others. Timing whole passes
//! matters on engines where GEMMs timed alone mislead (V8 tiering, thread-pool wake-ups: the
//! per-layer figure was off by 32-77% in Node and Chromium where passes repeat within noise).
//! With more than one thread, the passes are also timed on one thread, and [`decide`] runs a
//! width on one thread where more are not at least [`TIE`] faster.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::kernels::{best_scheme, gemm, PackedActs, PackedWeights};
use crate::layers::GemmShape;
use crate::model::Model;

/// What [`calibrate`] measured on this device for one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calibration {
    pub isa: String,
    pub threads: usize,
    /// Per width: predicted ms of its GEMMs.
    pub gemm_ms: Vec<(Bits, f64)>,
    /// The rest of a forward pass, ms (the same at every width).
    pub other_ms: f64,
    /// Per width the loaded planes serve: its measured passes at `threads` ([`typical_ms`]), ms.
    #[serde(default)]
    pub pass_ms: Vec<(Bits, f64)>,
    /// The same passes on one thread, measured in the same rounds when `threads` > 1 (empty
    /// otherwise): the policy chooses the thread count from the two.
    #[serde(default)]
    pub one_thread_ms: Vec<(Bits, f64)>,
    /// The forward pass measured at `measured_width`, ms.
    pub measured_ms: f64,
    pub measured_width: Bits,
    /// Wall time the calibration took, ms.
    pub took_ms: f64,
}

impl Calibration {
    /// Predicted latency of one forward pass at width `w`, ms: its measured pass where there is
    /// one, else the per-layer prediction.
    pub fn predict_ms(&self, w: Bits) -> Option<f64> {
        self.pass_ms.iter().find(|x| x.0 == w).map(|x| x.1).or_else(|| self.per_layer_ms(w))
    }

    /// The thread count to run width `w` with and its predicted latency: one thread where its
    /// measured pass is within [`TIE`] of the model's thread count (threads that do not pay
    /// only take cores from the page), else the model's count.
    pub fn threads_for(&self, w: Bits) -> (usize, f64) {
        let many = self.predict_ms(w).unwrap_or(f64::INFINITY);
        match self.one_thread_ms.iter().find(|x| x.0 == w) {
            Some(&(_, one)) if self.threads > 1 && one <= many * (1.0 + TIE) => (1, one),
            _ => (self.threads, many),
        }
    }

    /// The per-layer prediction at width `w`: its GEMMs timed alone plus the rest of a pass, ms.
    pub fn per_layer_ms(&self, w: Bits) -> Option<f64> {
        self.gemm_ms.iter().find(|x| x.0 == w).map(|x| x.1 + self.other_ms)
    }
}

pub use crate::timing::{mean, typical_ms, GROUPS};
use crate::timing::fastest;

/// Times one GEMM shape with the scheme the runtime would pick, activation packing included.
fn time_gemm(model: &Model, g: &GemmShape, now: &dyn Fn() -> f64, min_ms: f64) -> Result<f64> {
    let scheme = best_scheme(g.wbits, g.abits);
    // Mid-range codes: kernel speed does not depend on the values.
    let wmask = g.wbits.levels() as u8;
    let amask = g.abits.levels() as u8;
    let w: Vec<u8> = (0..g.rows * g.depth).map(|i| (i as u8).wrapping_mul(37) & wmask).collect();
    let a: Vec<u8> = (0..g.cols * g.depth).map(|i| (i as u8).wrapping_mul(101) & amask).collect();
    let pw = PackedWeights::new(&w, g.rows, g.depth, g.wbits, scheme)?;
    let mut pa = PackedActs::new();
    let mut out = vec![0i32; g.rows * g.cols];
    let (isa, threads) = (model.isa(), model.threads());
    let one = fastest(now, min_ms, &mut || {
        pa.pack_threads(&a, g.cols, g.depth, g.abits, scheme, threads)?;
        gemm(isa, &pw, &pa, &mut out, threads)
    })?;
    Ok(one * g.count as f64)
}

/// Measures what [`Calibration`] holds, for `model` with its current instruction set and thread
/// count. `min_ms` is the time spent per distinct GEMM shape (a few ms is enough: the fastest
/// of several calls is kept); `now` returns milliseconds from any fixed origin. The model's
/// width is left as it was.
pub fn calibrate(model: &mut Model, now: &dyn Fn() -> f64, min_ms: f64) -> Result<Calibration> {
    let start = now();
    let current = model.width();
    let input = vec![0.5f32; crate::tensor::numel(model.input_shape()).unwrap_or(0)];
    let loaded = model.loaded_widths();
    // Warm-up, untimed: rounds over every loaded width until they stop getting faster (none of
    // the last 20 beat the best by 3%), at least 40 * min_ms and at most 150 * min_ms. A wasm
    // engine runs new code in a baseline tier and swaps optimized code in when a background
    // compile finishes; on a busy machine that took longer than the fixed 100 ms this was, and
    // a calibration started before it predicted Chromium passes 1.5x too slow at every width
    // (a second calibration right after agreed with the check within 24%).
    let t_warm = now();
    let (mut best, mut stale, mut round) = (f64::INFINITY, 0, 0);
    loop {
        let t0 = now();
        for &w in &loaded {
            model.set_width(w)?;
            model.run(&input)?;
        }
        let t = now() - t0;
        stale = if t < best * 0.97 { 0 } else { stale + 1 };
        best = best.min(t);
        round += 1;
        let spent = now() - t_warm;
        if spent >= min_ms * 150.0 || round >= 10_000 || (spent >= min_ms * 40.0 && stale >= 20) {
            break;
        }
    }
    let widths: Vec<Bits> = model.widths().iter().map(|w| w.w).collect();
    let mut cache: BTreeMap<GemmShape, f64> = BTreeMap::new();
    let mut gemm_ms = Vec::with_capacity(widths.len());
    for &w in &widths {
        let mut total = 0.0;
        for g in model.gemms(w)? {
            let key = GemmShape { count: 1, ..g };
            let t = match cache.get(&key) {
                Some(&t) => t,
                None => {
                    let t = time_gemm(model, &key, now, min_ms)?;
                    cache.insert(key, t);
                    t
                }
            };
            total += t * g.count as f64;
        }
        gemm_ms.push((w, total));
    }
    // Passes in rounds over the widths, in a shuffled order per round: a burst of load from
    // elsewhere then costs every width alike instead of skewing the one timed during it, and no
    // width keeps a fixed phase against a periodic disturbance. Each width's figure is
    // `typical_ms` of its passes: means, as a quartile read a 6x throttled 8-bit pass as 2.5 ms.
    // Each (width, thread count) pair is one slot of a round; one thread as well as the
    // model's count when that is more, so that the policy can tell whether threads pay.
    let threads = model.threads();
    let counts: Vec<usize> = if threads > 1 { vec![threads, 1] } else { vec![1] };
    let slots: Vec<(Bits, usize)> = counts.iter().flat_map(|&t| loaded.iter().map(move |&w| (w, t))).collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); slots.len()];
    let mut order: Vec<usize> = (0..slots.len()).collect();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    // About 10 * min_ms per width (50 ms at the default): with fewer passes one preempted pass
    // (a 5 ms stall among 0.8 ms passes) moved a width's mean by half (seen: predictions 1.44x
    // and 1.67x for single widths while the others were within 10%), and a short calibration
    // samples one state of a machine whose speed drifts over hundreds of milliseconds.
    let budget = min_ms * 10.0 * slots.len() as f64;
    let t_start = now();
    round = 0;
    while round < 3 || (now() - t_start < budget && round < 1000) {
        for k in (1..order.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(k, (seed >> 33) as usize % (k + 1));
        }
        for &i in &order {
            model.set_width(slots[i].0)?;
            model.set_threads(slots[i].1);
            let t0 = now();
            model.run(&input)?;
            samples[i].push(now() - t0);
        }
        round += 1;
    }
    model.set_width(current)?;
    model.set_threads(threads);
    let at = |t: usize| -> Vec<(Bits, f64)> {
        slots.iter().zip(&samples).filter(|(s, _)| s.1 == t).map(|(s, x)| (s.0, typical_ms(x))).collect()
    };
    let pass_ms = at(threads);
    let one_thread_ms = if threads > 1 { at(1) } else { Vec::new() };
    let mut rest: Vec<f64> =
        pass_ms.iter().map(|&(w, ms)| ms - gemm_ms.iter().find(|x| x.0 == w).map_or(0.0, |x| x.1)).collect();
    rest.sort_by(f64::total_cmp);
    let other_ms = rest.get(rest.len() / 2).copied().unwrap_or(0.0).max(0.0);
    let measured_ms = pass_ms.iter().find(|x| x.0 == current).map_or(0.0, |x| x.1);
    Ok(Calibration {
        isa: model.isa().name().to_string(),
        threads: model.threads(),
        gemm_ms,
        other_ms,
        pass_ms,
        one_thread_ms,
        measured_ms,
        measured_width: current,
        took_ms: now() - start,
    })
}

/// What the caller can afford. Every field is optional; an empty budget asks for the most
/// accurate width.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Budget {
    /// Latency of one forward pass, ms.
    pub latency_ms: Option<f64>,
    /// Bytes of the model file the width may need downloaded (its prefix of bit planes).
    pub max_bytes: Option<u64>,
    /// Bytes of memory the runtime may hold for the model at the width (see
    /// [`Model::memory_bytes`](crate::Model::memory_bytes)).
    pub max_memory_bytes: Option<u64>,
}

/// One width as the policy saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Choice {
    pub width: Bits,
    /// Threads to run this width with: one where the calibration found more no faster.
    pub threads: usize,
    pub predicted_ms: f64,
    /// Test accuracy from the model's stored eval table, if it has one for this width.
    pub accuracy: Option<f64>,
    /// Bytes of the file this width needs (header, tensors and its bit planes), if known.
    pub bytes: Option<u64>,
    /// Bytes of memory the runtime holds for the model at this width, if known.
    pub memory_bytes: Option<u64>,
    pub fits: bool,
}

/// The policy's answer: the width, every alternative, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub width: Bits,
    pub threads: usize,
    pub isa: String,
    pub options: Vec<Choice>,
    pub reasons: Vec<String>,
}

/// Relative difference under which two predicted latencies count as equal when no width fits.
pub const TIE: f64 = 0.1;

/// Chooses a width: among the widths that fit every part of the budget, the most accurate
/// (stored accuracy; a wider width where none is stored), the faster on a tie. If none fits,
/// the fastest width (the narrowest of those within [`TIE`] of it), and the reasons say so.
/// `accuracy`, `bytes` and `memory` are per width, as known.
pub fn decide(
    cal: &Calibration,
    budget: &Budget,
    accuracy: &[(Bits, f64)],
    bytes: &[(Bits, u64)],
    memory: &[(Bits, u64)],
) -> Result<Decision> {
    if let Some(ms) = budget.latency_ms {
        if !(ms.is_finite() && ms > 0.0) {
            crate::bail!(ErrorKind::InvalidArgument, "latency budget must be a positive number of ms, got {ms}");
        }
    }
    if cal.gemm_ms.is_empty() {
        crate::bail!(ErrorKind::InvalidArgument, "the calibration holds no widths");
    }
    let mut options: Vec<Choice> = cal
        .gemm_ms
        .iter()
        .map(|&(w, _)| {
            let (threads, predicted_ms) = cal.threads_for(w);
            let acc = accuracy.iter().find(|x| x.0 == w).map(|x| x.1);
            let b = bytes.iter().find(|x| x.0 == w).map(|x| x.1);
            let mem = memory.iter().find(|x| x.0 == w).map(|x| x.1);
            let fits = budget.latency_ms.is_none_or(|ms| predicted_ms <= ms)
                && budget.max_bytes.is_none_or(|m| b.is_none_or(|b| b <= m))
                && budget.max_memory_bytes.is_none_or(|m| mem.is_none_or(|b| b <= m));
            Choice { width: w, threads, predicted_ms, accuracy: acc, bytes: b, memory_bytes: mem, fits }
        })
        .collect();
    options.sort_by(|a, b| b.width.cmp(&a.width));
    // Higher is better: stored accuracy first, then width, then speed.
    let better = |a: &Choice, b: &Choice| -> bool {
        match (a.accuracy, b.accuracy) {
            (Some(x), Some(y)) if x != y => x > y,
            _ if a.width != b.width && (a.accuracy.is_none() || b.accuracy.is_none()) => a.width > b.width,
            _ => a.predicted_ms < b.predicted_ms,
        }
    };
    let mut reasons = vec![format!(
        "calibrated on this device: {} kernels, {} thread{}, the model measured {:.2} ms at {} bits",
        cal.isa,
        cal.threads,
        if cal.threads == 1 { "" } else { "s" },
        cal.measured_ms,
        cal.measured_width
    )];
    let fitting: Vec<&Choice> = options.iter().filter(|o| o.fits).collect();
    let chosen = if let Some(best) = fitting.iter().copied().reduce(|a, b| if better(b, a) { b } else { a }) {
        let why_acc = match best.accuracy {
            Some(a) => format!("{:.2}% stored test accuracy", a * 100.0),
            None => "no stored accuracy; the widest fitting width".to_string(),
        };
        reasons.push(format!("{} bits: the most accurate width within the budget ({why_acc}, predicted {:.2} ms)", best.width, best.predicted_ms));
        best.width
    } else {
        let least = options.iter().map(|o| o.predicted_ms).fold(f64::INFINITY, f64::min);
        // Predictions within TIE of the fastest are not told apart by a calibration on a busy
        // device; of those, the narrowest needs the fewest bytes and the least memory.
        let fastest = options
            .iter()
            .filter(|o| o.predicted_ms <= least * (1.0 + TIE))
            .min_by_key(|o| o.width)
            .expect("options is not empty");
        reasons.push(format!(
            "no width fits the budget; {} bits is the fastest (predicted {:.2} ms; widths within {:.0}% of the fastest count as equally fast, and the narrowest is taken)",
            fastest.width,
            fastest.predicted_ms,
            TIE * 100.0
        ));
        fastest.width
    };
    if let Some(ms) = budget.latency_ms {
        let over: Vec<String> = options.iter().filter(|o| o.predicted_ms > ms).map(|o| o.width.to_string()).collect();
        if !over.is_empty() {
            reasons.push(format!("widths {} are predicted slower than the {ms} ms budget", over.join(", ")));
        }
    }
    if let Some(m) = budget.max_bytes {
        let over: Vec<String> = options.iter().filter(|o| o.bytes.is_some_and(|b| b > m)).map(|o| o.width.to_string()).collect();
        if !over.is_empty() {
            reasons.push(format!("widths {} need more than the {m}-byte data budget", over.join(", ")));
        }
    }
    if let Some(m) = budget.max_memory_bytes {
        let over: Vec<String> =
            options.iter().filter(|o| o.memory_bytes.is_some_and(|b| b > m)).map(|o| o.width.to_string()).collect();
        if !over.is_empty() {
            reasons.push(format!("widths {} need more than the {m}-byte memory cap", over.join(", ")));
        }
    }
    let pick = options.iter().find(|o| o.width == chosen).expect("the chosen width is an option");
    if let Some(&(_, one)) = cal.one_thread_ms.iter().find(|x| x.0 == chosen) {
        let many = cal.predict_ms(chosen).unwrap_or(f64::INFINITY);
        reasons.push(if pick.threads == 1 {
            format!(
                "1 thread: at {chosen} bits {} threads are predicted {many:.2} ms against {one:.2} ms on one, not more than {:.0}% faster, so the other cores stay free",
                cal.threads,
                TIE * 100.0
            )
        } else {
            format!("{} threads: predicted {many:.2} ms at {chosen} bits against {one:.2} ms on one thread", cal.threads)
        });
    }
    Ok(Decision { width: chosen, threads: pick.threads, isa: cal.isa.clone(), options, reasons })
}
