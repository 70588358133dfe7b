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
        let mut order: Vec<usize> = (0..probabilities.len()).collect();
        // total_cmp: a NaN output sorts deterministically instead of panicking.
        order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]).then(a.cmp(&b)));
        let top = order.iter().take(TOP_K).map(|&i| Top { index: i, label: label(i), probability: probabilities[i] }).collect();
        let predicted = order.first().copied().unwrap_or(0);
        RunResult { logits: output, probabilities, top, predicted, label: label(predicted), width, ms }
    }
}

/// Numerically stable softmax in f64.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}
