//! Measurement primitives shared by the kernel benchmark ([`bench`](crate::bench)) and the
//! precision policy's calibration ([`policy`](crate::policy)). The host supplies the clock: a
//! `&dyn Fn() -> f64` returning milliseconds from any fixed origin (`performance.now()` in wasm,
//! `Instant` natively), so the same code measures in every engine.

use crate::error::Result;

/// Calls `f` untimed until it has run `min_calls` times and, unless `max_calls` came first,
/// `min_ms` have passed. For the engine as much as the caches: a wasm engine runs new code in a
/// baseline tier first and swaps optimized code in after some use (V8: Liftoff, then TurboFan;
/// 2-3x slower before; the policy's predictions came out 1.3-2.4x too high without it).
pub fn warm_up(now: &dyn Fn() -> f64, min_calls: usize, min_ms: f64, max_calls: usize, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    let start = now();
    let mut n = 0;
    while n < min_calls || (now() - start < min_ms && n < max_calls) {
        f()?;
        n += 1;
    }
    Ok(())
}

/// Runs `f` for `min_ms` untimed, then times it until `min_ms` more have passed (and at least
/// twice) and returns the fastest call, ms: interference only ever adds time.
pub fn fastest(now: &dyn Fn() -> f64, min_ms: f64, f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
    warm_up(now, 1, min_ms, 1000, f)?;
    let start = now();
    let mut best = f64::INFINITY;
    let mut n = 0;
    while n < 2 || (now() - start < min_ms && n < 1000) {
        let t0 = now();
        f()?;
        best = best.min(now() - t0);
        n += 1;
    }
    Ok(best)
}

/// How [`interleaved`] times.
pub struct Reps {
    /// Untimed calls before timing, and at least `warmup_ms` of them.
    pub warmup: usize,
    pub warmup_ms: f64,
    /// Timed repetitions.
    pub reps: usize,
    /// Minimum length of one repetition, ms (the call is repeated inside it), so that a coarse
    /// clock (100 us in a browser without cross-origin isolation) does not dominate.
    pub rep_ms: f64,
    /// The fastest repetition instead of the median: the robust choice on a machine shared with
    /// other work, where interference only ever adds time.
    pub min: bool,
}

/// Times each closure: a warm-up, then `reps` rounds in which every closure runs one repetition
/// of at least `rep_ms`, in turn; returns the median (or min) ms per call of each.
/// Interleaving is what makes ratios between the closures trustworthy: on a shared machine
/// speed drifts over seconds (the same kernel read 17-32 GMAC/s across one run), and
/// alternating short repetitions puts both sides of a ratio in the same drift.
pub fn interleaved(now: &dyn Fn() -> f64, r: &Reps, fs: &mut [&mut dyn FnMut() -> Result<()>]) -> Result<Vec<f64>> {
    let reps = r.reps.max(1);
    let mut inner = Vec::with_capacity(fs.len());
    for f in fs.iter_mut() {
        warm_up(now, r.warmup.max(1), r.warmup_ms, usize::MAX, *f)?;
        // Calibrate the inner count from one call so each repetition spans rep_ms.
        let t0 = now();
        f()?;
        let one = (now() - t0).max(1e-3);
        inner.push(((r.rep_ms / one).ceil() as usize).clamp(1, 100_000));
    }
    let mut times = vec![Vec::with_capacity(reps); fs.len()];
    for _ in 0..reps {
        for (i, f) in fs.iter_mut().enumerate() {
            let t0 = now();
            for _ in 0..inner[i] {
                f()?;
            }
            times[i].push((now() - t0) / inner[i] as f64);
        }
    }
    Ok(times.iter_mut().map(|t| if r.min { t.iter().copied().fold(f64::INFINITY, f64::min) } else { median(t) }).collect())
}

/// The median of a sample (the upper one of an even count; NaN-tolerant order). Panics on an
/// empty sample, which no caller builds.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(core::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// The mean of a sample (NaN when empty).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Groups [`typical_ms`] splits a sample into.
pub const GROUPS: usize = 5;

/// A latency from samples in the order they ran: the median of the means of [`GROUPS`]
/// consecutive groups (the plain mean below that many). A mean, so a CPU that runs in slices
/// (DevTools throttling: most short passes at full speed, a few absorbing the pauses) reads as
/// slow as it is, where a quartile or the fastest pass read it as unthrottled; the median over
/// groups, so one stall of the whole process (seen: about 70 ms among 1 ms passes, which made
/// one width's plain mean 2.3x the others') moves one group only.
pub fn typical_ms(xs: &[f64]) -> f64 {
    if xs.len() < GROUPS {
        return mean(xs);
    }
    let mut means: Vec<f64> = (0..GROUPS).map(|g| mean(&xs[g * xs.len() / GROUPS..(g + 1) * xs.len() / GROUPS])).collect();
    means.sort_by(f64::total_cmp);
    means[GROUPS / 2]
}
