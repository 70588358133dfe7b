//! Attacks on a session's model (`crate::attack` does the work): an attack runs at a chosen
//! width in slices of steps, so that a host that must stay responsive (a browser worker) can
//! report progress and cancel between two slices, and the report says what every loaded width
//! predicts on the original and on the adversarial image.
//!
//! The session's width is the caller's between any two calls: each call switches to the attacked
//! width, works, and switches back (also when it fails), so nothing a caller does between slices
//! runs at a width it did not choose. Switching costs nothing when the widths are the same.
//!
//! Rounding: by default the adversarial image is rounded to 8-bit pixel levels (k/255), the
//! values a PNG holds, keeping an Linf attack inside its budget where a level lies in it; success,
//! the norms and every prediction are computed on the rounded image, so the figures a page shows
//! are those of the file it offers for download. Rounding can undo a success that sat within half
//! a level of the boundary; the report says so (`success` false) rather than hiding it.

use serde::Serialize;

use super::{softmax, Clock, Session, Top};
use crate::attack::{shortest, Attack, AttackKind, Goal, Params, Settings};
use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::image::ImageOptions;
use crate::model::Model;

/// What a caller asks for besides the attack's own parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackRequest {
    pub kind: AttackKind,
    pub params: Params,
    /// The attacked width; the session's current width when `None`.
    pub width: Option<Bits>,
    /// The class to move away from; the attacked width's prediction on the original when `None`.
    pub label: Option<usize>,
    /// Round the adversarial image to k/255 (what a PNG holds) before it is checked.
    pub round: bool,
}

impl AttackRequest {
    pub fn new(kind: AttackKind) -> AttackRequest {
        AttackRequest { kind, params: Params::default(), width: None, label: None, round: true }
    }
}

/// The settings of a run as a caller reads them (`eps` is `None` for the minimizing attacks).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttackSettings {
    pub eps: Option<f64>,
    pub steps: u32,
    pub step_size: f64,
    pub search_steps: u32,
    pub seed: u64,
}

/// What one width predicts on the original and on the adversarial image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WidthPrediction {
    pub width: Bits,
    pub original: Top,
    pub adversarial: Top,
}

/// A finished attack. The images are in the model's input layout; `perturbation` is
/// `adversarial - original` and the norms are its, on the pixel scale [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttackReport {
    pub attack: &'static str,
    pub width: Bits,
    pub adv_relu: bool,
    pub label: usize,
    pub target: Option<usize>,
    pub success: bool,
    #[serde(skip)]
    pub original: Vec<f32>,
    #[serde(skip)]
    pub adversarial: Vec<f32>,
    #[serde(skip)]
    pub perturbation: Vec<f32>,
    pub input_shape: Vec<usize>,
    pub l2: f64,
    pub linf: f64,
    /// Gradient evaluations spent.
    pub gradients: u32,
    /// Time spent computing (the slices and the final checks), not the pauses between slices.
    pub ms: f64,
    pub settings: AttackSettings,
    /// Every loaded width, narrowest first.
    pub predictions: Vec<WidthPrediction>,
}

/// An attack in progress on a session ([`Session::attack_start`]).
pub struct AttackRun {
    attack: Attack,
    original: Vec<f32>,
    width: Bits,
    label: usize,
    round: bool,
    ms: f64,
}

/// Progress of a run: (gradient evaluations done, the most it may take, finished).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AttackProgress {
    pub done: u32,
    pub total: u32,
    pub finished: bool,
}

impl Session {
    /// Runs `f` on the model at width `w` and switches back to the width it had, whatever `f`
    /// returned.
    fn at_width<T>(&mut self, w: Bits, f: impl FnOnce(&mut Model) -> Result<T>) -> Result<T> {
        let was = self.model.width();
        if was != w {
            self.model.set_width(w)?;
        }
        let out = f(&mut self.model);
        if self.model.width() != was {
            // `was` served a moment ago, so this cannot fail unless the model is broken; a
            // failure of `f` is the more useful error to report.
            let back = self.model.set_width(was);
            if out.is_ok() {
                back?;
            }
        }
        out
    }

    /// Sets up `request` on `image` (NHWC floats in [0, 1]), replacing any attack in progress.
    pub fn attack_start(&mut self, image: &[f32], request: &AttackRequest, now: Clock) -> Result<()> {
        let start = now();
        self.attack = None;
        let width = request.width.unwrap_or(self.model.width());
        let loaded = self.model.loaded_widths();
        if !loaded.contains(&width) {
            let list: Vec<String> = loaded.iter().map(|w| w.to_string()).collect();
            crate::bail!(
                ErrorKind::UnsupportedWidth,
                "cannot attack at {width} bits: the loaded widths are {}",
                list.join(", ")
            );
        }
        let (attack, label) = self.at_width(width, |model| {
            // The run checks the image's length, so a wrong one fails before the pass for the label.
            let label = match request.label {
                Some(l) => l,
                None => crate::attack::argmax(&model.run(image)?),
            };
            Ok((Attack::new(model, image, label, request.kind, &request.params)?, label))
        })?;
        let original = image.to_vec();
        self.attack = Some(AttackRun { attack, original, width, label, round: request.round, ms: now() - start });
        Ok(())
    }

    /// Sets up `request` on `cols x rows` RGBA bytes, converted as `run_image` converts them.
    pub fn attack_start_image(
        &mut self,
        rgba: &[u8],
        (cols, rows): (usize, usize),
        opts: ImageOptions,
        request: &AttackRequest,
        now: Clock,
    ) -> Result<()> {
        let input = self.image_input(rgba, cols, rows, opts)?;
        self.attack_start(&input, request, now)
    }

    /// Runs steps of the attack in progress for about `max_ms` (at least one step).
    pub fn attack_step(&mut self, max_ms: f64, now: Clock) -> Result<AttackProgress> {
        let Some(mut run) = self.attack.take() else {
            crate::bail!(ErrorKind::InvalidArgument, "no attack is in progress: start one first");
        };
        let start = now();
        let stepped = self.at_width(run.width, |model| {
            while !run.attack.step(model)? && now() - start < max_ms {}
            Ok(())
        });
        run.ms += now() - start;
        let (done, total) = run.attack.progress();
        let finished = run.attack.is_done();
        // A failed step leaves no run behind: the attack cannot resume from a broken state.
        stepped?;
        self.attack = Some(run);
        Ok(AttackProgress { done, total, finished })
    }

    /// Ends the attack in progress (finished or not: the image so far) and reports it.
    pub fn attack_finish(&mut self, now: Clock) -> Result<AttackReport> {
        let Some(run) = self.attack.take() else {
            crate::bail!(ErrorKind::InvalidArgument, "no attack is in progress: start one first");
        };
        let start = now();
        let settings = run.attack.settings().clone();
        let original = run.original;
        let outcome = self.at_width(run.width, |model| run.attack.finish(model))?;
        let mut adversarial = outcome.adversarial;
        if run.round {
            round_to_levels(&mut adversarial, &original, &settings);
        }
        let goal = Goal { label: run.label, target: settings.target };
        let mut widths = self.model.loaded_widths();
        widths.sort();
        let mut predictions = Vec::with_capacity(widths.len());
        let mut success = false;
        let labels = self.model.labels().map(|l| l.to_vec());
        let is_probabilities = self.ends_in_softmax();
        for w in widths {
            let (z0, z1) = self.at_width(w, |m| Ok((m.run(&original)?, m.run(&adversarial)?)))?;
            if w == run.width {
                success = goal.met(&z1);
            }
            let top = |z: &[f32]| {
                let p = if is_probabilities { z.to_vec() } else { softmax(z) };
                let index = crate::attack::argmax(&p);
                Top { index, label: labels.as_ref().and_then(|l| l.get(index)).cloned(), probability: p[index] }
            };
            predictions.push(WidthPrediction { width: w, original: top(&z0), adversarial: top(&z1) });
        }
        let perturbation: Vec<f32> = adversarial.iter().zip(&original).map(|(a, o)| a - o).collect();
        let (l2, linf) = crate::attack::norms(&adversarial, &original);
        Ok(AttackReport {
            attack: settings.kind.name(),
            width: run.width,
            adv_relu: settings.adv_relu.is_some(),
            label: run.label,
            target: settings.target,
            success,
            input_shape: self.model.input_shape().to_vec(),
            original,
            adversarial,
            perturbation,
            l2: shortest(l2),
            linf: shortest(linf),
            gradients: outcome.work,
            ms: run.ms + (now() - start),
            settings: AttackSettings {
                eps: settings.kind.has_eps().then_some(shortest(settings.eps)),
                steps: settings.steps,
                step_size: shortest(settings.step_size),
                search_steps: settings.search_steps,
                seed: settings.seed,
            },
            predictions,
        })
    }

    /// Drops the attack in progress, if any (the session's width is already the caller's).
    pub fn attack_cancel(&mut self) {
        self.attack = None;
    }

    /// Whether an attack is in progress.
    pub fn attacking(&self) -> bool {
        self.attack.is_some()
    }

    /// Runs a whole attack (start, every step, finish).
    pub fn attack(&mut self, image: &[f32], request: &AttackRequest, now: Clock) -> Result<AttackReport> {
        self.attack_start(image, request, now)?;
        while !self.attack_step(f64::INFINITY, now)?.finished {}
        self.attack_finish(now)
    }
}

/// Rounds `adv` to the nearest k/255 in place. An Linf attack's pixel that rounding pushed out of
/// its budget moves one level back towards the original, which keeps it in the budget whenever a
/// level lies there; L2 budgets are not re-projected (rounding moves the norm by a fraction of a
/// level per pixel, and the report gives the norm of the rounded image).
fn round_to_levels(adv: &mut [f32], original: &[f32], s: &Settings) {
    let linf_eps = (s.kind.has_eps() && !s.kind.is_l2()).then_some(s.eps);
    for (a, &o) in adv.iter_mut().zip(original) {
        let mut r = (*a * 255.0).round() / 255.0;
        if let Some(eps) = linf_eps {
            // The tolerance keeps a pixel exactly at the budget (up to f32 rounding) where it is.
            if (r - o).abs() > eps + 1e-6 {
                r -= (r - o).signum() / 255.0;
            }
        }
        *a = r.clamp(0.0, 1.0);
    }
}
