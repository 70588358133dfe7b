//! A shallow convolution's GEMM on `Dot16` weights without an im2col: the first layer of an image
//! model (3x3 taps of one channel, depth 9, or of three, depth 27), where the packing costs more
//! than the products.
//!
//! Through im2col, such a layer copied its image 9 times as bytes, then widened the copy into
//! Dot16's 16-deep panels: at 28x28 with 32 outputs that packing took as long as the GEMM
//! (`bench/profile.mjs`). Here the image is quantized once into a padded i16 image
//! ([`DirectActs`]), and the kernel reads it in place. Along a row of taps the depth order of a
//! convolution's weights (ky, kx, channel) is the order of the padded image's row, so an output
//! pixel's `kw * c` values of tap row `ky` lie side by side, and any two consecutive ones are one
//! 32-bit load: the pair `i32x4.dot_i16x8_s` multiplies against 4 rows' weights (the shallow
//! Dot16 kernel's step, simd128.rs). A row of an odd number of values ends in a pair whose second
//! weight is zero (what it reads is the next pixel's value). `kh * ceil(kw * c / 2)` pairs of at
//! most [`MAX_PAIRS`] per output: a 3x3 kernel of one channel takes 6 where im2col's depth takes
//! 5, and no packing at all.
//!
//! Output pixels are the GEMM's columns (no columns are wasted, unlike the window path's padded
//! rows); output rows split over threads.

use super::isa::Isa;
use core::ops::Range;
use super::window::RunThen;
use super::{dot16, job, PackedWeights, Scheme, Window};
use crate::bits::Bits;
use crate::error::{ErrorKind, Result};

/// The most i16 pairs per output pixel: 15 for a 3x3 kernel over 3 channels (an RGB image's first
/// conv). Past 8 not all of a 4-row panel's pair weight vectors stay in registers, and the
/// kernel still beats an im2col: ResNet-20's stem (32x32x3 -> 16) took 0.047 ms against 0.092
/// through im2col and Dot16 in Node (BENCHMARKS.md).
pub const MAX_PAIRS: usize = 16;

/// Pairs per tap row: `ceil(kw * c / 2)`.
pub(super) fn pairs_per_row(win: &Window) -> usize {
    (win.kw * win.c).div_ceil(2)
}

/// Whether a `kh x kw` kernel over `c` channels takes at most [`MAX_PAIRS`] pairs per output
/// pixel: the part of [`direct_fits`] a layer knows before it sees an image.
pub fn direct_kernel_fits(kh: usize, kw: usize, c: usize) -> bool {
    kh.checked_mul(kw.saturating_mul(c).div_ceil(2)).is_some_and(|p| p <= MAX_PAIRS)
}

/// Whether a convolution of a `kh x kw` kernel over `c` channels (stride and dilation 1, one
/// group: the caller's part) has its weights packed for the direct path
/// ([`best_direct_scheme`](super::best_direct_scheme)): its kernel fits, and it has more than one
/// tap (a 1x1 convolution's im2col is its input as it is: nothing for the direct path to save).
pub fn direct_conv(kh: usize, kw: usize, c: usize) -> bool {
    kh.saturating_mul(kw) > 1 && direct_kernel_fits(kh, kw, c)
}

/// Whether the direct path runs `win`: stride and dilation 1 (the caller's part), an output the
/// padded image holds, and at most [`MAX_PAIRS`] pairs per output pixel.
pub fn direct_fits(win: &Window) -> bool {
    win.c > 0
        && win.kh > 0
        && win.kw > 0
        && win.ho > 0
        && win.wo > 0
        && win.top + win.h < win.ho + win.kh
        && win.left + win.w < win.wo + win.kw
        && direct_kernel_fits(win.kh, win.kw, win.c)
}

/// A shallow convolution's input packed for the direct path, in buffers reused across calls.
#[derive(Clone, Debug, Default)]
pub struct DirectActs {
    win: Option<Window>,
    /// The padded image, `[ho + kh - 1][(wo + kw - 1) * c]` codes (zero outside the image), and
    /// one value past it, which the last pair of an odd row may read.
    image: Vec<i16>,
}

impl DirectActs {
    /// Quantizes the f32 image `x` (`[h][w][c]`) into the padded image, each value to its
    /// activation code `quant::act_code(x, clip, abits)`. On error nothing is packed.
    pub fn pack_floats(&mut self, x: &[f32], win: Window, clip: f32, abits: Bits) -> Result<()> {
        self.win = None;
        if !direct_fits(&win) {
            crate::bail!(ErrorKind::InvalidArgument, "the direct path cannot run {win:?}");
        }
        if x.len() != win.h * win.w * win.c {
            crate::bail!(ErrorKind::ShapeMismatch, "{} activations for a {}x{}x{} image", x.len(), win.h, win.w, win.c);
        }
        let row = row_len(&win);
        let Some(n) = row.checked_mul(win.ho + win.kh - 1).and_then(|n| n.checked_add(1)) else {
            crate::bail!(ErrorKind::LimitExceeded, "a {}x{}x{} image is too large for the direct path", win.h, win.w, win.c);
        };
        self.image.clear();
        self.image.resize(n, 0);
        for (iy, src) in x.chunks_exact(win.w * win.c).enumerate() {
            let at = (iy + win.top) * row + win.left * win.c;
            crate::quant::act_codes_i16(src, clip, abits, &mut self.image[at..at + src.len()]);
        }
        self.win = Some(win);
        Ok(())
    }

    /// The code sums of output row `y`'s pixels (what im2col's columns would sum to). `pixels`
    /// is scratch for a padded row's per-pixel sums over the channels.
    fn row_sums(&self, win: &Window, y: usize, sums: &mut [i32], pixels: &mut Vec<i32>) {
        let (row, c, n) = (row_len(win), win.c, sums.len());
        sums.fill(0);
        for ky in 0..win.kh {
            let src = &self.image[(y + ky) * row..(y + ky + 1) * row];
            // One shifted pass per tap of the row over contiguous values (vectorized): the
            // image's own for one channel, else the pixels' sums over their channels (an RGB
            // stem's passes per channel, strided, were 28% of the layer in Node).
            if c == 1 {
                for kx in 0..win.kw {
                    sums.iter_mut().zip(&src[kx..kx + n]).for_each(|(s, &v)| *s += v as i32);
                }
            } else {
                pixels.clear();
                pixels.extend(src.chunks_exact(c).map(|p| p.iter().map(|&v| v as i32).sum::<i32>()));
                for kx in 0..win.kw {
                    sums.iter_mut().zip(&pixels[kx..kx + n]).for_each(|(s, &v)| *s += v);
                }
            }
        }
    }
}

/// i16 values per padded image row.
fn row_len(win: &Window) -> usize {
    (win.wo + win.kw - 1) * win.c
}

/// Where each pair of an output pixel's values lies relative to the pixel's first value, in the
/// weights' depth order.
#[cfg_attr(not(all(target_arch = "wasm32", target_feature = "simd128")), allow(dead_code))]
pub(super) fn pair_offsets(win: &Window) -> Vec<usize> {
    let (row, s) = (row_len(win), pairs_per_row(win));
    (0..win.kh).flat_map(|ky| (0..s).map(move |j| ky * row + 2 * j)).collect()
}

/// The depth indices of pair `j` (its second `None` past the end of its tap row).
#[cfg_attr(not(all(target_arch = "wasm32", target_feature = "simd128")), allow(dead_code))]
pub(super) fn pair_depths(win: &Window, j: usize) -> (usize, Option<usize>) {
    let (s, run) = (pairs_per_row(win), win.kw * win.c);
    let (ky, i) = (j / s, 2 * (j % s));
    (ky * run + i, (i + 1 < run).then_some(ky * run + i + 1))
}

/// The GEMM of output rows `y0..y1`: `acc[((y - y0) * wo + x) * rows + r]`.
type RowsKernel = fn(&PackedWeights, &Window, &[i16], Range<usize>, &mut [i32]);

fn rows_kernel(isa: Isa) -> RowsKernel {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if isa != Isa::Scalar {
        return super::simd128::direct_rows;
    }
    let _ = isa;
    rows_generic
}

/// The portable kernel, which the SIMD one is tested against: weight `(r, k)` read from the
/// Dot16 panels, value `k` of pixel `x` from the padded image.
pub(super) fn rows_generic(w: &PackedWeights, win: &Window, image: &[i16], ys: Range<usize>, acc: &mut [i32]) {
    let wd = w.data::<i16>();
    let kcs = dot16::padded_depth(w.depth) / dot16::KB;
    let weight = |r: usize, k: usize| wd[((r / dot16::MR) * kcs + k / dot16::KB) * dot16::STEP + (r % dot16::MR) * dot16::KB + k % dot16::KB] as i32;
    let (row, run) = (row_len(win), win.kw * win.c);
    for (y, acc) in ys.zip(acc.chunks_exact_mut(win.wo * w.rows)) {
        for (x, px) in acc.chunks_exact_mut(w.rows).enumerate() {
            for (r, a) in px.iter_mut().enumerate() {
                let mut s = 0;
                for ky in 0..win.kh {
                    let src = &image[(y + ky) * row + x * win.c..][..run];
                    s += src.iter().enumerate().map(|(i, &v)| weight(r, ky * run + i) * v as i32).sum::<i32>();
                }
                *a = s;
            }
        }
    }
}

/// Checks `w` against a pack for `win`: Dot16 weights of its depth.
fn check(w: &PackedWeights, win: &Window) -> Result<()> {
    if w.scheme != Scheme::Dot16 {
        crate::bail!(ErrorKind::InvalidArgument, "the direct path runs Dot16 weights, not {}", w.scheme.name());
    }
    if w.depth != win.depth() {
        crate::bail!(ErrorKind::ShapeMismatch, "weights of depth {} for a window of depth {}", w.depth, win.depth());
    }
    Ok(())
}

/// The direct path's counterpart of [`window_gemm_then`](super::window_gemm_then): the GEMM of
/// `w` on the image `acts` holds, `out` as scratch for the accumulators (`rows` per output
/// pixel), and `then(p0, acc, sums, part)` right after each output row's GEMM, `p0` its first
/// pixel, `part` what `part(p0, p1)` returned for its pixels (called first, for every row in
/// order, on this thread). Output rows split over `threads` threads.
pub fn direct_gemm_then<P: Send>(
    isa: Isa,
    w: &PackedWeights,
    acts: &DirectActs,
    out: &mut [i32],
    threads: usize,
    mut part: impl FnMut(usize, usize) -> P,
    then: &RunThen<'_, P>,
) -> Result<()> {
    let Some(win) = acts.win else {
        crate::bail!(ErrorKind::InvalidArgument, "activations were not packed for the direct path");
    };
    check(w, &win)?;
    let pixels = win.ho * win.wo;
    let Some(out) = super::output(out, w.rows, pixels)? else { return Ok(()) };
    let threads = job::split_threads(w, pixels, Bits::new(8)?, threads);
    let kernel = rows_kernel(isa);
    let rows = w.rows;
    let mut rest = out;
    let parts: Vec<_> = job::column_blocks(win.ho, 1, threads)
        .map(|(y0, y1)| {
            let (acc, tail) = std::mem::take(&mut rest).split_at_mut((y1 - y0) * win.wo * rows);
            rest = tail;
            let runs: Vec<P> = (y0..y1).map(|y| part(y * win.wo, (y + 1) * win.wo)).collect();
            (y0..y1, acc, runs)
        })
        .collect();
    let one = |(ys, acc, runs): (Range<usize>, &mut [i32], Vec<P>)| {
        kernel(w, &win, &acts.image, ys.clone(), acc);
        let (mut sums, mut pixels) = (vec![0i32; win.wo], Vec::new());
        for ((y, acc), p) in ys.zip(acc.chunks_exact(win.wo * rows)).zip(runs) {
            acts.row_sums(&win, y, &mut sums, &mut pixels);
            then(y * win.wo, acc, &sums, p);
        }
    };
    job::run_parts(parts, threads, &one);
    Ok(())
}
