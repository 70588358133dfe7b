//! Carlini & Wagner L2 (arXiv 1608.04644), as foolbox 3 runs it: Adam in tanh space on
//! `||x - x0||^2 + c * max(margin, -kappa)`, a binary search over `c` starting at 1e-3 (times 10
//! until an example is found, then bisection), early abort when the loss stalls, and the
//! smallest successful perturbation over all rounds.

use super::{norms, Common};
use crate::error::Result;
use crate::grad::{gradient, Loss};
use crate::model::Model;

pub(crate) struct Cw {
    w0: Vec<f32>,
    w: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    /// Adam steps in this round.
    i: u32,
    c: f32,
    lo: f32,
    hi: f32,
    round: u32,
    found_this_round: bool,
    prev_loss: f32,
    best: Option<(f32, Vec<f32>)>,
}

/// `x = (tanh(w) + 1) / 2` maps any `w` into the pixel range [0, 1].
fn to_x(w: f32) -> f32 {
    0.5 * (w.tanh() + 1.0)
}

impl Cw {
    pub fn new(c: &Common) -> Cw {
        let w0: Vec<f32> = c.x0.iter().map(|&x| (2.0 * x - 1.0).clamp(-0.999_999, 0.999_999).atanh()).collect();
        let n = w0.len();
        Cw {
            w: w0.clone(),
            w0,
            m: vec![0.0; n],
            v: vec![0.0; n],
            i: 0,
            c: c.s.cw_const,
            lo: 0.0,
            hi: f32::INFINITY,
            round: 0,
            found_this_round: false,
            prev_loss: f32::INFINITY,
            best: None,
        }
    }

    pub fn step(&mut self, model: &mut Model, c: &Common) -> Result<(u32, bool)> {
        let s = &c.s;
        let x: Vec<f32> = self.w.iter().map(|&w| to_x(w)).collect();
        let loss = match c.goal.target {
            Some(t) => Loss::Margin { class: t, away: false, kappa: s.kappa },
            None => Loss::Margin { class: c.goal.label, away: true, kappa: s.kappa },
        };
        let (logits, margin, g) = gradient(model, &x, loss, s.adv_relu.as_ref())?;
        let (l2, _) = norms(&x, &c.x0);
        if c.goal.met(&logits) {
            self.found_this_round = true;
            if self.best.as_ref().is_none_or(|(b, _)| l2 < *b) {
                self.best = Some((l2, x.clone()));
            }
        }
        // The objective is minimized: ||x - x0||^2 - c * margin (the margin is what the attack
        // increases), through x = (tanh w + 1) / 2.
        let total = l2 * l2 - self.c * margin;
        let (b1, b2) = (0.9f32, 0.999f32);
        let t = (self.i + 1) as i32;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for i in 0..self.w.len() {
            let th = self.w[i].tanh();
            let gx = 2.0 * (x[i] - c.x0[i]) - self.c * g[i];
            let gw = gx * 0.5 * (1.0 - th * th);
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * gw;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * gw * gw;
            self.w[i] -= s.step_size * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
        }
        self.i += 1;
        let check_every = s.steps.div_ceil(10).max(1);
        let mut round_over = self.i >= s.steps;
        if self.i % check_every == 0 {
            if total > 0.9999 * self.prev_loss {
                round_over = true;
            }
            self.prev_loss = total;
        }
        if !round_over {
            return Ok((1, false));
        }
        // Next constant: times 10 until a round succeeds, then bisection.
        if self.found_this_round {
            self.hi = self.hi.min(self.c);
        } else {
            self.lo = self.lo.max(self.c);
        }
        self.c = if self.hi.is_infinite() { self.c * 10.0 } else { 0.5 * (self.lo + self.hi) };
        self.round += 1;
        self.i = 0;
        self.found_this_round = false;
        self.prev_loss = f32::INFINITY;
        self.w.copy_from_slice(&self.w0);
        self.m.fill(0.0);
        self.v.fill(0.0);
        Ok((1, self.round >= s.search_steps))
    }

    pub fn result(&self) -> Option<&[f32]> {
        self.best.as_ref().map(|(_, x)| x.as_slice())
    }
}
