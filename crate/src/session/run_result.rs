//! [`RunResult`]: what one run of a model says, as a caller reads it: the raw output, the class
//! probabilities, the most probable classes with their labels, and the width and time of the run.

use serde::Serialize;

use crate::bits::Bits;

/// How many classes a run lists in `top`.
pub const TOP_K: usize = 5;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Top {
    pub index: usize,
    pub label: Option<String>,
    pub probability: f32,
}

/// One run. `logits` and `probabilities` are left out of the serialized form: the JS binding
/// hands them over as Float32Arrays, which serde would turn into plain arrays.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunResult {
    #[serde(skip)]
    pub logits: Vec<f32>,
    #[serde(skip)]
    pub probabilities: Vec<f32>,
    /// The `TOP_K` most probable classes, most probable first (ties: lower index first).
    pub top: Vec<Top>,
    pub predicted: usize,
    pub label: Option<String>,
    pub width: Bits,
    pub ms: f64,
}

impl RunResult {
    /// Summarises a model output. `is_probabilities`: the graph ends in a softmax, so the output
    /// is taken as it is.
    pub fn new(output: Vec<f32>, is_probabilities: bool, labels: Option<&[String]>, width: Bits, ms: f64) -> RunResult {
        let probabilities = if is_probabilities { output.clone() } else { softmax(&output) };
        let label = |i: usize| labels.and_then(|l| l.get(i)).cloned();
        let order = top_indices(&probabilities, TOP_K);
        let top = order.iter().map(|&i| Top { index: i, label: label(i), probability: probabilities[i] }).collect();
        let predicted = order.first().copied().unwrap_or(0);
        RunResult { logits: output, probabilities, top, predicted, label: label(predicted), width, ms }
    }

    /// A run whose output is not a vector of class scores (a feature map, say): no softmax and
    /// no top classes (a softmax over a 28x28x64 map took longer than the pass itself, for
    /// numbers nobody reads), `predicted` the index of the largest value.
    pub fn map(output: Vec<f32>, width: Bits, ms: f64) -> RunResult {
        let predicted = argmax(&output);
        RunResult { logits: output, probabilities: Vec::new(), top: Vec::new(), predicted, label: None, width, ms }
    }
}

/// The indices of the `k` largest values, largest first, ties to the lower index; in
/// `total_cmp`'s order, so a NaN output orders deterministically instead of panicking. One pass
/// with a k-long insertion list, and a value that does not beat the k-th best is passed over
/// with one integer compare: an output that is an image (50,176 values for a 3x3 conv at
/// 28x28x64) took 2-3 ms to sort whole for its top 5, and 0.1 ms for its argmax by comparator.
fn top_indices(p: &[f32], k: usize) -> Vec<usize> {
    let mut best: Vec<(i32, usize)> = Vec::with_capacity(k + 1);
    // Once the list is full, the key a value must exceed to enter it.
    let mut floor = None;
    for (i, &v) in p.iter().enumerate() {
        let key = total_key(v);
        if floor.is_some_and(|f| key <= f) {
            continue;
        }
        // After every equal key: an equal value with a higher index ranks below.
        let at = best.iter().position(|&(b, _)| key > b).unwrap_or(best.len());
        best.insert(at, (key, i));
        best.truncate(k);
        if best.len() == k {
            floor = best.last().map(|&(b, _)| b);
        }
    }
    best.into_iter().map(|(_, i)| i).collect()
}

/// `top_indices(p, 1)[0]` (0 for an empty `p`) in two passes that vectorize: the largest key,
/// then the first value with it, sought 64 values at a time. A map's output is large (50,176
/// values for a 3x3 conv at 28x28x64), and the insertion list's compare and branch per value took
/// about 0.03 ms of such a run in a browser (BENCHMARKS.md).
fn argmax(p: &[f32]) -> usize {
    let Some(best) = p.iter().map(|&v| total_key(v)).max() else {
        return 0;
    };
    const BLOCK: usize = 64;
    let block = p.chunks(BLOCK).position(|c| c.iter().fold(false, |hit, &v| hit | (total_key(v) == best))).unwrap_or(0);
    let at = p[block * BLOCK..].iter().position(|&v| total_key(v) == best).unwrap_or(0);
    block * BLOCK + at
}

/// An i32 that orders as `f32::total_cmp` orders the floats (its own bit trick).
#[inline]
fn total_key(v: f32) -> i32 {
    let b = v.to_bits() as i32;
    b ^ (((b >> 31) as u32) >> 1) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same order as sorting every index, on random values, many ties, NaNs and infinities,
    /// and lengths below, at and above k.
    #[test]
    fn top_indices_equal_a_full_sort() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        for case in 0..400 {
            let n = case % 23;
            let p: Vec<f32> = (0..n)
                .map(|_| match next() % 9 {
                    0 => f32::NAN,
                    1 => f32::INFINITY,
                    2 => f32::NEG_INFINITY,
                    3 | 4 => (next() % 3) as f32, // ties
                    _ => next() as f32 / u32::MAX as f32,
                })
                .collect();
            let mut all: Vec<usize> = (0..n).collect();
            all.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
            for k in [1, 3, TOP_K] {
                assert_eq!(top_indices(&p, k), all[..k.min(n)], "case {case}, k {k}, p {p:?}");
            }
        }
    }

    /// `argmax` is `top_indices(p, 1)`: ties to the first, NaNs and infinities in total order,
    /// the maximum in the first, a middle or the last block of 64 or past the last whole one.
    #[test]
    fn argmax_equals_the_first_of_top_indices() {
        assert_eq!(argmax(&[]), 0);
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        for case in 0..600 {
            let n = 1 + case % 300;
            let mut p: Vec<f32> = (0..n)
                .map(|_| match next() % 11 {
                    0 => f32::NAN,
                    1 => -f32::NAN,
                    2 => f32::NEG_INFINITY,
                    3 | 4 => (next() % 3) as f32 - 1.0, // ties, and -0.0 / 0.0 below
                    5 => -0.0,
                    _ => next() as f32 / u32::MAX as f32 - 0.5,
                })
                .collect();
            if case % 3 == 0 {
                // A single clear maximum somewhere (no NaN can beat it).
                p.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = 0.0);
                let at = next() as usize % n;
                p[at] = 1e30;
            }
            assert_eq!(argmax(&p), top_indices(&p, 1)[0], "case {case}, n {n}, p {p:?}");
        }
    }
}

/// Numerically stable softmax in f64.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}
