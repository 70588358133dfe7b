//! A session: one loaded model (which knows its file's layout), the selected width and thread count, the
//! device calibration for the precision policy, and runs summarised for a caller. Platform-neutral
//! (the clock is passed in), so the JavaScript binding (crate/src/wasm/) only converts values and
//! everything here is tested natively (crate/tests/session.rs).

mod attack;
mod counterfactual;
mod progressive;
mod run_result;
mod text;

pub use attack::{AttackProgress, AttackReport, AttackRequest, AttackRun, AttackSettings, WidthPrediction};
pub use run_result::{softmax, RunResult, Top, TOP_K};
pub use counterfactual::{counterfactual_threshold, detect, Detection};
pub use text::{encode_text, utf16_offsets, Encoded, TextClasses, TextRun, TokenClasses, MAX_TEXT_BYTES};

use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::format::{Layout, Op};
use crate::image::{self, ImageOptions};
use crate::model::Model;
use crate::policy::{Budget, Calibration, Decision};

/// A clock in milliseconds (`performance.now()` in a browser, any monotonic clock natively).
pub type Clock<'a> = &'a dyn Fn() -> f64;

pub struct Session {
    model: Model,
    calibration: Option<Calibration>,
    /// The prefix a progressively loaded model was built from, kept so that `extend` can add
    /// planes; empty once every plane is in, and for a whole file.
    prefix: Vec<u8>,
    /// The attack in progress, run in slices (attack.rs).
    attack: Option<AttackRun>,
    /// A text model's tokenizer, built from the file's vocabulary on first use (text.rs).
    tokenizer: Option<crate::text::Tokenizer>,
}

impl Session {
    /// Parses and validates a whole `.anybit` file; it runs on `threads` threads at its widest width.
    pub fn load(bytes: &[u8], threads: usize) -> Result<Session> {
        Ok(Session::new(Model::from_bytes(bytes)?, Vec::new(), threads))
    }

    fn new(mut model: Model, prefix: Vec<u8>, threads: usize) -> Session {
        model.set_threads(threads);
        Session { model, calibration: None, prefix, attack: None, tokenizer: None }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Per-node times of one pass on `input` (`Model::profile`), for benchmarks.
    pub fn profile(&mut self, input: &[f32], now: &dyn Fn() -> f64) -> Result<Vec<(String, f64)>> {
        self.model.profile(input, now)
    }

    pub fn layout(&self) -> &Layout {
        self.model.layout()
    }

    pub fn width(&self) -> Bits {
        self.model.width()
    }

    /// Switches the weight width (one the model supports and the loaded planes serve).
    pub fn set_width(&mut self, w: Bits) -> Result<()> {
        self.model.set_width(w)
    }

    pub fn threads(&self) -> usize {
        self.model.threads()
    }

    /// Threads a run may use: 1..=`pool` (the threads started for this instance).
    pub fn set_threads(&mut self, n: usize, pool: usize) -> Result<()> {
        if !(1..=pool).contains(&n) {
            crate::bail!(ErrorKind::InvalidArgument, "thread count must be an integer in 1..={pool}, got {n}");
        }
        self.model.set_threads(n);
        Ok(())
    }

    /// Per supported width: what the model holds at that width plus the file prefix this session
    /// keeps (a progressive load keeps it to extend later, and switching up grows it to that
    /// width's prefix).
    pub fn memory_per_width(&self) -> Result<Vec<(Bits, u64)>> {
        let mut out = Vec::new();
        for w in self.model.widths().iter().map(|w| w.w) {
            let kept = if self.prefix.is_empty() { 0 } else { self.layout().bytes_for(w).max(self.prefix.len() as u64) };
            out.push((w, self.model.memory_bytes(w)? as u64 + kept));
        }
        Ok(out)
    }

    /// Times this model on this device (`policy::calibrate`, at least `min_ms` per measurement)
    /// on `pool` threads, and keeps the result for `decide`.
    pub fn calibrate(&mut self, now: Clock, min_ms: f64, pool: usize) -> Result<&Calibration> {
        if !(min_ms.is_finite() && (0.0..=1000.0).contains(&min_ms)) {
            crate::bail!(ErrorKind::InvalidArgument, "minMs must be in 0..=1000, got {min_ms}");
        }
        // At the pool's size whatever a decision set since: the choice of thread count is the policy's.
        let was = self.model.threads();
        self.model.set_threads(pool);
        let cal = crate::policy::calibrate(&mut self.model, now, min_ms);
        self.model.set_threads(was);
        Ok(self.calibration.insert(cal?))
    }

    /// The precision policy for `budget` (`policy::decide`) with the model's stored accuracy, the
    /// download and the memory of every width. Needs `calibrate` first, on the same `pool`.
    pub fn decide(&self, budget: &Budget, pool: usize) -> Result<Decision> {
        let Some(cal) = self.calibration.as_ref() else {
            crate::bail!(ErrorKind::InvalidArgument, "call calibrate() before decide()");
        };
        if cal.threads != pool {
            crate::bail!(ErrorKind::InvalidArgument, "the thread pool changed since calibrate(); calibrate again");
        }
        let accuracy = self.model.graph().eval.first().map(|e| e.by_width()).unwrap_or_default();
        let bytes: Vec<(Bits, u64)> = self.model.widths().iter().map(|w| (w.w, self.layout().bytes_for(w.w))).collect();
        let memory = self.memory_per_width()?;
        crate::policy::decide(cal, budget, &accuracy, &bytes, &memory)
    }

    /// Runs one sample (NHWC floats, `input_shape` elements), timed with `now`.
    pub fn run<'a>(&mut self, input: impl Into<std::borrow::Cow<'a, [f32]>>, now: Clock) -> Result<RunResult> {
        let start = now();
        let output = self.model.run(input)?;
        let ms = now() - start;
        if self.model.output_shape().len() > 1 {
            return Ok(RunResult::map(output, self.model.width(), ms));
        }
        Ok(RunResult::new(output, self.ends_in_softmax(), self.model.labels(), self.model.width(), ms))
    }

    /// A graph that ends in Softmax already outputs probabilities.
    fn ends_in_softmax(&self) -> bool {
        matches!(self.model.graph().nodes.last().map(|n| &n.op), Some(Op::Softmax))
    }

    /// Runs on `cols x rows` RGBA bytes, converted to the model input by `image::to_input`.
    pub fn run_image(&mut self, rgba: &[u8], cols: usize, rows: usize, opts: ImageOptions, now: Clock) -> Result<RunResult> {
        let input = self.image_input(rgba, cols, rows, opts)?;
        self.run(input, now)
    }

    /// `cols x rows` RGBA bytes as this model's input (`image::to_input`), as `run_image` sees them.
    pub fn image_input(&self, rgba: &[u8], cols: usize, rows: usize, opts: ImageOptions) -> Result<Vec<f32>> {
        if self.model.is_text() {
            crate::bail!(ErrorKind::InvalidArgument, "this model takes text, not images: give it a string (encode, runText)");
        }
        image::to_input(rgba, cols, rows, self.model.input_shape(), opts)
    }
}
