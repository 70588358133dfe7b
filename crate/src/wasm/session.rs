//! `Session` for JavaScript: converts JS arguments into the session core's types
//! (crate/src/session/) and its results into JS values; no bookkeeping of its own.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{count_arg, invalid, js_error, now_ms, pool_threads, to_js};
use crate::bits::Bits;
use crate::format::{EvalResult, Task, Width};
use crate::image::{ImageOptions, MAX_SIDE};
use crate::policy::Budget;
use crate::session::{Encoded, RunResult, TextClasses, MAX_TEXT_BYTES};

#[wasm_bindgen]
pub struct Session {
    pub(super) core: crate::session::Session,
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
    /// Scores per width; an entry's `metric` ("f1", "exact_match", ...) says what its numbers
    /// are when they are not top-1 accuracy.
    eval: &'a [EvalResult],
    /// A text model's token limit and vocabulary size; `null` for an image model.
    text: Option<TextInfo>,
    /// `{type: "counterfactual", thresholds: [[w, p], ...]}` for a counterfactual detector
    /// (`detect`), else `null`.
    task: Option<TaskInfo>,
}

/// `format::Task` with its thresholds as the decimals the file wrote (0.45, not the f32's
/// 0.44999998807907104), so that JS can compare them with what it reads elsewhere.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TaskInfo {
    Counterfactual { thresholds: Vec<(u8, f64)> },
}

/// An f32 as the f64 of its shortest decimal form.
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TextInfo {
    max_tokens: usize,
    vocab_size: usize,
}

/// A JS width argument as `Bits` (`unsupported_width` when it is not an integer in 1..=8).
pub(super) fn width_arg(value: f64) -> Result<Bits, JsValue> {
    Bits::from_f64(value, "width").map_err(js_error)
}

/// A bit-plane count in 1..=8 (`minPlanes`).
fn planes_arg(value: f64) -> Result<u8, JsValue> {
    match count_arg(value, "minPlanes")? {
        n @ 1..=8 => Ok(n as u8),
        n => Err(invalid(format!("minPlanes must be an integer in 1..=8, got {n}"))),
    }
}

#[wasm_bindgen]
impl Session {
    /// Parses and validates an `.anybit` file. Starts at the model's widest supported width.
    pub fn load(bytes: &[u8]) -> Result<Session, JsValue> {
        let core = crate::session::Session::load(bytes, pool_threads()).map_err(js_error)?;
        Ok(Session { core })
    }

    /// Builds a session from a prefix of a file (progressive loading) holding at least
    /// `minPlanes` bit planes (`layout(header).prefixEnds[minPlanes]` bytes): it runs the widths
    /// up to that many bits, exactly as the whole file would, and every piece present is checked
    /// against the file's SHA-256 digests first. `extend` adds planes later.
    #[wasm_bindgen(js_name = loadPrefix)]
    pub fn load_prefix(bytes: &[u8], min_planes: f64) -> Result<Session, JsValue> {
        let core = crate::session::Session::load_prefix(bytes, planes_arg(min_planes)?, pool_threads()).map_err(js_error)?;
        Ok(Session { core })
    }

    /// Appends the next bytes of the file (they must start where the loaded prefix ends) and
    /// rebuilds the model with the planes they complete, keeping the width, threads and
    /// calibration. Only those planes are checked against the file's digests: `digests` holds
    /// their SHA-256 (32 bytes each, in the order of `extendSections(more.length)`), or is
    /// undefined to hash them here. A corrupt or short piece is refused (`corrupt`, `truncated`)
    /// and the session stays as it was. Returns the new `planesLoaded`.
    pub fn extend(&mut self, more: &[u8], min_planes: f64, digests: Option<Vec<u8>>) -> Result<u8, JsValue> {
        let given = digests_arg(digests)?;
        self.core.extend(more, planes_arg(min_planes)?, given.as_deref()).map_err(js_error)
    }

    /// `[start, end)` in the file of each plane that `extend` with `moreLen` more bytes would
    /// check, flat, in the order it takes their digests; empty for a file without digests.
    #[wasm_bindgen(js_name = extendSections)]
    pub fn extend_sections(&self, more_len: f64) -> Result<Vec<f64>, JsValue> {
        let ranges = self.core.extend_planes(count_arg(more_len, "moreLen")?).map_err(js_error)?;
        Ok(flat_ranges(ranges))
    }

    /// Bit planes loaded: 8 for a whole file.
    #[wasm_bindgen(getter, js_name = planesLoaded)]
    pub fn planes_loaded(&self) -> u8 {
        self.core.planes_loaded()
    }

    /// Times this model on this device and keeps the result for `decide`: a forward pass at every
    /// width the loaded planes serve (in rounds, about `10 * minMs` per width), and every GEMM alone
    /// (about `minMs` per distinct shape, default 5) for the per-layer prediction of the other
    /// widths. Returns `{isa, threads, gemmMs: [[w, ms]], otherMs, passMs: [[w, ms]], measuredMs,
    /// measuredWidth, tookMs}`.
    pub fn calibrate(&mut self, min_ms: Option<f64>) -> Result<JsValue, JsValue> {
        let cal = self.core.calibrate(&now_ms, min_ms.unwrap_or(5.0), pool_threads()).map_err(js_error)?;
        to_js(cal)
    }

    /// The precision policy: `budget` is `{latencyMs?, maxBytes?, maxMemoryBytes?}` (omit for the
    /// most accurate width). Needs `calibrate()` first. Returns `{width, threads, isa, options:
    /// [{width, threads, predictedMs, accuracy, bytes, memoryBytes, fits}], reasons: [..]}`; it
    /// does not switch: call `setThreads(decision.threads)` and `setWidth(decision.width)`.
    pub fn decide(&self, budget: JsValue) -> Result<JsValue, JsValue> {
        let budget: Budget = if budget.is_undefined() || budget.is_null() {
            Budget::default()
        } else {
            // Through JSON: serde_wasm_bindgen reads only the known keys, and a misspelt key
            // (`latency` for `latencyMs`) must be an error, not an ignored budget.
            let text: String = js_sys::JSON::stringify(&budget).map(String::from).map_err(|_| invalid("budget is not a plain object"))?;
            serde_json::from_str(&text).map_err(|e| invalid(format!("bad budget: {e}")))?
        };
        to_js(&self.core.decide(&budget, pool_threads()).map_err(js_error)?)
    }

    /// Everything a UI needs at once: `{name, inputShape, labels, widths, loadedWidths,
    /// planesLoaded, width, threads, eval, text, task}` (`text`: `{maxTokens, vocabSize}` of a text
    /// model, `null` for an image model; `task`: `{type: "counterfactual", thresholds}` of a
    /// counterfactual detector, else `null`).
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let m = self.core.model();
        let g = m.graph();
        to_js(&Info {
            name: &g.name,
            input_shape: m.input_shape(),
            labels: m.labels(),
            widths: m.widths(),
            loaded_widths: m.loaded_widths(),
            planes_loaded: m.planes_loaded(),
            width: m.width(),
            threads: m.threads(),
            eval: &g.eval,
            text: g.text.as_ref().map(|t| TextInfo {
                max_tokens: m.input_shape()[0].min(t.tokenizer.max_length),
                vocab_size: t.vocab.len(),
            }),
            task: g.task.as_ref().map(|Task::Counterfactual { thresholds }| TaskInfo::Counterfactual {
                thresholds: thresholds.iter().map(|&(w, p)| (w, decimal(p))).collect(),
            }),
        })
    }

    /// Supported widths as `[{w, a}]`: weight bits and the activation bits used with them.
    pub fn widths(&self) -> Result<JsValue, JsValue> {
        to_js(self.core.model().widths())
    }

    /// Current weight width in bits.
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u8 {
        self.core.width().get()
    }

    /// Switches the weight width (1..=8, one the model supports); the next run uses it.
    #[wasm_bindgen(js_name = setWidth)]
    pub fn set_width(&mut self, width: f64) -> Result<(), JsValue> {
        self.core.set_width(width_arg(width)?).map_err(js_error)
    }

    /// Input shape without the batch dimension, NHWC: `[rows, columns, channels]`.
    #[wasm_bindgen(js_name = inputShape)]
    pub fn input_shape(&self) -> Result<JsValue, JsValue> {
        to_js(self.core.model().input_shape())
    }

    /// Class names, or `null` when the file has none.
    pub fn labels(&self) -> Result<JsValue, JsValue> {
        to_js(&self.core.model().labels())
    }

    /// Threads a run may use (at most the pool started with `initThreads`; 1 elsewhere).
    #[wasm_bindgen(getter)]
    pub fn threads(&self) -> usize {
        self.core.threads()
    }

    #[wasm_bindgen(js_name = setThreads)]
    pub fn set_threads(&mut self, n: f64) -> Result<(), JsValue> {
        self.core.set_threads(count_arg(n, "thread count")?, pool_threads()).map_err(js_error)
    }

    /// Runs one sample (NHWC floats, `inputShape` elements). Returns
    /// `{logits, probabilities, top: [{index, label, probability}], predicted, label, width, ms}`;
    /// `ms` is the inference time measured with `performance.now()`.
    ///
    /// `output` (optional): a Float32Array of the output's length that receives the output and
    /// comes back as `logits`, in place of a new array per run (for a 28x28x64 map, allocating
    /// one costs about 0.1 ms in Chromium, a third of a 1-bit pass). Checked before the run.
    pub fn run(&mut self, input: Vec<f32>, output: Option<js_sys::Float32Array>) -> Result<JsValue, JsValue> {
        self.check_output(output.as_ref())?;
        run_result(self.core.run(input, &now_ms).map_err(js_error)?, output)
    }

    /// Per-node times (ms) of one pass on `input`, as `[[name, ms], ...]` in graph order: where
    /// a pass spends its time, for benchmarks (bench/text.mjs --profile).
    pub fn profile(&mut self, input: &[f32]) -> Result<JsValue, JsValue> {
        to_js(&self.core.profile(input, &now_ms).map_err(js_error)?)
    }

    /// Runs on a canvas `ImageData` (or any `{width, height, data: RGBA bytes}`: its columns and
    /// rows), converted to the model input as crate/src/image.rs describes: bright ink on a dark
    /// background, values in [0, 1]. `options`: `{invert: bool, fit: "stretch" | "mnist"}`.
    #[wasm_bindgen(js_name = runImage)]
    /// `output` as `run`'s.
    pub fn run_image(&mut self, image: &JsValue, options: Option<js_sys::Object>, output: Option<js_sys::Float32Array>) -> Result<JsValue, JsValue> {
        self.check_output(output.as_ref())?;
        let (rgba, cols, rows, opts) = image_arg(image, options)?;
        run_result(self.core.run_image(&rgba, cols, rows, opts, &now_ms).map_err(js_error)?, output)
    }

    /// Tokenizes `text` (a string; truncated to the model's tokens) and runs the text model on
    /// it. Returns `{ids: Uint32Array, offsets: Uint32Array, charOffsets: Uint32Array, tokens,
    /// truncated, piecesTotal, maxTokens, output: Float32Array, shape, width, ms}`; the offsets are
    /// `[start, end]` pairs, one per token, end exclusive: `offsets` in UTF-16 code units (what
    /// `String.prototype.slice` takes), `charOffsets` in Unicode code points.
    pub fn encode(&mut self, text: &JsValue) -> Result<JsValue, JsValue> {
        let text = text_arg(text)?;
        let e = self.core.encode(&text, &now_ms).map_err(js_error)?;
        let obj = encoded(&e)?;
        set(&obj, "output", &js_sys::Float32Array::from(e.output.as_slice()).into())?;
        Ok(obj)
    }

    /// Classifies `text` with a text classifier (a model with labels). An output of `[classes]`
    /// gives `{kind: "text", logits, probabilities, top, predicted, label, ...}` as `run` does; an
    /// output of `[tokens, classes]` gives `{kind: "tokens", classes, logits, probabilities
    /// (Float32Array, tokens x classes), predicted: Uint32Array, labels, probability: Float32Array}`,
    /// one class per token. Both also carry the encoding (`ids`, `offsets`, ... as `encode`).
    #[wasm_bindgen(js_name = runText)]
    pub fn run_text(&mut self, text: &JsValue) -> Result<JsValue, JsValue> {
        let text = text_arg(text)?;
        let r = self.core.run_text(&text, &now_ms).map_err(js_error)?;
        let obj = encoded(&r.encoded)?;
        let part = match &r.classes {
            TextClasses::Text(c) => {
                set(&obj, "kind", &"text".into())?;
                run_result(c.clone(), None)?
            }
            TextClasses::Tokens(t) => {
                set(&obj, "kind", &"tokens".into())?;
                let part = to_js(t)?;
                set(&part, "logits", &js_sys::Float32Array::from(t.logits.as_slice()).into())?;
                set(&part, "probabilities", &js_sys::Float32Array::from(t.probabilities.as_slice()).into())?;
                set(&part, "predicted", &js_sys::Uint32Array::from(t.predicted.as_slice()).into())?;
                set(&part, "probability", &js_sys::Float32Array::from(t.probability.as_slice()).into())?;
                set(&part, "width", &r.encoded.width.get().into())?;
                set(&part, "ms", &r.encoded.ms.into())?;
                part
            }
        };
        let (target, source): (&js_sys::Object, &js_sys::Object) = (obj.unchecked_ref(), part.unchecked_ref());
        js_sys::Object::assign(target, source);
        Ok(obj)
    }

    /// Counterfactual detection on `text` (a string) with a counterfactual model (`info().task`):
    /// `{counterfactual, probability, threshold, antecedent, consequent, tokens, truncated, width,
    /// ms}`, where `antecedent` and `consequent` are `{start, end, startUtf16, endUtf16, text}` or
    /// `null`: `start..=end` in code points (end inclusive, as SemEval counts), and
    /// `text.slice(startUtf16, endUtf16)` in JS is the span's text.
    pub fn detect(&mut self, text: &JsValue) -> Result<JsValue, JsValue> {
        let text = text_arg(text)?;
        let d = self.core.detect(&text, &now_ms).map_err(js_error)?;
        let obj = to_js(&d)?;
        set(&obj, "threshold", &decimal(d.threshold).into())?;
        Ok(obj)
    }
}

fn set(obj: &JsValue, key: &str, value: &JsValue) -> Result<(), JsValue> {
    js_sys::Reflect::set(obj, &key.into(), value).map(|_| ())
}

/// A JS text argument: a string (anything else is `invalid_argument`), refused as too long
/// (`limit_exceeded`) before it is copied into wasm memory when its UTF-16 length alone says so
/// (every UTF-16 unit is at least one UTF-8 byte).
fn text_arg(text: &JsValue) -> Result<String, JsValue> {
    let Some(s) = text.dyn_ref::<js_sys::JsString>() else {
        let what = if text.is_null() { "null".to_string() } else { String::from(text.js_typeof().as_string().unwrap_or_default()) };
        return Err(invalid(format!("text must be a string, got {what}")));
    };
    let units = s.length() as usize;
    if units > MAX_TEXT_BYTES {
        return Err(js_error(crate::Error::new(
            crate::ErrorKind::LimitExceeded,
            format!("the text is {units} UTF-16 code units, so at least as many bytes (UTF-8); at most {MAX_TEXT_BYTES} (4 MiB) are accepted"),
        )));
    }
    Ok(String::from(s))
}

/// An encoding as a plain object with `ids`, `offsets` and `charOffsets` as typed arrays.
fn encoded(e: &Encoded) -> Result<JsValue, JsValue> {
    let obj = to_js(e)?;
    let pairs = |o: &[(usize, usize)]| -> js_sys::Uint32Array {
        let flat: Vec<u32> = o.iter().flat_map(|&(a, b)| [a as u32, b as u32]).collect();
        js_sys::Uint32Array::from(flat.as_slice())
    };
    set(&obj, "ids", &js_sys::Uint32Array::from(e.ids.as_slice()).into())?;
    set(&obj, "offsets", &pairs(&e.offsets).into())?;
    set(&obj, "charOffsets", &pairs(&e.char_offsets).into())?;
    Ok(obj)
}

/// An ImageData-like `{width, height, data}` and its options as (RGBA bytes, columns, rows,
/// options): what `runImage` and `attackStart` take.
pub(super) fn image_arg(image: &JsValue, options: Option<js_sys::Object>) -> Result<(Vec<u8>, usize, usize, ImageOptions), JsValue> {
    let opts: ImageOptions = match options {
        None => ImageOptions::default(),
        Some(o) => serde_wasm_bindgen::from_value(o.into()).map_err(|e| invalid(format!("bad image options: {e}")))?,
    };
    let get = |key: &str| js_sys::Reflect::get(image, &key.into()).unwrap_or(JsValue::UNDEFINED);
    // ImageData names its columns `width` and its rows `height`.
    let side = |key: &str| -> Result<usize, JsValue> {
        let v = get(key).as_f64().ok_or_else(|| invalid(format!("image.{key} is not a number")))?;
        match count_arg(v, &format!("image.{key}"))? {
            n @ 1..=MAX_SIDE => Ok(n),
            n => Err(invalid(format!("image.{key} must be an integer in 1..={MAX_SIDE}, got {n}"))),
        }
    };
    let (cols, rows) = (side("width")?, side("height")?);
    let data = get("data");
    let rgba = if let Some(a) = data.dyn_ref::<js_sys::Uint8ClampedArray>() {
        a.to_vec()
    } else if let Some(a) = data.dyn_ref::<js_sys::Uint8Array>() {
        a.to_vec()
    } else {
        return Err(invalid("image.data must be a Uint8ClampedArray or Uint8Array of RGBA bytes"));
    };
    Ok((rgba, cols, rows, opts))
}

/// A run's summary as a plain object, with `logits` and `probabilities` as Float32Arrays.
impl Session {
    /// A run's `output` array, if given: as long as the model's output, checked before the run so
    /// that a wrong one costs no pass.
    fn check_output(&self, output: Option<&js_sys::Float32Array>) -> Result<(), JsValue> {
        let Some(out) = output else { return Ok(()) };
        let want: usize = self.core.model().output_shape().iter().product();
        if out.length() as usize != want {
            return Err(js_error(crate::Error::new(
                crate::ErrorKind::ShapeMismatch,
                format!("output holds {} values; this model's output {:?} has {want}", out.length(), self.core.model().output_shape()),
            )));
        }
        Ok(())
    }
}

/// `r` as JS, its arrays as Float32Arrays: `logits` copied into `output` when given (checked by
/// `Session::check_output`), else into a new array.
fn run_result(r: RunResult, output: Option<js_sys::Float32Array>) -> Result<JsValue, JsValue> {
    let obj = to_js(&r)?;
    let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&obj, &k.into(), v);
    let logits = match output {
        Some(out) => {
            out.copy_from(&r.logits);
            out
        }
        None => js_sys::Float32Array::from(r.logits.as_slice()),
    };
    set("logits", &logits.into()).and_then(|_| set("probabilities", &js_sys::Float32Array::from(r.probabilities.as_slice()).into()))?;
    Ok(obj)
}

/// Digests handed from JS: 32 bytes each, in one array (None: hash in wasm).
fn digests_arg(digests: Option<Vec<u8>>) -> Result<Option<Vec<[u8; 32]>>, JsValue> {
    match digests {
        None => Ok(None),
        Some(d) if d.len() % 32 != 0 => Err(invalid(format!("digests must be 32 bytes each; got {} bytes", d.len()))),
        Some(d) => Ok(Some(
            d.chunks_exact(32)
                .map(|c| {
                    let mut a = [0u8; 32];
                    a.copy_from_slice(c);
                    a
                })
                .collect(),
        )),
    }
}

/// Byte ranges as JS numbers, flat: `[s0, e0, s1, e1, ...]`.
fn flat_ranges(ranges: Vec<core::ops::Range<usize>>) -> Vec<f64> {
    ranges.into_iter().flat_map(|r| [r.start as f64, r.end as f64]).collect()
}

/// An `.anybit` file, or a prefix of one (progressive loading), whose header is parsed and
/// checked, made a [`Session`] once the caller has hashed its sections (`format::Unhashed`): the
/// JS runtime hashes them with WebCrypto, at native speed and off the calling thread, where a
/// first load's hashing in wasm runs in the engine's baseline tier.
#[wasm_bindgen]
pub struct Unhashed {
    bytes: Vec<u8>,
    parsed: crate::format::Unhashed,
}

#[wasm_bindgen]
impl Unhashed {
    /// Parses and checks the header of a whole file (the errors of `Session.load` for a bad one).
    pub fn parse(bytes: Vec<u8>) -> Result<Unhashed, JsValue> {
        let parsed = crate::format::Unhashed::parse(&bytes).map_err(js_error)?;
        Ok(Unhashed { bytes, parsed })
    }

    /// Parses and checks the header of a prefix holding at least `minPlanes` bit planes (the
    /// errors of `Session.loadPrefix` for a bad one).
    #[wasm_bindgen(js_name = parsePrefix)]
    pub fn parse_prefix(bytes: Vec<u8>, min_planes: f64) -> Result<Unhashed, JsValue> {
        let parsed = crate::format::Unhashed::parse_prefix(&bytes, planes_arg(min_planes)?).map_err(js_error)?;
        Ok(Unhashed { bytes, parsed })
    }

    /// `[start, end)` of every section to hash, flat (`[s0, e0, s1, e1, ...]`), in the order
    /// `load` takes their digests: the tensors, then each complete plane; empty for a file
    /// without digests.
    pub fn sections(&self) -> Vec<f64> {
        flat_ranges(self.parsed.sections())
    }

    /// The session (of a prefix: one that `extend` adds planes to). `digests`: the SHA-256 of
    /// each section, 32 bytes each in the order of `sections()`, or undefined to hash them here.
    /// A wrong count is `invalid_argument`; a digest that differs from the header's is `corrupt`.
    pub fn load(self, digests: Option<Vec<u8>>) -> Result<Session, JsValue> {
        let given = digests_arg(digests)?;
        let file = self.parsed.read(&self.bytes, given.as_deref()).map_err(js_error)?;
        let core = crate::session::Session::from_file(file, self.bytes.into(), pool_threads()).map_err(js_error)?;
        Ok(Session { core })
    }
}
