//! DeepFool, L2 (arXiv 1511.04599), as foolbox 3 runs it: linearize the boundaries to the
//! candidate classes, step to the nearest one, accumulate, and overshoot the total.

use super::{l2_norm, Common};
use crate::error::Result;
use crate::grad::{gradients, Loss};
use crate::model::Model;

/// Classes considered: the original class and the next highest logits (foolbox's default).
pub(crate) const CANDIDATES: usize = 10;

pub(crate) struct DeepFool {
    /// The classes to push towards, fixed by the original logits (empty until the first step).
    candidates: Vec<usize>,
    total: Vec<f32>,
    x: Vec<f32>,
    i: u32,
}

impl DeepFool {
    pub fn new(c: &Common) -> DeepFool {
        DeepFool { candidates: Vec::new(), total: vec![0.0; c.x0.len()], x: c.x0.clone(), i: 0 }
    }

    pub fn step(&mut self, model: &mut Model, c: &Common) -> Result<(u32, bool)> {
        let label = c.goal.label;
        if self.candidates.is_empty() {
            let z = model.run(&c.x0)?;
            let mut order: Vec<usize> = (0..z.len()).collect();
            order.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
            self.candidates = order.into_iter().filter(|&k| k != label).take(CANDIDATES - 1).collect();
        }
        let losses: Vec<Loss> = self.candidates.iter().map(|&k| Loss::Difference { to: k, from: label }).collect();
        let g = gradients(model, &self.x, &losses, c.s.adv_relu.as_ref(), false)?;
        let work = losses.len() as u32;
        if c.goal.met(&g.logits) {
            return Ok((work, true));
        }
        // The nearest linearized boundary: |f_k| / ||w_k||; a zero gradient never wins. The
        // 1e-4 keeps the step nonzero on the boundary itself, and the 1e-8 bounds the step where
        // the gradient is tiny (|f| / ||w||^2 would be huge).
        let mut best: Option<(f32, usize)> = None;
        for (k, (f, w)) in g.losses.iter().enumerate() {
            let norm = l2_norm(w);
            if norm == 0.0 {
                continue;
            }
            let dist = f.abs() / norm;
            if best.is_none_or(|(d, _)| dist < d) {
                best = Some((dist, k));
            }
        }
        let Some((_, k)) = best else { return Ok((work, true)) };
        let (f, w) = &g.losses[k];
        let norm2 = w.iter().map(|v| v * v).sum::<f32>();
        let scale = (f.abs() + 1e-4) / (norm2 + 1e-8);
        let o = 1.0 + c.s.overshoot;
        for (((x, t), x0), wi) in self.x.iter_mut().zip(&mut self.total).zip(&c.x0).zip(w) {
            *t += scale * wi;
            *x = (x0 + o * *t).clamp(0.0, 1.0);
        }
        self.i += 1;
        Ok((work, self.i >= c.s.steps))
    }

    pub fn result(&self) -> Option<&[f32]> {
        Some(&self.x)
    }
}
