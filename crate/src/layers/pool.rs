//! Max, average and global average pooling over NHWC images.

use super::{image_dims, no_flips, single, window_out, Context, Layer};
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

    /// The in-bounds input rows `y0..y1` and columns `x0..x1` of output window (oy, ox): padding
    /// never contributes.
    fn window(&self, oy: usize, ox: usize, h: usize, w: usize) -> (usize, usize, usize, usize) {
        let y0 = (oy * self.stride[0]).saturating_sub(self.padding[0]);
        let y1 = (oy * self.stride[0] + self.kernel[0]).saturating_sub(self.padding[0]).min(h);
        let x0 = (ox * self.stride[1]).saturating_sub(self.padding[1]);
        let x1 = (ox * self.stride[1] + self.kernel[1]).saturating_sub(self.padding[1]).min(w);
        (y0, y1.max(y0), x0, x1.max(x0))
    }
}

/// `o[ch] = f(o[ch], x[ch])` over the pixels of the window `(y0, y1, x0, x1)`, row by row: plain
/// loops over slices, which cost less in wasm than a flat_map of pixel offsets.
#[inline(always)]
fn fold_window(src: &[f32], w: usize, c: usize, (y0, y1, x0, x1): (usize, usize, usize, usize), o: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    for iy in y0..y1 {
        for px in src[(iy * w + x0) * c..(iy * w + x1) * c].chunks_exact(c) {
            o.iter_mut().zip(px).for_each(|(a, &b)| *a = f(*a, b));
        }
    }
}

impl Pool {
    /// 2x2 max pooling without padding, where every window lies inside the image (`window_out`),
    /// in one pass per output pixel: four loads and maxima and one store per four channels, where
    /// the general loop fills, then loads and stores once per pixel of the window (twice the
    /// time on MNIST's pool1). The same operations in the same order, so the same values, NaN
    /// rule included.
    fn max_2x2(&self, src: &[f32], w: usize, c: usize, wo: usize, dst: &mut [f32]) {
        let [sy, sx] = self.stride;
        let f = |a: f32, b: f32| if a < b { b } else { a };
        for (oy, row) in dst.chunks_exact_mut(wo * c).enumerate() {
            for (ox, o) in row.chunks_exact_mut(c).enumerate() {
                let at = |ky: usize, kx: usize| &src[((oy * sy + ky) * w + ox * sx + kx) * c..][..c];
                let (a, b, p, q) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                for ch in 0..c {
                    o[ch] = f(f(f(f(f32::NEG_INFINITY, a[ch]), b[ch]), p[ch]), q[ch]);
                }
            }
        }
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
        if self.kind == PoolKind::Max && self.kernel == [2, 2] && self.padding == [0; 4] {
            self.max_2x2(src, w, c, wo, dst);
            return Ok(out);
        }
        for oy in 0..ho {
            for ox in 0..wo {
                let (y0, y1, x0, x1) = self.window(oy, ox, h, w);
                let o = &mut dst[(oy * wo + ox) * c..(oy * wo + ox + 1) * c];
                let count = (y1 - y0) * (x1 - x0);
                let window = (y0, y1, x0, x1);
                match self.kind {
                    // A window entirely in the padding has no value: 0 (the zeroed output).
                    PoolKind::Max if count == 0 => {}
                    PoolKind::Max => {
                        o.fill(f32::NEG_INFINITY);
                        // Not f32::max: its NaN rule keeps the loop scalar in wasm, while this
                        // form is one f32x4.pmax per four channels (a NaN input is skipped
                        // either way).
                        fold_window(src, w, c, window, o, |a, b| if a < b { b } else { a });
                    }
                    PoolKind::Avg => {
                        fold_window(src, w, c, window, o, |a, b| a + b);
                        if count > 0 {
                            let inv = count as f32;
                            o.iter_mut().for_each(|a| *a /= inv);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Max pooling passes each output's gradient to the first input holding the window's
    /// maximum; average pooling spreads it evenly over the window's in-bounds inputs.
    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], _ctx: &mut Context) -> Result<Vec<Tensor>> {
        no_flips(flip, &self.name)?;
        let x = single(inputs, &self.name)?;
        let (h, w, c, ho, wo) = self.dims(x.shape())?;
        let mut dx = Tensor::zeros(x.shape().to_vec());
        let (src, g, d) = (x.data(), grad.data(), dx.data_mut());
        for oy in 0..ho {
            for ox in 0..wo {
                let (y0, y1, x0, x1) = self.window(oy, ox, h, w);
                let count = (y1 - y0) * (x1 - x0);
                if count == 0 {
                    continue;
                }
                let go = &g[(oy * wo + ox) * c..(oy * wo + ox + 1) * c];
                match self.kind {
                    PoolKind::Max => {
                        for (ch, &g) in go.iter().enumerate() {
                            let mut best = (f32::NEG_INFINITY, None);
                            for iy in y0..y1 {
                                for ix in x0..x1 {
                                    let i = (iy * w + ix) * c + ch;
                                    if best.1.is_none() || src[i] > best.0 {
                                        best = (src[i], Some(i));
                                    }
                                }
                            }
                            if let (_, Some(i)) = best {
                                d[i] += g;
                            }
                        }
                    }
                    PoolKind::Avg => {
                        let share = 1.0 / count as f32;
                        for iy in y0..y1 {
                            for ix in x0..x1 {
                                let di = &mut d[(iy * w + ix) * c..(iy * w + ix + 1) * c];
                                di.iter_mut().zip(go).for_each(|(a, &b)| *a += b * share);
                            }
                        }
                    }
                }
            }
        }
        Ok(vec![dx])
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

    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], _ctx: &mut Context) -> Result<Vec<Tensor>> {
        no_flips(flip, &self.name)?;
        let x = single(inputs, &self.name)?;
        let (h, w, c) = image_dims(x.shape(), &self.name)?;
        let share = 1.0 / (h * w) as f32;
        let mut dx = Tensor::zeros(x.shape().to_vec());
        for px in dx.data_mut().chunks_exact_mut(c) {
            px.iter_mut().zip(grad.data()).for_each(|(a, &b)| *a = b * share);
        }
        Ok(vec![dx])
    }
}
