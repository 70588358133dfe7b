//! Adam on CPU vectors, with its moments exposed so checkpoints resume exactly
//! (candle-nn's optimizer keeps its state private).

use std::collections::HashMap;

use anyhow::{bail, Result};
use candle_core::{backprop::GradStore, Tensor, Var};

use crate::ops;

pub struct Adam {
    pub vars: Vec<(String, Var)>,
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
    pub t: u64,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled weight decay (AdamW), applied to tensors of rank >= 2 only.
    pub weight_decay: f32,
    /// Lower bound on every value after a step (keeps PACT clips positive).
    pub floor: Option<f32>,
}

impl Adam {
    pub fn new(vars: Vec<(String, Var)>, weight_decay: f32, floor: Option<f32>) -> Adam {
        let m = vars.iter().map(|(_, v)| vec![0.0; v.elem_count()]).collect();
        let v = vars.iter().map(|(_, v)| vec![0.0; v.elem_count()]).collect();
        Adam { vars, m, v, t: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, floor }
    }

    pub fn step(&mut self, grads: &GradStore, lr: f32) -> Result<()> {
        self.t += 1;
        let bc1 = 1.0 - self.beta1.powi(self.t as i32);
        let bc2 = 1.0 - self.beta2.powi(self.t as i32);
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            let g = ops::data(g)?;
            let mut w = ops::data(var.as_tensor())?;
            let decay = if var.rank() >= 2 { lr * self.weight_decay } else { 0.0 };
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for j in 0..w.len() {
                m[j] = self.beta1 * m[j] + (1.0 - self.beta1) * g[j];
                v[j] = self.beta2 * v[j] + (1.0 - self.beta2) * g[j] * g[j];
                let upd = (m[j] / bc1) / ((v[j] / bc2).sqrt() + self.eps);
                w[j] -= lr * upd + decay * w[j];
                if let Some(f) = self.floor {
                    w[j] = w[j].max(f);
                }
            }
            var.set(&Tensor::from_vec(w, var.shape(), var.device())?)?;
        }
        Ok(())
    }

    pub fn state(&self, prefix: &str, out: &mut HashMap<String, Tensor>) -> Result<()> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            out.insert(format!("{prefix}.{name}.m"), Tensor::from_vec(self.m[i].clone(), var.shape(), var.device())?);
            out.insert(format!("{prefix}.{name}.v"), Tensor::from_vec(self.v[i].clone(), var.shape(), var.device())?);
        }
        Ok(())
    }

    pub fn load_state(&mut self, prefix: &str, t: u64, st: &HashMap<String, Tensor>) -> Result<()> {
        for (i, (name, _)) in self.vars.iter().enumerate() {
            let (Some(m), Some(v)) = (st.get(&format!("{prefix}.{name}.m")), st.get(&format!("{prefix}.{name}.v"))) else {
                bail!("checkpoint lacks optimizer state for `{name}`");
            };
            self.m[i] = ops::data(m)?;
            self.v[i] = ops::data(v)?;
        }
        self.t = t;
        Ok(())
    }
}
