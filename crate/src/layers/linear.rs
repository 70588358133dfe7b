//! Per-token fully connected layer of a transformer: the Q, K, V, output and feed-forward
//! projections and per-token heads. The weights are the same nested codes and kernels as a
//! convolution's, with per-output-channel scales; the input is quantized per token over its own
//! range (`ActQuant::Dynamic`), since hidden states have no fixed sign or clip.

use super::{no_backward, Context, Layer, QuantWeights};
use crate::error::{ErrorKind, Result};
use crate::format::Width;
use crate::tensor::Tensor;

pub struct Linear {
    pub weights: QuantWeights,
    /// The reciprocals of the smoothing factors the input is divided by, if any.
    inv_smooth: Option<Vec<f32>>,
}

impl Linear {
    pub fn new(weights: QuantWeights, smooth: Option<Vec<f32>>) -> Result<Self> {
        if weights.groups() != 1 {
            crate::bail!(ErrorKind::BadShape, "{}: linear layers have one group", weights.name());
        }
        if let Some(s) = &smooth {
            if s.len() != weights.depth() || !s.iter().all(|v| v.is_finite() && *v > 0.0) {
                crate::bail!(ErrorKind::BadValue, "{}: {} smoothing factors for {} inputs, each must be > 0", weights.name(), s.len(), weights.depth());
            }
        }
        let inv_smooth = smooth.map(|s| s.iter().map(|v| 1.0 / v).collect());
        Ok(Linear { weights, inv_smooth })
    }

    /// Tokens of an input shape `[tokens, in]` or `[in]` (one token).
    fn tokens(&self, shape: &[usize]) -> Result<usize> {
        match shape {
            [t, d] if *d == self.weights.depth() && *t > 0 => Ok(*t),
            [d] if *d == self.weights.depth() => Ok(1),
            _ => crate::bail!(
                ErrorKind::ShapeMismatch,
                "{}: expects [tokens, {}] or [{}], got {shape:?}",
                self.weights.name(),
                self.weights.depth(),
                self.weights.depth()
            ),
        }
    }
}

impl Layer for Linear {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let shape = super::single(inputs, self.weights.name())?;
        self.tokens(shape)?;
        let mut out = shape.to_vec();
        *out.last_mut().expect("checked nonempty") = self.weights.outputs();
        Ok(out)
    }

    fn forward(&self, inputs: &[&Tensor], ctx: &mut Context) -> Result<Tensor> {
        let x = super::single(inputs, self.weights.name())?;
        let mut out = Tensor::zeros(self.output_shape(&[x.shape()])?);
        let tokens = self.tokens(x.shape())?;
        if ctx.twin {
            let smoothed: Vec<f32>;
            let xs = match &self.inv_smooth {
                Some(inv) => {
                    smoothed = x.data().chunks_exact(inv.len()).flat_map(|t| t.iter().zip(inv).map(|(v, s)| v * s)).collect();
                    &smoothed[..]
                }
                None => x.data(),
            };
            self.weights.float_gemm_group(0, xs, out.data_mut(), self.weights.outputs())?;
        } else {
            self.weights.gemm_dynamic(x.data(), self.inv_smooth.as_deref(), tokens, ctx, out.data_mut())?;
        }
        Ok(out)
    }

    fn backward(&self, _: &[&Tensor], _: &Tensor, _: &[u32], _: &mut Context) -> Result<Vec<Tensor>> {
        no_backward(self.weights.name())
    }

    fn set_width(&mut self, index: usize, width: Width) -> Result<()> {
        self.weights.set_width(index, width)
    }

    fn macs(&self, inputs: &[&[usize]]) -> u64 {
        let tokens = inputs.first().and_then(|s| self.tokens(s).ok()).unwrap_or(0);
        (tokens * self.weights.outputs() * self.weights.depth()) as u64
    }

    fn gemms(&self, inputs: &[&[usize]], width: Width) -> Vec<super::GemmShape> {
        let tokens = inputs.first().and_then(|s| self.tokens(s).ok()).unwrap_or(0);
        vec![self.weights.gemm_shape(tokens, width)]
    }

    fn param_bytes(&self, width: Width) -> usize {
        self.weights.param_bytes(width) + self.inv_smooth.as_ref().map_or(0, |s| s.len() * 4)
    }
}
