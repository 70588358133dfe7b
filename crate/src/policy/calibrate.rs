//! Calibration: times a model on this device at every loaded width, and every GEMM it runs at
//! every width, into a [`Calibration`] (the module docs in policy/mod.rs say what and why).

use std::collections::BTreeMap;

use super::Calibration;
use crate::bits::Bits;
use crate::error::Result;
use crate::kernels::{best_scheme, gemm, window_gemm_then, PackedActs, PackedWeights, WindowActs};
use crate::layers::GemmShape;
use crate::model::Model;
use crate::timing::{fastest, typical_ms};

/// Times one GEMM shape with the scheme the runtime would pick, activation packing included.
fn time_gemm(model: &Model, g: &GemmShape, now: &dyn Fn() -> f64, min_ms: f64) -> Result<f64> {
    let scheme = best_scheme(g.wbits, g.abits, g.depth);
    // Mid-range codes: kernel speed does not depend on the values.
    let wmask = g.wbits.levels() as u8;
    let amask = g.abits.levels() as u8;
    let w: Vec<u8> = (0..g.rows * g.depth).map(|i| (i as u8).wrapping_mul(37) & wmask).collect();
    let pw = PackedWeights::new(&w, g.rows, g.depth, g.wbits, scheme)?;
    let (isa, threads) = (model.isa(), model.threads());
    if let Some((win, _)) = g.window.filter(|&(w, s)| s == scheme && w.fits(scheme, g.abits)) {
        // The window path: the image packed once, then the GEMM over the padded rows.
        let image: Vec<u8> = (0..win.h * win.w * win.c).map(|i| (i as u8).wrapping_mul(101) & amask).collect();
        let mut acts = WindowActs::default();
        let mut out = vec![0i32; g.rows * win.columns()];
        let one = fastest(now, min_ms, &mut || {
            acts.pack_threads(&image, win, g.abits, scheme, threads)?;
            window_gemm_then(isa, &pw, &mut acts, &mut out, threads, |_, _| (), &|_, _, _, ()| {})
        })?;
        return Ok(one * g.count as f64);
    }
    let a: Vec<u8> = (0..g.cols * g.depth).map(|i| (i as u8).wrapping_mul(101) & amask).collect();
    let mut pa = PackedActs::new();
    let mut out = vec![0i32; g.rows * g.cols];
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
    let input = model.sample_input();
    let loaded = model.loaded_widths();
    // Warm-up, untimed: rounds over every loaded width until they stop getting faster (none of
    // the last 20 beat the best by 3%), at least 40 * min_ms and at most 150 * min_ms. A wasm
    // engine runs new code in a baseline tier and swaps optimized code in when a background
    // compile finishes, which on a busy machine takes longer than any fixed warm-up; a
    // calibration started before it predicts every width too slow (BENCHMARKS.md, "Precision
    // policy").
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
