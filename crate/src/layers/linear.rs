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
}

impl Linear {
    pub fn new(weights: QuantWeights) -> Result<Self> {
        if weights.groups() != 1 {
            crate::bail!(ErrorKind::BadShape, "{}: linear layers have one group", weights.name());
        }
        Ok(Linear { weights })
    }

    /// Tokens of an input shape `[tokens, in]` or `[in]` (one token).
    fn tokens(&self, shape: &[usize]) -> Result<usize> {
        match shape {
            &[t, d] if d == self.weights.depth() && t > 0 => Ok(t),
            &[d] if d == self.weights.depth() => Ok(1),
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
            self.weights.float_gemm_group(0, x.data(), out.data_mut(), self.weights.outputs())?;
        } else {
            self.weights.gemm_dynamic(x.data(), tokens, ctx, out.data_mut())?;
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
        self.weights.param_bytes(width)
    }
}
