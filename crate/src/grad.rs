//! Input gradients of losses on a model's logits, and the ADV-ReLU correction of them.
//!
//! The gradient flows through the quantized forward pass the runtime really runs (a
//! [`Trace`]), with the layers' backward passes (`crate::layers`): straight-through inside each
//! activation quantizer's clip range and each clamp's range, zero outside. docs/ATTACKS.md states
//! the semantics and every default.
//!
//! ADV-ReLU (arXiv 2010.10712, as reconstructed here): the gate derivative `1[lo <= z <= hi]`
//! misleads an attack where a small step along the gradient would switch a unit on ("wrong
//! blocking") or off ("over transmission"). Per gradient, take a tentative step of L2 length
//! `eta` along the plain gradient, record which gate inputs change state, keep the `fraction`
//! of them per gate with the largest change `|z' - z|`, and backpropagate again with those
//! gates' decisions inverted. The plain gradient's own forward pass is reused.

use crate::error::{ErrorKind, Result};
use crate::model::{Model, Trace};

/// A scalar loss on the logits that an attack *increases*.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Softmax cross-entropy with `class`: increased (`away`, untargeted) or, as its negative,
    /// decreased (targeted).
    CrossEntropy { class: usize, away: bool },
    /// `logits[to] - logits[from]` (DeepFool's linearized boundary towards `to`).
    Difference { to: usize, from: usize },
    /// Carlini & Wagner's margin, capped at `kappa`: `min(max_{i != class} z_i - z_class, kappa)`
    /// when moving `away` from `class`, `min(z_class - max_{i != class} z_i, kappa)` when moving
    /// towards it. Positive once the attack has succeeded.
    Margin { class: usize, away: bool, kappa: f32 },
}

impl Loss {
    /// The loss and its gradient with respect to `logits`.
    pub fn eval(&self, logits: &[f32]) -> Result<(f32, Vec<f32>)> {
        let n = logits.len();
        let check = |c: usize| {
            if c < n {
                Ok(c)
            } else {
                crate::bail!(ErrorKind::InvalidArgument, "class {c} is out of range: the model has {n} classes")
            }
        };
        let mut g = vec![0.0f32; n];
        Ok(match *self {
            Loss::CrossEntropy { class, away } => {
                let class = check(class)?;
                let mut p = logits.to_vec();
                crate::layers::softmax_in_place(&mut p);
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let lse = max + logits.iter().map(|z| (z - max).exp()).sum::<f32>().ln();
                let sign = if away { 1.0 } else { -1.0 };
                for (gi, pi) in g.iter_mut().zip(&p) {
                    *gi = sign * pi;
                }
                // p[class] - 1 as minus the other probabilities: the difference cancels in f32
                // once the model is confident (p[class] rounds to 1 when the rest sum below 6e-8),
                // which dropped the class logit's term from the gradient.
                let rest: f32 = p.iter().enumerate().filter(|&(i, _)| i != class).map(|(_, pi)| pi).sum();
                g[class] = -sign * rest;
                (sign * (lse - logits[class]), g)
            }
            Loss::Difference { to, from } => {
                let (to, from) = (check(to)?, check(from)?);
                g[to] += 1.0;
                g[from] -= 1.0;
                (logits[to] - logits[from], g)
            }
            Loss::Margin { class, away, kappa } => {
                let class = check(class)?;
                let other = (0..n).filter(|&i| i != class).max_by(|&a, &b| logits[a].total_cmp(&logits[b]));
                let Some(other) = other else {
                    crate::bail!(ErrorKind::InvalidArgument, "a margin needs two or more classes");
                };
                let (hi, lo) = if away { (other, class) } else { (class, other) };
                let m = logits[hi] - logits[lo];
                if m < kappa {
                    g[hi] = 1.0;
                    g[lo] = -1.0;
                }
                (m.min(kappa), g)
            }
        })
    }
}

/// ADV-ReLU settings: the tentative step's L2 length and the share of state-changing gate inputs
/// (per gate) whose decision is inverted. `bounds` is the valid input range the tentative step
/// is clipped to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdvRelu {
    pub eta: f32,
    pub fraction: f32,
    pub bounds: (f32, f32),
}

impl Default for AdvRelu {
    fn default() -> Self {
        AdvRelu { eta: DEFAULT_ETA, fraction: DEFAULT_FRACTION, bounds: (0.0, 1.0) }
    }
}

/// Defaults chosen on MNIST training images (docs/ATTACKS.md says how).
pub const DEFAULT_ETA: f32 = 1.0;
pub const DEFAULT_FRACTION: f32 = 0.5;

impl AdvRelu {
    pub fn check(&self) -> Result<()> {
        if !(self.eta > 0.0 && self.eta.is_finite() && self.fraction > 0.0 && self.fraction <= 1.0) {
            crate::bail!(
                ErrorKind::InvalidArgument,
                "ADV-ReLU needs eta > 0 and a fraction in (0, 1], got eta {} and fraction {}",
                self.eta,
                self.fraction
            );
        }
        Ok(())
    }
}

/// One forward pass and the gradients of several losses on it.
pub struct Gradients {
    pub logits: Vec<f32>,
    /// (loss value, input gradient) for each loss, in order.
    pub losses: Vec<(f32, Vec<f32>)>,
}

/// Runs `x` once (quantized, or the float twin) and returns the input gradient of each loss,
/// corrected by ADV-ReLU when `adv` is given.
pub fn gradients(model: &mut Model, x: &[f32], losses: &[Loss], adv: Option<&AdvRelu>, twin: bool) -> Result<Gradients> {
    if let Some(a) = adv {
        a.check()?;
    }
    let trace = model.trace(x, twin)?;
    let mut out = Vec::with_capacity(losses.len());
    for loss in losses {
        let (value, dlogits) = loss.eval(trace.logits())?;
        let mut g = model.backward(&trace, &dlogits, &[])?;
        if let Some(adv) = adv {
            g = adv_relu(model, &trace, &dlogits, g, adv)?;
        }
        out.push((value, g));
    }
    Ok(Gradients { logits: trace.logits().to_vec(), losses: out })
}

/// The gradient of one loss: its value, the logits and the input gradient.
pub fn gradient(model: &mut Model, x: &[f32], loss: Loss, adv: Option<&AdvRelu>) -> Result<(Vec<f32>, f32, Vec<f32>)> {
    let mut g = gradients(model, x, &[loss], adv, false)?;
    let (value, grad) = g.losses.pop().expect("one loss in, one out");
    Ok((g.logits, value, grad))
}

fn adv_relu(model: &mut Model, trace: &Trace, dlogits: &[f32], g0: Vec<f32>, adv: &AdvRelu) -> Result<Vec<f32>> {
    let norm = g0.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Ok(g0);
    }
    let (lo, hi) = adv.bounds;
    let step = adv.eta / norm;
    let x1: Vec<f32> = trace.input().iter().zip(&g0).map(|(x, g)| (x + step * g).max(lo).min(hi)).collect();
    let tentative = model.trace(&x1, false)?;
    let mut flips = vec![Vec::new(); model.graph().nodes.len()];
    let mut any = false;
    for (gate, moved) in model.gates(trace).into_iter().zip(model.gates(&tentative)) {
        let (lo, hi) = gate.range;
        let inside = |v: f32| v >= lo && v <= hi;
        let mut changed: Vec<(f32, u32)> = gate
            .pre
            .iter()
            .zip(moved.pre)
            .enumerate()
            .filter(|(_, (a, b))| inside(**a) != inside(**b))
            .map(|(i, (a, b))| ((b - a).abs(), i as u32))
            .collect();
        let keep = ((changed.len() as f32 * adv.fraction).ceil() as usize).min(changed.len());
        if keep == 0 {
            continue;
        }
        if keep < changed.len() {
            changed.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0));
            changed.truncate(keep);
        }
        let mut idx: Vec<u32> = changed.into_iter().map(|(_, i)| i).collect();
        idx.sort_unstable();
        flips[gate.node] = idx;
        any = true;
    }
    if !any {
        return Ok(g0);
    }
    model.backward(trace, dlogits, &flips)
}
