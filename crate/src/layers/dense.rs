//! Fully connected layer: flattens its input (H, W, C order) and runs the integer GEMM.

use super::{gate_grad, single, ChannelAffine, Context, Layer, QuantWeights};
use crate::error::{ErrorKind, Result};
use crate::format::Width;
use crate::tensor::{numel, Tensor};

pub struct Dense {
    pub weights: QuantWeights,
}

impl Dense {
    pub fn new(weights: QuantWeights) -> Result<Self> {
        if weights.groups() != 1 {
            crate::bail!(ErrorKind::BadShape, "{}: dense layers have one group", weights.name());
        }
        Ok(Dense { weights })
    }
}

impl Dense {
    /// The forward pass, with `affine` (the next layer's, [`Layer::forward_affine`]) applied to
    /// the output in the dequantization epilogue.
    fn forward_then(&self, inputs: &[&Tensor], affine: Option<ChannelAffine<'_>>, ctx: &mut Context) -> Result<Tensor> {
        let x = single(inputs, self.weights.name())?;
        let out_shape = self.output_shape(&[x.shape()])?;
        let mut out = Tensor::zeros(out_shape);
        let m = self.weights.outputs();
        if ctx.twin {
            let xc = self.weights.clamp_input(x.data())?;
            self.weights.float_gemm_group(0, &xc, out.data_mut(), m)?;
            if let Some(f) = affine {
                f.apply(out.data_mut());
            }
            return Ok(out);
        }
        self.weights.quantize_input(x.data(), ctx)?;
        let Context { input_codes, col_codes, .. } = ctx;
        std::mem::swap(input_codes, col_codes);
        self.weights.gemm_group(0, 1, ctx, out.data_mut(), m, affine, None)?;
        Ok(out)
    }
}

impl Layer for Dense {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let shape = single(inputs, self.weights.name())?;
        if numel(shape) != Some(self.weights.depth()) {
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "{}: expects {} inputs, got shape {shape:?}",
                self.weights.name(),
                self.weights.depth()
            );
        }
        Ok(vec![self.weights.outputs()])
    }

    fn forward(&self, inputs: &[&Tensor], ctx: &mut Context) -> Result<Tensor> {
        self.forward_then(inputs, None, ctx)
    }

    fn forward_affine(&self, inputs: &[&Tensor], affine: ChannelAffine<'_>, ctx: &mut Context) -> Option<Result<Tensor>> {
        (affine.channels() == self.weights.outputs()).then(|| self.forward_then(inputs, Some(affine), ctx))
    }

    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], _ctx: &mut Context) -> Result<Vec<Tensor>> {
        let x = single(inputs, self.weights.name())?;
        self.output_shape(&[x.shape()])?;
        let mut dx = Tensor::zeros(x.shape().to_vec());
        self.weights.backward_group(0, grad.data(), self.weights.outputs(), dx.data_mut())?;
        gate_grad(x.data(), self.gate().unwrap_or((0.0, 0.0)), flip, dx.data_mut())?;
        Ok(vec![dx])
    }

    fn gate(&self) -> Option<(f32, f32)> {
        self.weights.clip().map(|c| (0.0, c))
    }

    fn set_width(&mut self, index: usize, width: Width) -> Result<()> {
        self.weights.set_width(index, width)
    }

    fn macs(&self, _inputs: &[&[usize]]) -> u64 {
        self.weights.outputs() as u64 * self.weights.depth() as u64
    }

    fn gemms(&self, _inputs: &[&[usize]], width: Width) -> Vec<super::GemmShape> {
        vec![self.weights.gemm_shape(1, width)]
    }

    fn param_bytes(&self, width: Width) -> usize {
        self.weights.param_bytes(width)
    }
}
