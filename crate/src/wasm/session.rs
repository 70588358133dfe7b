//! `Session`: one loaded model, its current width, and runs on Float32Array or ImageData.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::image::{self, ImageOptions};
use super::{invalid, js_error, performance_now, pool_threads, to_js};
use crate::bits::Bits;
use crate::error::{Error, ErrorKind};
use crate::format::{EvalResult, Op, Width};
use crate::model::Model;
use crate::policy::{Budget, Calibration};

/// How many classes `run` lists in `top`.
const TOP_K: usize = 5;

#[wasm_bindgen]
pub struct Session {
    model: Model,
    /// Where the bit planes start in the file and how long each is: a width's prefix is
    /// `start + planes * plane` bytes (header, tensors and its planes).
    planes_at: (u64, u64),
    calibration: Option<Calibration>,
    /// The prefix a progressively loaded model was built from, kept so that `extend` can add
    /// planes; empty for a whole file.
    prefix: Vec<u8>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info<'a> {
    name: &'a str,
    input_shape: &'a [usize],
    labels: Option<&'a [String]>,
    widths: &'a [Width],
    /// Widths the loaded bit planes serve (all of `widths` for a whole file).
    loaded_widths: Vec<Bits>,
    planes_loaded: u8,
    width: Bits,
    threads: usize,
    eval: &'a [EvalResult],
}

#[derive(Serialize)]
struct Top<'a> {
    index: usize,
    label: Option<&'a str>,
    probability: f32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunSummary<'a> {
    top: Vec<Top<'a>>,
    predicted: usize,
    label: Option<&'a str>,
    width: Bits,
    ms: f64,
}

/// Integer-valued JS number in `lo..=hi`, or an InvalidArgument error naming `what`.
fn int_arg(value: f64, lo: u32, hi: u32, what: &str) -> Result<u32, JsValue> {
    if value.fract() != 0.0 || !(lo as f64..=hi as f64).contains(&value) {
        return Err(invalid(format!("{what} must be an integer in {lo}..={hi}, got {value}")));
    }
    Ok(value as u32)
}

#[wasm_bindgen]
impl Session {
    /// Parses and validates an `.anybit` file. Starts at the model's widest supported width.
    pub fn load(bytes: &[u8]) -> Result<Session, JsValue> {
        let model = Model::from_bytes(bytes).map_err(js_error)?;
        Session::new(model, bytes, Vec::new())
    }

    /// Builds a session from a prefix of a file (progressive loading) holding at least
    /// `minPlanes` bit planes (`prefixLen(header, minPlanes)` bytes): it runs the widths up to
    /// that many bits, exactly as the whole file would, and every piece present is checked
    /// against the file's SHA-256 digests first. `extend` adds planes later.
    #[wasm_bindgen(js_name = loadPrefix)]
    pub fn load_prefix(bytes: &[u8], min_planes: f64) -> Result<Session, JsValue> {
        let planes = int_arg(min_planes, 1, 8, "minPlanes")? as u8;
        let model = Model::from_prefix(bytes, planes).map_err(js_error)?;
        let keep = if model.planes_loaded() < crate::format::PLANES { bytes.to_vec() } else { Vec::new() };
        Session::new(model, bytes, keep)
    }

    /// Appends the next bytes of the file (they must start where the loaded prefix ends) and
    /// rebuilds the model with the planes they complete, keeping the width, threads and
    /// calibration. A corrupt or short piece is refused (`corrupt`, `truncated`) and the session
    /// stays as it was. Returns the new `planesLoaded`.
    pub fn extend(&mut self, more: &[u8], min_planes: f64) -> Result<u8, JsValue> {
        let planes = int_arg(min_planes, 1, 8, "minPlanes")? as u8;
        if self.prefix.is_empty() {
            return Err(invalid("this session holds the whole file; there is nothing to extend"));
        }
        let mut bytes = Vec::with_capacity(self.prefix.len() + more.len());
        bytes.extend_from_slice(&self.prefix);
        bytes.extend_from_slice(more);
        let mut model = Model::from_prefix(&bytes, planes).map_err(js_error)?;
        model.set_threads(self.model.threads());
        model.set_width(self.model.width()).map_err(js_error)?;
        self.model = model;
        self.prefix = if self.model.planes_loaded() < crate::format::PLANES { bytes } else { Vec::new() };
        Ok(self.model.planes_loaded())
    }

    /// Bit planes loaded: 8 for a whole file.
    #[wasm_bindgen(getter, js_name = planesLoaded)]
    pub fn planes_loaded(&self) -> u8 {
        self.model.planes_loaded()
    }

    /// Bytes of the file prefix that serves `width` (the header, the tensors and its planes).
    #[wasm_bindgen(js_name = bytesFor)]
    pub fn bytes_for(&self, width: f64) -> Result<f64, JsValue> {
        Ok(self.width_bytes(Bits::from_f64(width, "width").map_err(js_error)?) as f64)
    }

    /// Per width: what the model holds at that width plus the file prefix this session keeps
    /// (a progressive load keeps it to extend later, and switching up grows it to that width's).
    fn memory_per_width(&self) -> Result<Vec<(Bits, u64)>, Error> {
        let mut out = Vec::new();
        for w in self.model.widths().iter().map(|w| w.w) {
            let kept = if self.prefix.is_empty() { 0 } else { self.width_bytes(w).max(self.prefix.len() as u64) };
            out.push((w, self.model.memory_bytes(w)? as u64 + kept));
        }
        Ok(out)
    }

    fn width_bytes(&self, w: Bits) -> u64 {
        let (start, plane) = self.planes_at;
        start + crate::quant::planes_needed(w) as u64 * plane
    }

    fn new(mut model: Model, bytes: &[u8], prefix: Vec<u8>) -> Result<Session, JsValue> {
        model.set_threads(pool_threads());
        let start = crate::format::prefix_len(bytes, 0).map_err(js_error)?;
        let plane = crate::format::prefix_len(bytes, 1).map_err(js_error)? - start;
        Ok(Session { model, planes_at: (start as u64, plane as u64), calibration: None, prefix })
    }

    /// Times this model on this device and keeps the result for `decide`: a forward pass at every
    /// width the loaded planes serve (in rounds, about `10 * minMs` per width), and every GEMM
    /// alone (about `minMs` per distinct shape, default 5) for the per-layer prediction of the
    /// other widths. Returns `{isa, threads, gemmMs: [[w, ms]], otherMs, passMs: [[w, ms]],
    /// measuredMs, measuredWidth, tookMs}`.
    pub fn calibrate(&mut self, min_ms: Option<f64>) -> Result<JsValue, JsValue> {
        let min_ms = min_ms.unwrap_or(5.0);
        if !(min_ms.is_finite() && (0.0..=1000.0).contains(&min_ms)) {
            return Err(invalid(format!("minMs must be in 0..=1000, got {min_ms}")));
        }
        // At the pool's size (and on one thread), whatever a decision set since: the choice of
        // thread count is the policy's.
        let was = self.model.threads();
        self.model.set_threads(pool_threads());
        let cal = crate::policy::calibrate(&mut self.model, &performance_now, min_ms);
        self.model.set_threads(was);
        let cal = cal.map_err(js_error)?;
        let out = to_js(&cal);
        self.calibration = Some(cal);
        out
    }

    /// The precision policy: `budget` is `{latencyMs?, maxBytes?, maxMemoryBytes?}` (omit for the most accurate
    /// width). Needs `calibrate()` first. Returns `{width, threads, isa, options: [{width,
    /// threads, predictedMs, accuracy, bytes, memoryBytes, fits}], reasons: [..]}`; it does not
    /// switch: call `setThreads(decision.threads)` and `setWidth(decision.width)` to follow it.
    pub fn decide(&self, budget: JsValue) -> Result<JsValue, JsValue> {
        let budget: Budget = if budget.is_undefined() || budget.is_null() {
            Budget::default()
        } else {
            // Through JSON: serde_wasm_bindgen reads only the known keys, and a misspelt key
            // (`latency` for `latencyMs`) must be an error, not an ignored budget.
            let text: String = js_sys::JSON::stringify(&budget).map(String::from).map_err(|_| invalid("budget is not a plain object"))?;
            serde_json::from_str(&text).map_err(|e| invalid(format!("bad budget: {e}")))?
        };
        let cal = self.calibration.as_ref().ok_or_else(|| {
            js_error(Error::new(ErrorKind::InvalidArgument, "call calibrate() before decide()"))
        })?;
        if cal.threads != pool_threads() {
            return Err(invalid("the thread pool changed since calibrate(); calibrate again"));
        }
        let accuracy = self.model.graph().eval.first().map(|e| e.by_width()).unwrap_or_default();
        let bytes: Vec<(Bits, u64)> = self.model.widths().iter().map(|w| (w.w, self.width_bytes(w.w))).collect();
        let memory = self.memory_per_width().map_err(js_error)?;
        let d = crate::policy::decide(cal, &budget, &accuracy, &bytes, &memory).map_err(js_error)?;
        to_js(&d)
    }

    /// Everything a UI needs at once: `{name, inputShape, labels, widths, width, threads, eval}`.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let g = self.model.graph();
        to_js(&Info {
            name: &g.name,
            input_shape: self.model.input_shape(),
            labels: self.model.labels(),
            widths: self.model.widths(),
            loaded_widths: self.model.loaded_widths(),
            planes_loaded: self.model.planes_loaded(),
            width: self.model.width(),
            threads: self.model.threads(),
            eval: &g.eval,
        })
    }

    /// Supported widths as `[{w, a}]`: weight bits and the activation bits used with them.
    pub fn widths(&self) -> Result<JsValue, JsValue> {
        to_js(self.model.widths())
    }

    /// Current weight width in bits.
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u8 {
        self.model.width().get()
    }

    /// Switches the weight width (1..=8, one the model supports); the next run uses it.
    #[wasm_bindgen(js_name = setWidth)]
    pub fn set_width(&mut self, bits: f64) -> Result<(), JsValue> {
        let bits = Bits::from_f64(bits, "width").map_err(js_error)?;
        self.model.set_width(bits).map_err(js_error)
    }

    /// Input shape without the batch dimension, NHWC: `[height, width, channels]`.
    #[wasm_bindgen(js_name = inputShape)]
    pub fn input_shape(&self) -> Result<JsValue, JsValue> {
        to_js(self.model.input_shape())
    }

    /// Class names, or `null` when the file has none.
    pub fn labels(&self) -> Result<JsValue, JsValue> {
        to_js(&self.model.labels())
    }

    /// Threads a run may use (at most the pool started with `initThreads`; 1 elsewhere).
    #[wasm_bindgen(getter)]
    pub fn threads(&self) -> usize {
        self.model.threads()
    }

    #[wasm_bindgen(js_name = setThreads)]
    pub fn set_threads(&mut self, n: f64) -> Result<(), JsValue> {
        let n = int_arg(n, 1, pool_threads() as u32, "thread count")?;
        self.model.set_threads(n as usize);
        Ok(())
    }

    /// Runs one sample (NHWC floats, `inputShape` elements). Returns
    /// `{logits, probabilities, top: [{index, label, probability}], predicted, label, width, ms}`;
    /// `ms` is the inference time measured with `performance.now()`.
    pub fn run(&mut self, input: &[f32]) -> Result<JsValue, JsValue> {
        let start = performance_now();
        let logits = self.model.run(input).map_err(js_error)?;
        let ms = performance_now() - start;
        self.result(logits, ms)
    }

    /// Runs on a canvas `ImageData` (or any `{width, height, data: RGBA bytes}`), converted to the
    /// model input as described in wasm/image.rs: bright ink on a dark background, values in
    /// [0, 1]. `options`: `{invert: bool, fit: "stretch" | "mnist"}`.
    #[wasm_bindgen(js_name = runImage)]
    pub fn run_image(&mut self, image: &JsValue, options: Option<js_sys::Object>) -> Result<JsValue, JsValue> {
        let opts: ImageOptions = match options {
            None => ImageOptions::default(),
            Some(o) => serde_wasm_bindgen::from_value(o.into()).map_err(|e| invalid(format!("bad runImage options: {e}")))?,
        };
        let get = |key: &str| js_sys::Reflect::get(image, &key.into()).unwrap_or(JsValue::UNDEFINED);
        let side = |key: &str| -> Result<usize, JsValue> {
            let v = get(key).as_f64().ok_or_else(|| invalid(format!("image.{key} is not a number")))?;
            Ok(int_arg(v, 1, image::MAX_SIDE as u32, &format!("image.{key}"))? as usize)
        };
        let (w, h) = (side("width")?, side("height")?);
        let data = get("data");
        let bytes = if let Some(a) = data.dyn_ref::<js_sys::Uint8ClampedArray>() {
            a.to_vec()
        } else if let Some(a) = data.dyn_ref::<js_sys::Uint8Array>() {
            a.to_vec()
        } else {
            return Err(invalid("image.data must be a Uint8ClampedArray or Uint8Array of RGBA bytes"));
        };
        let input = image::to_input(&bytes, w, h, self.model.input_shape(), opts).map_err(js_error)?;
        self.run(&input)
    }

    fn result(&self, output: Vec<f32>, ms: f64) -> Result<JsValue, JsValue> {
        // A graph that ends in Softmax already outputs probabilities.
        let ends_in_softmax = matches!(self.model.graph().nodes.last().map(|n| &n.op), Some(Op::Softmax));
        let probabilities = if ends_in_softmax { output.clone() } else { softmax(&output) };
        let labels = self.model.labels();
        let label = |i: usize| labels.and_then(|l| l.get(i)).map(String::as_str);
        let mut order: Vec<usize> = (0..probabilities.len()).collect();
        // total_cmp: a NaN output sorts deterministically instead of panicking.
        order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]).then(a.cmp(&b)));
        let top: Vec<Top> = order.iter().take(TOP_K).map(|&i| Top { index: i, label: label(i), probability: probabilities[i] }).collect();
        let predicted = order.first().copied().unwrap_or(0);
        let summary = RunSummary { top, predicted, label: label(predicted), width: self.model.width(), ms };
        let obj = to_js(&summary)?;
        let set = |k: &str, v: &[f32]| js_sys::Reflect::set(&obj, &k.into(), &js_sys::Float32Array::from(v).into());
        set("logits", &output).and_then(|_| set("probabilities", &probabilities))?;
        Ok(obj)
    }
}

/// Numerically stable softmax in f64.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::softmax;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn softmax_is_stable_and_normalised() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] == 0.0, "{p:?}");
        let p = softmax(&[0.0, 1.0, 2.0]);
        let want = [0.09003057, 0.24472847, 0.66524096];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
