//! 2-D convolution on NHWC images via im2col on activation codes and the integer GEMM.

use super::{image_dims, single, window_out, Context, Layer, QuantWeights};
use crate::error::{ErrorKind, Result};
use crate::format::Width;
use crate::tensor::Tensor;

pub struct Conv2d {
    pub weights: QuantWeights,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// [top, left, bottom, right]
    pub padding: [usize; 4],
    pub dilation: [usize; 2],
    /// Input channels per group (the weight's last dimension).
    pub in_per_group: usize,
}

impl Conv2d {
    pub fn new(
        weights: QuantWeights,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 4],
        dilation: [usize; 2],
        in_per_group: usize,
    ) -> Result<Self> {
        let depth = kernel[0].checked_mul(kernel[1]).and_then(|k| k.checked_mul(in_per_group));
        if depth != Some(weights.depth()) || stride.contains(&0) || dilation.contains(&0) {
            crate::bail!(
                ErrorKind::BadShape,
                "{}: kernel {kernel:?} x {in_per_group} inputs does not match depth {}, or a zero stride/dilation",
                weights.name(),
                weights.depth()
            );
        }
        Ok(Conv2d { weights, kernel, stride, padding, dilation, in_per_group })
    }

    fn out_dims(&self, shape: &[usize]) -> Result<(usize, usize, usize, usize, usize)> {
        let name = self.weights.name();
        let (h, w, c) = image_dims(shape, name)?;
        if c != self.in_per_group * self.weights.groups() {
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "{name}: expects {} input channels, got {c}",
                self.in_per_group * self.weights.groups()
            );
        }
        let [pt, pl, pb, pr] = self.padding;
        let ho = window_out(h, pt, pb, self.kernel[0], self.stride[0], self.dilation[0], name)?;
        let wo = window_out(w, pl, pr, self.kernel[1], self.stride[1], self.dilation[1], name)?;
        Ok((h, w, c, ho, wo))
    }

    /// Gathers the activation codes of group `g` into `ctx.col_codes` as [ho*wo][kh*kw*cin_g],
    /// with zero codes (= the value 0) where the window reaches into the padding.
    fn im2col(&self, g: usize, dims: (usize, usize, usize, usize, usize), ctx: &mut Context) {
        let (h, w, c, ho, wo) = dims;
        let [kh, kw] = self.kernel;
        let cg = self.in_per_group;
        let depth = self.weights.depth();
        let Context { input_codes, col_codes, .. } = ctx;
        col_codes.clear();
        col_codes.resize(ho * wo * depth, 0);
        for oy in 0..ho {
            for ox in 0..wo {
                let col = &mut col_codes[(oy * wo + ox) * depth..(oy * wo + ox + 1) * depth];
                for ky in 0..kh {
                    let iy = (oy * self.stride[0] + ky * self.dilation[0]) as isize
                        - self.padding[0] as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * self.stride[1] + kx * self.dilation[1]) as isize
                            - self.padding[1] as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        let src = (iy as usize * w + ix as usize) * c + g * cg;
                        let dst = (ky * kw + kx) * cg;
                        col[dst..dst + cg].copy_from_slice(&input_codes[src..src + cg]);
                    }
                }
            }
        }
    }
}

impl Layer for Conv2d {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let (_, _, _, ho, wo) = self.out_dims(single(inputs, self.weights.name())?)?;
        Ok(vec![ho, wo, self.weights.outputs()])
    }

    fn forward(&self, inputs: &[&Tensor], ctx: &mut Context) -> Result<Tensor> {
        let x = single(inputs, self.weights.name())?;
        let dims = self.out_dims(x.shape())?;
        let (_, _, _, ho, wo) = dims;
        let m = self.weights.outputs();
        let mut out = Tensor::zeros(vec![ho, wo, m]);
        self.weights.quantize_input(x.data(), ctx)?;
        for g in 0..self.weights.groups() {
            self.im2col(g, dims, ctx);
            self.weights.gemm_group(g, ho * wo, ctx, out.data_mut(), m)?;
        }
        Ok(out)
    }

    fn set_width(&mut self, index: usize, width: Width) -> Result<()> {
        self.weights.set_width(index, width)
    }

    fn macs(&self, inputs: &[&[usize]]) -> u64 {
        match inputs.first().map(|s| self.out_dims(s)) {
            Some(Ok((_, _, _, ho, wo))) => {
                (ho * wo) as u64 * self.weights.outputs() as u64 * self.weights.depth() as u64
            }
            _ => 0,
        }
    }

    fn gemms(&self, inputs: &[&[usize]], width: Width) -> Vec<super::GemmShape> {
        match inputs.first().map(|s| self.out_dims(s)) {
            Some(Ok((_, _, _, ho, wo))) => vec![self.weights.gemm_shape(ho * wo, width)],
            _ => Vec::new(),
        }
    }

    fn param_bytes(&self, width: Width) -> usize {
        self.weights.param_bytes(width)
    }
}
