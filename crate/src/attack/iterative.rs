//! The gradient-step attacks: FGSM, BIM (I-FGSM), PGD-Linf, PGD-L2 and MI-FGSM, each optionally
//! wrapped in a binary search for the smallest budget that succeeds.

use super::{l2_norm, AttackKind, Common, Rng};
use crate::error::Result;
use crate::grad::{gradient, Loss};
use crate::model::Model;

pub(crate) struct Iterative {
    x: Vec<f32>,
    momentum: Vec<f32>,
    /// Updates done in the current run.
    i: u32,
    /// Budget of the current run.
    eps: f32,
    rng: Rng,
    /// The minimal-budget search: (lo, hi, searches done); `None` for a plain run.
    search: Option<(f32, f32, u32)>,
    /// With the search: the adversarial image of the smallest budget that succeeded so far.
    best: Option<Vec<f32>>,
}

impl Iterative {
    pub fn new(c: &Common) -> Iterative {
        let mut it = Iterative {
            x: Vec::new(),
            momentum: Vec::new(),
            i: 0,
            eps: c.s.eps,
            rng: Rng::new(c.s.seed),
            search: c.s.min_eps.then_some((0.0, c.s.eps, 0)),
            best: None,
        };
        it.restart(c);
        it
    }

    /// Starts a run at budget `self.eps`: the original image, plus a random point of the budget
    /// ball for PGD (uniform in the Linf box; uniform in the L2 ball, as foolbox draws it).
    fn restart(&mut self, c: &Common) {
        self.i = 0;
        self.x = c.x0.clone();
        self.momentum = vec![0.0; c.x0.len()];
        if !c.s.random_start {
            return;
        }
        let eps = self.eps;
        let delta: Vec<f32> = if c.s.kind.is_l2() {
            let dir: Vec<f32> = (0..c.x0.len()).map(|_| self.rng.normal()).collect();
            let norm = l2_norm(&dir).max(1e-12);
            let radius = eps * self.rng.uniform().powf(1.0 / c.x0.len() as f32);
            dir.iter().map(|d| d * radius / norm).collect()
        } else {
            (0..c.x0.len()).map(|_| (2.0 * self.rng.uniform() - 1.0) * eps).collect()
        };
        for (x, d) in self.x.iter_mut().zip(delta) {
            *x = (*x + d).clamp(0.0, 1.0);
        }
    }

    /// One gradient step. With the search, a run ends at the first iterate that meets the goal,
    /// and a finished run moves the search on.
    pub fn step(&mut self, model: &mut Model, c: &Common) -> Result<(u32, bool)> {
        let s = &c.s;
        let loss = match c.goal.target {
            Some(t) => Loss::CrossEntropy { class: t, away: false },
            None => Loss::CrossEntropy { class: c.goal.label, away: true },
        };
        let (logits, _, g) = gradient(model, &self.x, loss, s.adv_relu.as_ref())?;
        if self.search.is_some() && c.goal.met(&logits) {
            return Ok((1, self.end_run(true, c)));
        }
        self.update(&g, c);
        self.i += 1;
        if self.i < s.steps {
            return Ok((1, false));
        }
        if self.search.is_none() {
            return Ok((1, true));
        }
        let met = c.goal.met(&model.run(&self.x)?);
        Ok((1, self.end_run(met, c)))
    }

    fn update(&mut self, g: &[f32], c: &Common) {
        let s = &c.s;
        match s.kind {
            AttackKind::PgdL2 => {
                let norm = l2_norm(g);
                if norm > 0.0 {
                    let k = s.step_size * self.eps / s.eps / norm;
                    self.x.iter_mut().zip(g).for_each(|(x, g)| *x += k * g);
                }
                let delta: Vec<f32> = self.x.iter().zip(&c.x0).map(|(x, x0)| x - x0).collect();
                let norm = l2_norm(&delta);
                let shrink = if norm > self.eps { self.eps / norm } else { 1.0 };
                for ((x, x0), d) in self.x.iter_mut().zip(&c.x0).zip(delta) {
                    *x = (x0 + d * shrink).clamp(0.0, 1.0);
                }
            }
            _ => {
                let dir: &[f32] = if s.kind == AttackKind::MiFgsm {
                    // Momentum on the L1-normalized gradient (MI-FGSM, arXiv 1710.06081).
                    let l1 = g.iter().map(|v| v.abs()).sum::<f32>().max(1e-12);
                    self.momentum.iter_mut().zip(g).for_each(|(m, g)| *m = s.decay * *m + g / l1);
                    &self.momentum
                } else {
                    g
                };
                let alpha = s.step_size * self.eps / s.eps;
                for ((x, x0), d) in self.x.iter_mut().zip(&c.x0).zip(dir) {
                    let stepped = *x + alpha * sign(*d);
                    *x = stepped.clamp(x0 - self.eps, x0 + self.eps).clamp(0.0, 1.0);
                }
            }
        }
    }

    /// Ends a run of the search; returns whether the whole attack is finished.
    fn end_run(&mut self, met: bool, c: &Common) -> bool {
        let Some((mut lo, mut hi, done)) = self.search else { return true };
        if met {
            hi = self.eps;
            self.best = Some(self.x.clone());
        } else if done == 0 {
            // Even the full budget fails: nothing to search.
            return true;
        } else {
            lo = self.eps;
        }
        if done >= c.s.search_steps {
            return true;
        }
        self.search = Some((lo, hi, done + 1));
        self.eps = 0.5 * (lo + hi);
        self.restart(c);
        false
    }

    pub fn result(&self) -> Option<&[f32]> {
        match self.search {
            Some(_) => self.best.as_deref(),
            None => Some(&self.x),
        }
    }
}

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}
