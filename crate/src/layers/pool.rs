//! Max, average and global average pooling over NHWC images.

use super::{image_dims, single, window_out, Context, Layer};
use crate::error::Result;
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    /// Averages only the in-bounds positions of each window.
    Avg,
}

pub struct Pool {
    pub name: String,
    pub kind: PoolKind,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// [top, left, bottom, right]
    pub padding: [usize; 4],
}

impl Pool {
    fn dims(&self, shape: &[usize]) -> Result<(usize, usize, usize, usize, usize)> {
        let (h, w, c) = image_dims(shape, &self.name)?;
        let [pt, pl, pb, pr] = self.padding;
        let ho = window_out(h, pt, pb, self.kernel[0], self.stride[0], 1, &self.name)?;
        let wo = window_out(w, pl, pr, self.kernel[1], self.stride[1], 1, &self.name)?;
        Ok((h, w, c, ho, wo))
    }
}

impl Layer for Pool {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let (_, _, c, ho, wo) = self.dims(single(inputs, &self.name)?)?;
        Ok(vec![ho, wo, c])
    }

    fn forward(&self, inputs: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        let x = single(inputs, &self.name)?;
        let (h, w, c, ho, wo) = self.dims(x.shape())?;
        let mut out = Tensor::zeros(vec![ho, wo, c]);
        let (src, dst) = (x.data(), out.data_mut());
        let init = match self.kind {
            PoolKind::Max => f32::NEG_INFINITY,
            PoolKind::Avg => 0.0,
        };
        for oy in 0..ho {
            // Window bounds clipped to the image; padding never contributes.
            let y0 = (oy * self.stride[0]).saturating_sub(self.padding[0]);
            let y1 = (oy * self.stride[0] + self.kernel[0]).saturating_sub(self.padding[0]).min(h);
            for ox in 0..wo {
                let x0 = (ox * self.stride[1]).saturating_sub(self.padding[1]);
                let x1 = (ox * self.stride[1] + self.kernel[1]).saturating_sub(self.padding[1]).min(w);
                let o = &mut dst[(oy * wo + ox) * c..(oy * wo + ox + 1) * c];
                o.fill(init);
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let i = &src[(iy * w + ix) * c..(iy * w + ix + 1) * c];
                        match self.kind {
                            PoolKind::Max => o.iter_mut().zip(i).for_each(|(a, &b)| *a = a.max(b)),
                            PoolKind::Avg => o.iter_mut().zip(i).for_each(|(a, &b)| *a += b),
                        }
                    }
                }
                let count = (y1.saturating_sub(y0) * x1.saturating_sub(x0)) as f32;
                match self.kind {
                    // A window entirely in the padding has no value; 0 rather than -inf.
                    PoolKind::Max if count == 0.0 => o.fill(0.0),
                    PoolKind::Avg if count > 0.0 => o.iter_mut().for_each(|a| *a /= count),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

/// Mean over height and width: [h, w, c] -> [1, 1, c].
pub struct GlobalAvgPool {
    pub name: String,
}

impl Layer for GlobalAvgPool {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let (_, _, c) = image_dims(single(inputs, &self.name)?, &self.name)?;
        Ok(vec![1, 1, c])
    }

    fn forward(&self, inputs: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        let x = single(inputs, &self.name)?;
        let (h, w, c) = image_dims(x.shape(), &self.name)?;
        let mut out = Tensor::zeros(vec![1, 1, c]);
        let o = out.data_mut();
        for px in x.data().chunks_exact(c) {
            o.iter_mut().zip(px).for_each(|(a, &b)| *a += b);
        }
        let n = (h * w) as f32;
        o.iter_mut().for_each(|a| *a /= n);
        Ok(out)
    }
}
