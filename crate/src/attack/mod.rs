//! Adversarial attacks on a model at its current width, on images in the pixel range [0, 1].
//!
//! Every attack is a resumable run: [`Attack::new`] checks the parameters and sets the run up,
//! each [`Attack::step`] does one unit of work (one gradient step; a DeepFool step is one pass
//! and a backward pass per candidate class), and [`Attack::finish`] returns the outcome. A host
//! that must stay responsive (a browser worker) runs a few steps, yields, and can stop between
//! any two; the command-line tool simply loops. Defaults follow foolbox 3 and torchattacks and
//! are listed in docs/ATTACKS.md; [`Settings::resolve`] is where they are chosen.

mod cw;
mod deepfool;
mod iterative;

use std::str::FromStr;

use crate::error::{ErrorKind, Result};
use crate::grad::AdvRelu;
use crate::model::Model;

/// The attacks, by their command-line and JavaScript names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttackKind {
    Fgsm,
    Bim,
    PgdLinf,
    PgdL2,
    MiFgsm,
    DeepFool,
    CwL2,
}

impl AttackKind {
    pub const ALL: [AttackKind; 7] = [
        AttackKind::Fgsm,
        AttackKind::Bim,
        AttackKind::PgdLinf,
        AttackKind::PgdL2,
        AttackKind::MiFgsm,
        AttackKind::DeepFool,
        AttackKind::CwL2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Fgsm => "fgsm",
            AttackKind::Bim => "bim",
            AttackKind::PgdLinf => "pgd-linf",
            AttackKind::PgdL2 => "pgd-l2",
            AttackKind::MiFgsm => "mi-fgsm",
            AttackKind::DeepFool => "deepfool",
            AttackKind::CwL2 => "cw-l2",
        }
    }

    /// Whether the attack's budget `eps` is an L2 radius (otherwise an Linf one, or none).
    pub fn is_l2(self) -> bool {
        matches!(self, AttackKind::PgdL2 | AttackKind::DeepFool | AttackKind::CwL2)
    }

    /// Whether the attack has a budget `eps` at all (DeepFool and C&W minimize the perturbation).
    pub fn has_eps(self) -> bool {
        !matches!(self, AttackKind::DeepFool | AttackKind::CwL2)
    }
}

impl FromStr for AttackKind {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match AttackKind::ALL.iter().find(|k| k.name() == s) {
            Some(&k) => Ok(k),
            None => crate::bail!(
                ErrorKind::InvalidArgument,
                "unknown attack {s:?}; the attacks are {}",
                AttackKind::ALL.map(|k| k.name()).join(", ")
            ),
        }
    }
}

impl std::fmt::Display for AttackKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a caller asks for; `None` takes the attack's default ([`Settings::resolve`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    pub eps: Option<f32>,
    pub steps: Option<u32>,
    /// Step size (PGD, BIM, MI-FGSM) or Adam's learning rate (C&W).
    pub step_size: Option<f32>,
    /// Targeted attack towards this class; untargeted when `None`.
    pub target: Option<usize>,
    /// Apply the ADV-ReLU correction to every gradient.
    pub adv_relu: Option<AdvRelu>,
    /// PGD only: binary-search the smallest budget that succeeds (up to `eps`), for a
    /// minimal-perturbation attack comparable with DeepFool and C&W.
    pub min_eps: bool,
    /// Binary-search steps (C&W's constant, or the budget with `min_eps`).
    pub search_steps: Option<u32>,
    /// Seed of the random start (PGD).
    pub seed: u64,
}

/// Upper limits that keep a hostile or mistaken request bounded in time.
pub const MAX_STEPS: u32 = 10_000;
pub const MAX_SEARCH_STEPS: u32 = 20;

/// Every setting of a run, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub kind: AttackKind,
    pub eps: f32,
    pub steps: u32,
    pub step_size: f32,
    pub target: Option<usize>,
    pub adv_relu: Option<AdvRelu>,
    pub random_start: bool,
    pub min_eps: bool,
    pub search_steps: u32,
    /// MI-FGSM's momentum decay.
    pub decay: f32,
    /// DeepFool's overshoot.
    pub overshoot: f32,
    /// C&W's first constant and confidence.
    pub cw_const: f32,
    pub kappa: f32,
    pub seed: u64,
}

impl Settings {
    /// Fills in the defaults of `kind` and checks every value against the input size `n` and
    /// the number of classes.
    pub fn resolve(kind: AttackKind, p: &Params, n: usize, classes: usize) -> Result<Settings> {
        use AttackKind::*;
        // (eps, steps, step size as a fraction of eps or absolute)
        let (eps, steps) = match kind {
            Fgsm => (0.3, 1),
            Bim => (0.3, 10),
            PgdLinf => (0.3, 40),
            PgdL2 => (2.0, 50),
            MiFgsm => (0.3, 10),
            DeepFool => (0.0, 50),
            CwL2 => (0.0, 100),
        };
        let eps = p.eps.unwrap_or(eps);
        let steps = p.steps.unwrap_or(steps);
        let max_eps = if kind.is_l2() { (n as f32).sqrt() } else { 1.0 };
        if kind.has_eps() && !(eps > 0.0 && eps <= max_eps) {
            crate::bail!(
                ErrorKind::InvalidArgument,
                "eps must be a number in (0, {max_eps}] for {kind} on pixels in [0, 1], got {eps}"
            );
        }
        if !kind.has_eps() && p.eps.is_some() {
            crate::bail!(ErrorKind::InvalidArgument, "{kind} finds the smallest perturbation itself and takes no eps");
        }
        if steps == 0 || steps > MAX_STEPS {
            crate::bail!(ErrorKind::InvalidArgument, "steps must be in 1..={MAX_STEPS}, got {steps}");
        }
        if kind == Fgsm && steps != 1 {
            crate::bail!(ErrorKind::InvalidArgument, "fgsm takes a single step; use bim or pgd-linf for more");
        }
        let step_size = p.step_size.unwrap_or(match kind {
            Fgsm => eps,
            Bim => 0.2 * eps,           // foolbox LinfBasicIterativeAttack rel_stepsize 0.2
            PgdLinf => eps / 30.0,      // foolbox LinfPGD rel_stepsize 0.01 / 0.3
            PgdL2 => 0.025 * eps,       // foolbox L2PGD rel_stepsize 0.025
            MiFgsm => eps / steps as f32, // torchattacks MIFGSM: alpha = eps / steps
            DeepFool => 0.0,
            // foolbox's L2CarliniWagnerAttack takes 0.01 over 10,000 steps; at our 100 steps (a
            // browser budget) 0.01 cannot move saturated pixels out of tanh's flat ends, and half
            // the MNIST attacks failed. 0.1 succeeds on all with smaller L2 than DeepFool.
            CwL2 => 0.1,
        });
        if !(step_size.is_finite() && step_size >= 0.0 && step_size <= max_eps.max(1.0)) {
            crate::bail!(ErrorKind::InvalidArgument, "step size must be in [0, {}], got {step_size}", max_eps.max(1.0));
        }
        if let Some(t) = p.target {
            if t >= classes {
                crate::bail!(ErrorKind::InvalidArgument, "target class {t} is out of range: the model has {classes} classes");
            }
            if kind == DeepFool {
                crate::bail!(ErrorKind::InvalidArgument, "deepfool is untargeted; leave the target out");
            }
        }
        if p.min_eps && !matches!(kind, PgdLinf | PgdL2) {
            crate::bail!(ErrorKind::InvalidArgument, "the minimal-budget search is for pgd-linf and pgd-l2, not {kind}");
        }
        let search_steps = p.search_steps.unwrap_or(if kind == CwL2 { 9 } else { 8 });
        if search_steps == 0 || search_steps > MAX_SEARCH_STEPS {
            crate::bail!(ErrorKind::InvalidArgument, "search steps must be in 1..={MAX_SEARCH_STEPS}, got {search_steps}");
        }
        if let Some(a) = &p.adv_relu {
            a.check()?;
        }
        Ok(Settings {
            kind,
            eps,
            steps,
            step_size,
            target: p.target,
            adv_relu: p.adv_relu,
            random_start: matches!(kind, PgdLinf | PgdL2),
            min_eps: p.min_eps,
            search_steps,
            decay: 1.0,
            overshoot: 0.02,
            cw_const: 1e-3,
            kappa: 0.0,
            seed: p.seed,
        })
    }

    /// Gradient evaluations (a DeepFool step counts one per candidate) a run may take at most:
    /// the total of the progress it reports.
    pub fn max_work(&self, classes: usize) -> u32 {
        match self.kind {
            AttackKind::DeepFool => self.steps * (classes.min(deepfool::CANDIDATES) as u32 - 1).max(1),
            AttackKind::CwL2 => self.steps * self.search_steps,
            _ if self.min_eps => self.steps * (self.search_steps + 1),
            _ => self.steps,
        }
    }
}

/// What an attack wants: to leave the class `label` (untargeted) or reach `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Goal {
    pub label: usize,
    pub target: Option<usize>,
}

impl Goal {
    /// Whether logits `z` meet the goal (the model's top class; ties go to the lower index).
    pub fn met(&self, z: &[f32]) -> bool {
        let top = argmax(z);
        match self.target {
            Some(t) => top == t,
            None => top != self.label,
        }
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = i;
        }
    }
    best
}

/// The result of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The adversarial image (the original where a minimizing attack found nothing).
    pub adversarial: Vec<f32>,
    /// Whether the model at the attacked width meets the goal on `adversarial`.
    pub success: bool,
    /// Perturbation norms on the pixel scale [0, 1].
    pub l2: f32,
    pub linf: f32,
    /// Gradient evaluations spent.
    pub work: u32,
}

/// State shared by every attack: the original image, the goal and the settings.
pub(crate) struct Common {
    pub x0: Vec<f32>,
    pub goal: Goal,
    pub s: Settings,
}

enum Run {
    Iterative(iterative::Iterative),
    DeepFool(deepfool::DeepFool),
    Cw(cw::Cw),
}

/// One attack on one image, resumable step by step.
pub struct Attack {
    common: Common,
    run: Run,
    work: u32,
    max_work: u32,
    done: bool,
}

impl Attack {
    /// Sets up an attack on `image` (pixels in [0, 1]), whose true class is `label`, against
    /// `model` at its current width.
    pub fn new(model: &Model, image: &[f32], label: usize, kind: AttackKind, params: &Params) -> Result<Attack> {
        let n = crate::tensor::numel(model.input_shape()).unwrap_or(0);
        if image.len() != n {
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "the image has {} values; the model expects {:?} = {n}",
                image.len(),
                model.input_shape()
            );
        }
        if let Some(i) = image.iter().position(|v| !(0.0..=1.0).contains(v)) {
            crate::bail!(ErrorKind::BadValue, "pixel #{i} is {}; attacks work on pixels in [0, 1]", image[i]);
        }
        let classes = crate::tensor::numel(model.output_shape()).unwrap_or(0);
        if label >= classes {
            crate::bail!(ErrorKind::InvalidArgument, "label {label} is out of range: the model has {classes} classes");
        }
        let s = Settings::resolve(kind, params, n, classes)?;
        let max_work = s.max_work(classes);
        let common = Common { x0: image.to_vec(), goal: Goal { label, target: s.target }, s };
        let run = match kind {
            AttackKind::DeepFool => Run::DeepFool(deepfool::DeepFool::new(&common)),
            AttackKind::CwL2 => Run::Cw(cw::Cw::new(&common)),
            _ => Run::Iterative(iterative::Iterative::new(&common)),
        };
        Ok(Attack { common, run, work: 0, max_work, done: false })
    }

    pub fn settings(&self) -> &Settings {
        &self.common.s
    }

    /// Does one unit of work; returns whether the run is finished.
    pub fn step(&mut self, model: &mut Model) -> Result<bool> {
        if self.done {
            return Ok(true);
        }
        let (work, done) = match &mut self.run {
            Run::Iterative(r) => r.step(model, &self.common)?,
            Run::DeepFool(r) => r.step(model, &self.common)?,
            Run::Cw(r) => r.step(model, &self.common)?,
        };
        self.work += work;
        self.done = done || self.work >= self.max_work;
        Ok(self.done)
    }

    /// (gradient evaluations done, the most the run may take); a run that stops early jumps to
    /// the total.
    pub fn progress(&self) -> (u32, u32) {
        (if self.done { self.max_work } else { self.work.min(self.max_work) }, self.max_work)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The outcome so far (the final one once `step` returned true): checks the adversarial
    /// image with one quantized forward pass.
    pub fn finish(&self, model: &mut Model) -> Result<Outcome> {
        let adversarial = match &self.run {
            Run::Iterative(r) => r.result(),
            Run::DeepFool(r) => r.result(),
            Run::Cw(r) => r.result(),
        }
        .unwrap_or(&self.common.x0)
        .to_vec();
        let z = model.run(&adversarial)?;
        let (l2, linf) = norms(&adversarial, &self.common.x0);
        Ok(Outcome { success: self.common.goal.met(&z), adversarial, l2, linf, work: self.work })
    }

    /// Runs to the end.
    pub fn run(mut self, model: &mut Model) -> Result<Outcome> {
        while !self.step(model)? {}
        self.finish(model)
    }
}

/// The f64 nearest the shortest decimal of `v`, for reports: an eps of 0.2 reads 0.2 in JSON and
/// JavaScript, not 0.20000000298 (the f32 widened).
pub fn shortest(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// (L2, Linf) of `a - b`.
pub fn norms(a: &[f32], b: &[f32]) -> (f32, f32) {
    let mut l2 = 0.0f64;
    let mut linf = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        l2 += (d as f64) * (d as f64);
        linf = linf.max(d.abs());
    }
    (l2.sqrt() as f32, linf)
}

pub(crate) fn l2_norm(v: &[f32]) -> f32 {
    v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt() as f32
}

/// A small deterministic generator for random starts (xorshift64*).
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.uniform().max(1e-7);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}
