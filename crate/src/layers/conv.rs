//! 2-D convolution on NHWC images via im2col on activation codes and the integer GEMM.

use super::quantized::Path;
use super::{gate_grad, image_dims, single, window_out, ChannelAffine, Context, Layer, QuantWeights};
use crate::error::{ErrorKind, Result};
use crate::format::Width;
use crate::kernels::{self, Scheme, Window};
use crate::tensor::Tensor;

/// An image's and its output's size: (h, w, channels, ho, wo).
type Dims = (usize, usize, usize, usize, usize);

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
        mut weights: QuantWeights,
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
        let unit = stride == [1, 1] && dilation == [1, 1] && weights.groups() == 1;
        weights.set_direct(unit && crate::kernels::direct_conv(kernel[0], kernel[1], in_per_group));
        Ok(Conv2d { weights, kernel, stride, padding, dilation, in_per_group })
    }

    fn out_dims(&self, shape: &[usize]) -> Result<Dims> {
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

    /// Calls `f(column, tap, pixel)` for every in-bounds tap of group `g`: the window of output
    /// `column` reads input channels `pixel..pixel + cin_g` into `tap..tap + cin_g` of its column
    /// ([ho*wo][kh*kw*cin_g]). Taps reaching into the padding are skipped (they hold the value 0).
    /// One walk serves im2col (forward) and its transpose (backward).
    fn taps(&self, g: usize, dims: Dims, mut f: impl FnMut(usize, usize, usize)) {
        let (h, w, c, ho, wo) = dims;
        let [kh, kw] = self.kernel;
        let cg = self.in_per_group;
        for oy in 0..ho {
            for ox in 0..wo {
                for ky in 0..kh {
                    let iy = (oy * self.stride[0] + ky * self.dilation[0]) as isize - self.padding[0] as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * self.stride[1] + kx * self.dilation[1]) as isize - self.padding[1] as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        f(oy * wo + ox, (ky * kw + kx) * cg, (iy as usize * w + ix as usize) * c + g * cg);
                    }
                }
            }
        }
    }

    /// im2col of group `g`: `src` (the image, codes or values) into `dst` as [ho*wo][kh*kw*cin_g],
    /// zero where the window reaches into the padding (the code 0 stands for the value 0).
    fn im2col<T: Copy + Default>(&self, g: usize, dims: Dims, src: &[T], dst: &mut Vec<T>) {
        let (_, _, _, ho, wo) = dims;
        let n = ho * wo * self.weights.depth();
        if dst.len() != n {
            dst.resize(n, T::default());
        }
        self.im2col_cols(g, dims, src, dst, 0, ho * wo);
    }

    /// Columns (output pixels) `p0..p1` of [`im2col`](Self::im2col) into `dst` (those columns
    /// only): a column block of a GEMM, written by the thread that packs and multiplies it.
    /// Kernel row by kernel row over the output rows, with each tap's in-bounds output columns
    /// worked out once: a first conv reads one channel per tap, where a call per tap (`taps`)
    /// would cost more than the copy. Where a kernel row's taps are adjacent in the image and in
    /// the column (stride and dilation 1 across, one group), a pixel whose whole kernel row lies
    /// inside the image takes it as one run of `kw * c` values: a 3x3 conv makes a third of the
    /// copies, each of which is otherwise one tap's channels (16 values in a ResNet's first
    /// stage, no longer than the loop around them).
    fn im2col_cols<T: Copy + Default>(&self, g: usize, dims: Dims, src: &[T], dst: &mut [T], p0: usize, p1: usize) {
        let (h, w, c, ho, wo) = dims;
        let [kh, kw] = self.kernel;
        let (cg, depth) = (self.in_per_group, self.weights.depth());
        let ([sy, sx], [dy, dx], [py, px]) = (self.stride, self.dilation, [self.padding[0], self.padding[1]]);
        dst.fill(T::default());
        let taps_x: Vec<(usize, usize)> = (0..kw).map(|kx| in_bounds(wo, w, sx, kx * dx, px)).collect();
        // Output columns whose every tap of a kernel row is inside the image, when those taps
        // are one run (else none).
        let (ia, ib) = match (taps_x.first(), taps_x.last()) {
            (Some(&(a, _)), Some(&(_, b))) if sx == 1 && dx == 1 && cg == c && kw > 1 && a < b => (a, b),
            _ => (0, 0),
        };
        for ky in 0..kh {
            let (y0, y1) = in_bounds(ho, h, sy, ky * dy, py);
            // The output rows this block touches: the first and last may be partial.
            for oy in y0.max(p0 / wo)..y1.min(p1.div_ceil(wo)) {
                let row = oy * wo;
                // This block's output columns of the row.
                let (ra, rb) = (p0.saturating_sub(row), (p1 - row).min(wo));
                let iy = oy * sy + ky * dy - py;
                // This block's whole-row runs of the row (an empty range where there are none).
                let ja = ia.max(ra);
                let jb = ib.min(rb).max(ja);
                // `xa..xb` of one tap's in-bounds columns, one column (depth apart) each: no
                // index arithmetic or bounds check per pixel.
                let tap_run = |dst: &mut [T], kx: usize, xa: usize, xb: usize| {
                    if xa >= xb {
                        return;
                    }
                    let tap = (ky * kw + kx) * cg;
                    let ix = xa * sx + kx * dx - px;
                    let from = &src[(iy * w + ix) * c + g * cg..];
                    let at = &mut dst[(row + xa - p0) * depth + tap..];
                    if cg == 1 {
                        // One value per pixel (a first conv on a grey image): a strided gather.
                        for (d, s) in at.iter_mut().step_by(depth).zip(from.iter().step_by(sx * c)).take(xb - xa) {
                            *d = *s;
                        }
                        return;
                    }
                    for (d, s) in at.chunks_mut(depth).zip(from.chunks(sx * c)).take(xb - xa) {
                        copy_run(&mut d[..cg], &s[..cg]);
                    }
                };
                for (kx, &(x0, x1)) in taps_x.iter().enumerate() {
                    let (xa, xb) = (x0.max(ra), x1.min(rb));
                    // Around the whole-row runs `ja..jb`.
                    tap_run(dst, kx, xa, xb.min(ja).max(xa));
                    tap_run(dst, kx, xa.max(jb), xb);
                }
                if ja < jb {
                    let run = kw * c;
                    let from = &src[(iy * w + ja - px) * c..];
                    let at = &mut dst[(row + ja - p0) * depth + ky * run..];
                    // Pixel after pixel, the run moves on by one pixel (c values).
                    for (d, s) in at.chunks_mut(depth).zip(from.windows(run).step_by(c)).take(jb - ja) {
                        copy_run(&mut d[..run], s);
                    }
                }
            }
        }
    }

    /// This convolution's geometry for a path without im2col (`kernels::Window`), where it has
    /// one: stride and dilation 1, one group.
    fn geometry(&self, dims: Dims) -> Option<Window> {
        let (h, w, c, ho, wo) = dims;
        if self.stride != [1, 1] || self.dilation != [1, 1] || self.weights.groups() != 1 {
            return None;
        }
        let [kh, kw] = self.kernel;
        Some(Window { h, w, c, kh, kw, top: self.padding[0], left: self.padding[1], ho, wo })
    }

    /// How this convolution runs at the current width without an im2col, if it can: the window
    /// path on Lut or Dot8, the direct path on Dot16 for a shallow one (a first layer).
    fn path(&self, dims: Dims, ctx: &Context) -> Option<(Window, Path)> {
        let win = self.geometry(dims).filter(|_| ctx.window_convs)?;
        if self.weights.window_scheme(&win).is_some() {
            Some((win, Path::Window))
        } else if kernels::direct_fits(&win) && self.weights.runs_on(Scheme::Dot16) {
            Some((win, Path::Direct))
        } else {
            None
        }
    }

    /// The forward pass, with `affine` (the next layer's, [`Layer::forward_affine`]) applied to
    /// the output in the dequantization epilogue.
    fn forward_then(&self, inputs: &[&Tensor], affine: Option<ChannelAffine<'_>>, ctx: &mut Context) -> Result<Tensor> {
        let x = single(inputs, self.weights.name())?;
        let dims = self.out_dims(x.shape())?;
        let (_, _, _, ho, wo) = dims;
        let m = self.weights.outputs();
        let mut out = Tensor::zeros(vec![ho, wo, m]);
        if ctx.twin {
            let xc = self.weights.clamp_input(x.data())?;
            let mut cols = Vec::new();
            for g in 0..self.weights.groups() {
                self.im2col(g, dims, &xc, &mut cols);
                self.weights.float_gemm_group(g, &cols, out.data_mut(), m)?;
            }
            if let Some(f) = affine {
                out.data_mut().chunks_exact_mut(m).for_each(|px| f.apply(px));
            }
            return Ok(out);
        }
        if let Some((win, path)) = self.path(dims, ctx) {
            self.weights.gemm_conv(x.data(), win, path, ctx, out.data_mut(), affine)?;
            return Ok(out);
        }
        self.weights.quantize_input(x.data(), ctx)?;
        // The im2col runs column block by column block inside the GEMM's fork, each block on the
        // thread that packs and multiplies it.
        let codes = std::mem::take(&mut ctx.input_codes);
        let mut done = Ok(());
        for g in 0..self.weights.groups() {
            let fill = |p0: usize, p1: usize, dst: &mut [u8]| self.im2col_cols(g, dims, &codes, dst, p0, p1);
            done = self.weights.gemm_group(g, ho * wo, ctx, out.data_mut(), m, affine, Some(&fill));
            if done.is_err() {
                break;
            }
        }
        ctx.input_codes = codes;
        done.map(|()| out)
    }

}

/// `dst.copy_from_slice(src)` for one tap's channels, in 16-element pieces where it can: a copy of
/// a length known only at run time is a `memcpy` call per tap and pixel in wasm, while a fixed
/// 16-element one is inlined as a few vector moves.
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    let mut d = dst.chunks_exact_mut(16);
    let mut s = src.chunks_exact(16);
    for (d, s) in (&mut d).zip(&mut s) {
        d.copy_from_slice(s);
    }
    // The rest (all of it for an image's 3 channels) element by element: LLVM makes a longer
    // copy loop a `memcpy` call again.
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// The outputs `o0..o1` (of `outs`) whose input position `o * stride + offset - pad` lies in
/// `0..len`.
fn in_bounds(outs: usize, len: usize, stride: usize, offset: usize, pad: usize) -> (usize, usize) {
    let first = pad.saturating_sub(offset).div_ceil(stride);
    // Largest o with o * stride + offset <= len - 1 + pad.
    let last = match (len + pad).checked_sub(offset + 1) {
        Some(room) => (room / stride + 1).min(outs),
        None => 0,
    };
    (first.min(last), last)
}

impl Layer for Conv2d {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let (_, _, _, ho, wo) = self.out_dims(single(inputs, self.weights.name())?)?;
        Ok(vec![ho, wo, self.weights.outputs()])
    }

    fn forward(&self, inputs: &[&Tensor], ctx: &mut Context) -> Result<Tensor> {
        self.forward_then(inputs, None, ctx)
    }

    fn forward_affine(&self, inputs: &[&Tensor], affine: ChannelAffine<'_>, ctx: &mut Context) -> Option<Result<Tensor>> {
        (affine.channels() == self.weights.outputs()).then(|| self.forward_then(inputs, Some(affine), ctx))
    }

    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], _ctx: &mut Context) -> Result<Vec<Tensor>> {
        let x = single(inputs, self.weights.name())?;
        let dims = self.out_dims(x.shape())?;
        let (_, _, _, ho, wo) = dims;
        let (m, cg, depth) = (self.weights.outputs(), self.in_per_group, self.weights.depth());
        let mut dx = Tensor::zeros(x.shape().to_vec());
        let mut dcols = vec![0.0f32; ho * wo * depth];
        for g in 0..self.weights.groups() {
            dcols.fill(0.0);
            self.weights.backward_group(g, grad.data(), m, &mut dcols)?;
            let d = dx.data_mut();
            self.taps(g, dims, |col, tap, pixel| {
                let at = col * depth + tap;
                d[pixel..pixel + cg].iter_mut().zip(&dcols[at..at + cg]).for_each(|(a, &b)| *a += b);
            });
        }
        gate_grad(x.data(), self.gate().unwrap_or((0.0, 0.0)), flip, dx.data_mut())?;
        Ok(vec![dx])
    }

    fn gate(&self) -> Option<(f32, f32)> {
        self.weights.clip().map(|c| (0.0, c))
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
            Some(Ok(dims)) => {
                let mut g = self.weights.gemm_shape(dims.3 * dims.4, width);
                let scheme = self.weights.scheme(g.wbits, g.abits);
                g.window = self.geometry(dims).filter(|w| w.fits(scheme, g.abits)).map(|w| (w, scheme));
                vec![g]
            }
            _ => Vec::new(),
        }
    }

    fn param_bytes(&self, width: Width) -> usize {
        self.weights.param_bytes(width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Precision;
    use crate::layers::WidthParams;

    fn conv(k: [usize; 2], stride: [usize; 2], padding: [usize; 4], dilation: [usize; 2], cin: usize, groups: usize) -> Conv2d {
        let depth = k[0] * k[1] * (cin / groups);
        let p = WidthParams { wscale: 1.0, clip: 1.0, bias: None, row_scales: None };
        let q = QuantWeights::new("c", vec![0; 2 * groups * depth], groups, 2, depth, Precision::Model, vec![p]).unwrap();
        Conv2d::new(q, k, stride, padding, dilation, cin / groups).unwrap()
    }

    /// Column blocks of the im2col (a GEMM's blocks, written by the threads that multiply them)
    /// start and end anywhere in an output row; together they are the whole im2col.
    #[test]
    fn im2col_by_column_blocks_is_the_whole_im2col() {
        let cases = [
            (conv([3, 3], [1, 1], [1; 4], [1, 1], 1, 1), [7, 5, 1]),
            (conv([3, 3], [2, 2], [1, 0, 2, 1], [1, 1], 3, 1), [9, 8, 3]),
            (conv([3, 2], [1, 2], [2; 4], [2, 1], 4, 2), [6, 7, 4]),
            (conv([1, 1], [1, 1], [0; 4], [1, 1], 17, 1), [3, 5, 17]),
            (conv([3, 3], [3, 3], [2; 4], [1, 1], 2, 1), [2, 3, 2]),
            // Whole kernel rows as one run (stride and dilation 1 across, one group): an image
            // wider than the kernel, one narrower, no padding, wide asymmetric padding, 5 wide.
            (conv([3, 3], [1, 1], [1; 4], [1, 1], 16, 1), [6, 9, 16]),
            (conv([3, 3], [1, 1], [1; 4], [1, 1], 3, 1), [4, 2, 3]),
            (conv([3, 3], [2, 1], [0; 4], [1, 1], 5, 1), [7, 6, 5]),
            (conv([2, 5], [1, 1], [0, 1, 3, 0], [3, 1], 2, 1), [8, 10, 2]),
            (conv([3, 3], [1, 1], [1; 4], [1, 1], 4, 2), [5, 6, 4]),
        ];
        for (ci, (conv, shape)) in cases.iter().enumerate() {
            let dims = conv.out_dims(shape).unwrap();
            let (h, w, c, ho, wo) = dims;
            let src: Vec<u8> = (0..h * w * c).map(|i| (i * 7 % 251 + 1) as u8).collect();
            let depth = conv.weights.depth();
            for g in 0..conv.weights.groups() {
                let mut whole = Vec::new();
                conv.im2col(g, dims, &src, &mut whole);
                // Against the element-by-element walk the backward pass uses.
                let mut reference = vec![0u8; ho * wo * depth];
                conv.taps(g, dims, |col, tap, at| {
                    let cg = conv.in_per_group;
                    reference[col * depth + tap..][..cg].copy_from_slice(&src[at..at + cg]);
                });
                assert_eq!(whole, reference, "case {ci}, group {g}: im2col against the tap walk");
                let cols = ho * wo;
                for step in 1..=cols {
                    // Blocks of `step` columns, the buffer poisoned in between.
                    let mut got = vec![0xAA; cols * depth];
                    for (i, block) in got.chunks_mut(step * depth).enumerate() {
                        let p0 = i * step;
                        conv.im2col_cols(g, dims, &src, block, p0, p0 + block.len() / depth);
                    }
                    assert_eq!(got, whole, "case {ci}, group {g}, blocks of {step} columns ({ho}x{wo} output)");
                }
            }
        }
    }
}
