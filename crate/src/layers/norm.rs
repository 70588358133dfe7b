//! LayerNorm: each token normalized over its last dimension, then a per-width affine (so that a
//! model trained for all widths jointly can keep one normalization per width, as its BatchNorms
//! do in the image models).

use super::{no_backward, single, Affine, Context, Layer};
use crate::error::{ErrorKind, Result};
use crate::format::Width;
use crate::tensor::Tensor;

pub struct LayerNorm {
    pub eps: f32,
    pub affine: Affine,
}

impl LayerNorm {
    pub fn new(name: &str, eps: f32, params: Vec<(Vec<f32>, Vec<f32>)>) -> Result<Self> {
        if !(eps.is_finite() && eps > 0.0) {
            crate::bail!(ErrorKind::BadValue, "{name}: eps {eps} must be positive");
        }
        Ok(LayerNorm { eps, affine: Affine::new(name, params)? })
    }
}

/// Normalizes `row` to zero mean and unit variance (biased, as BERT's LayerNorm), in place.
pub fn normalize(row: &mut [f32], eps: f32) {
    let n = row.len() as f64;
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = row.iter().map(|&v| (v as f64 - mean) * (v as f64 - mean)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps as f64).sqrt();
    row.iter_mut().for_each(|v| *v = ((*v as f64 - mean) * inv) as f32);
}

impl Layer for LayerNorm {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        self.affine.output_shape(inputs)
    }
    fn forward(&self, inputs: &[&Tensor], ctx: &mut Context) -> Result<Tensor> {
        let x = single(inputs, &self.affine.name)?;
        self.output_shape(&[x.shape()])?;
        let mut y = x.clone();
        for row in y.data_mut().chunks_exact_mut(self.affine.channels()) {
            normalize(row, self.eps);
        }
        self.affine.forward(&[&y], ctx)
    }
    fn backward(&self, _: &[&Tensor], _: &Tensor, _: &[u32], _: &mut Context) -> Result<Vec<Tensor>> {
        no_backward(&self.affine.name)
    }
    fn set_width(&mut self, index: usize, width: Width) -> Result<()> {
        self.affine.set_width(index, width)
    }
    fn param_bytes(&self, width: Width) -> usize {
        self.affine.param_bytes(width)
    }
}
