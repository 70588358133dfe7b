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
//!
//! Measuring and choosing are apart: [`calibrate`] (calibrate.rs) produces a [`Calibration`],
//! [`decide`] (decide.rs) reads one; the timing primitives are crate::timing's.

mod calibrate;
mod decide;

use serde::{Deserialize, Serialize};

use crate::bits::Bits;

pub use crate::timing::{mean, typical_ms, GROUPS};
pub use calibrate::calibrate;
pub use decide::{decide, Budget, Choice, Decision, TIE};

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
