//! The attack methods of the JS `Session`: converts a request into `session::AttackRequest` and
//! the report into a JS object with Float32Arrays; the attack itself is crate/src/session/attack.rs.
//! pkg/runtime.js drives them: `attackStart`, then `attackStep(maxMs)` in slices with the event
//! loop free in between (progress, cancel), then `attackFinish()`, or `attackCancel()`.

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::session::{image_arg, width_arg, Session};
use super::{count_arg, invalid, js_error, now_ms, to_js};
use crate::attack::{AttackKind, Params};
use crate::grad::AdvRelu;
use crate::session::{AttackReport, AttackRequest};

/// The request as JS sends it (the image travels separately). Unknown keys are refused: a
/// misspelt `stepsize` must not silently become the default.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestJs {
    attack: String,
    eps: Option<f64>,
    steps: Option<f64>,
    step_size: Option<f64>,
    target: Option<f64>,
    adv_relu: Option<bool>,
    width: Option<f64>,
    label: Option<f64>,
    seed: Option<f64>,
    round: Option<bool>,
}

/// Range checks are the session's (`attack::Settings::resolve`); here only what a JS number
/// cannot carry into the Rust type: non-integers and negative counts.
fn request_arg(request: JsValue) -> Result<AttackRequest, JsValue> {
    let r: RequestJs = serde_wasm_bindgen::from_value(request).map_err(|e| invalid(format!("bad attack request: {e}")))?;
    let kind: AttackKind = r.attack.parse().map_err(js_error)?;
    let count = |v: Option<f64>, what: &str| v.map(|v| count_arg(v, what)).transpose();
    let seed = match r.seed {
        None => 0,
        // Integers a JS number holds exactly.
        Some(v) if v.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&v) => v as u64,
        Some(v) => return Err(invalid(format!("seed must be a non-negative integer up to 2^53 - 1, got {v}"))),
    };
    let params = Params {
        eps: r.eps.map(|v| v as f32),
        // Counts past u32 are refused by count_arg, smaller ones out of range by the session.
        steps: count(r.steps, "steps")?.map(|n| n as u32),
        step_size: r.step_size.map(|v| v as f32),
        target: count(r.target, "target")?,
        adv_relu: r.adv_relu.unwrap_or(false).then(AdvRelu::default),
        seed,
        ..Params::default()
    };
    Ok(AttackRequest {
        kind,
        params,
        width: r.width.map(width_arg).transpose()?,
        label: count(r.label, "label")?,
        round: r.round.unwrap_or(true),
    })
}

#[wasm_bindgen]
impl Session {
    /// Starts an attack, replacing any in progress. `image`: a Float32Array of `inputShape` values
    /// in [0, 1], or an ImageData-like RGBA image converted as `runImage` does with `options`
    /// (`{invert, fit}`). `request`: `{attack, eps?, steps?, stepSize?, target?, advRelu?, width?,
    /// label?, seed?, round?}` (pkg/index.d.ts `AttackRequest`, without the image).
    #[wasm_bindgen(js_name = attackStart)]
    pub fn attack_start(&mut self, image: &JsValue, options: Option<js_sys::Object>, request: JsValue) -> Result<(), JsValue> {
        let request = request_arg(request)?;
        if let Some(f) = image.dyn_ref::<js_sys::Float32Array>() {
            if options.is_some() {
                return Err(invalid("image options apply to images only, not to a Float32Array"));
            }
            return self.core.attack_start(&f.to_vec(), &request, &now_ms).map_err(js_error);
        }
        let (rgba, cols, rows, opts) = image_arg(image, options)?;
        self.core.attack_start_image(&rgba, (cols, rows), opts, &request, &now_ms).map_err(js_error)
    }

    /// Runs steps of the attack in progress for about `maxMs` (at least one step); returns
    /// `{done, total, finished}` in gradient evaluations.
    #[wasm_bindgen(js_name = attackStep)]
    pub fn attack_step(&mut self, max_ms: f64) -> Result<JsValue, JsValue> {
        if !(max_ms >= 0.0) {
            return Err(invalid(format!("maxMs must be a number >= 0, got {max_ms}")));
        }
        to_js(&self.core.attack_step(max_ms, &now_ms).map_err(js_error)?)
    }

    /// Ends the attack in progress and returns its report (pkg/index.d.ts `AttackResult`).
    #[wasm_bindgen(js_name = attackFinish)]
    pub fn attack_finish(&mut self) -> Result<JsValue, JsValue> {
        report(self.core.attack_finish(&now_ms).map_err(js_error)?)
    }

    /// Drops the attack in progress, if any.
    #[wasm_bindgen(js_name = attackCancel)]
    pub fn attack_cancel(&mut self) {
        self.core.attack_cancel();
    }
}

/// The report as a plain object, with the three images as Float32Arrays.
fn report(r: AttackReport) -> Result<JsValue, JsValue> {
    let obj = to_js(&r)?;
    let set = |k: &str, v: &[f32]| js_sys::Reflect::set(&obj, &k.into(), &js_sys::Float32Array::from(v).into());
    set("original", &r.original).and_then(|_| set("adversarial", &r.adversarial)).and_then(|_| set("perturbation", &r.perturbation))?;
    Ok(obj)
}
