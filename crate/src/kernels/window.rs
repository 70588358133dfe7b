//! A stride-1 convolution's GEMM on the `Lut` or `Dot8` scheme without an im2col.
//!
//! `Lut` reads activations as index vectors: 16 columns' nibbles of one group of 4 depths, for one
//! bit plane (lut.rs). In a convolution with stride and dilation 1 and one group, whose input
//! channels come in whole groups of 4, a group is 4 channels of one tap, and the nibble of output
//! pixel `(y, x)` at tap `(ky, kx)` is the nibble of input pixel `(y + ky, x + kx)` of the padded
//! image. So the input is packed once, as nibble planes over the padded image (one per bit plane
//! and channel group, [`WindowActs`]), and every index vector of the GEMM is one 16-byte load from
//! them at an offset fixed per group: no im2col (which copies the input kh * kw times) and no
//! per-column packing.
//!
//! The price: the GEMM's columns run along the padded rows, `wo + kw - 1` per output row, and the
//! last `kw - 1` of each row are no pixel; their results are dropped before the epilogue
//! (7% more columns at 28x28, 29% at 7x7, where Lut's 16-column granule pads 49 to 64 anyway).
//!
//! `Dot8` reads a column as 16-byte vectors of codes along depth (dot8.rs). With channels in
//! whole groups of 16, each vector is 16 channels of one tap, which are 16 contiguous codes of
//! one input pixel: the input is packed once as the padded image of codes (`[position][c]`
//! bytes), and the GEMM loads each vector from it at an offset fixed per depth chunk, where the
//! im2col path copied the image 9 times and then interleaved it into panels (a third of
//! ResNet-20's pass at 8 bits in Chromium).

use super::acts::ActsView;
use super::isa::Isa;
use super::packed::{check_codes, Elem};
use super::{dot8, job, lut, PackedWeights, Scheme};
use core::ops::Range;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

use crate::bits::Bits;
use crate::error::{ErrorKind, Result};

/// The geometry of a convolution the window path runs: stride and dilation 1, one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// The input image: rows, columns, channels (NHWC, one image).
    pub h: usize,
    pub w: usize,
    pub c: usize,
    /// Kernel rows and columns.
    pub kh: usize,
    pub kw: usize,
    /// Padding above and left of the image (below and right follow from `ho` and `wo`).
    pub top: usize,
    pub left: usize,
    /// Output rows and columns.
    pub ho: usize,
    pub wo: usize,
}

/// Channels per index nibble (`Lut`) or per byte vector (`Dot8`): the window path's schemes.
fn channel_group(scheme: Scheme) -> Option<usize> {
    match scheme {
        Scheme::Lut => Some(lut::GROUP),
        Scheme::Dot8 => Some(dot8::KB),
        Scheme::Dot16 | Scheme::BitSerial => None,
    }
}

impl Window {
    /// Whether the window path can run this geometry on `scheme` at `abits`: channels in whole
    /// groups of 4 (`Lut`) or 16 (`Dot8`, whose activations must then be one plane: dot8.rs),
    /// and an output that the padded image holds (`ho + kh - 1` rows of `wo + kw - 1`, the image
    /// inside them).
    pub fn fits(&self, scheme: Scheme, abits: Bits) -> bool {
        let Some(group) = channel_group(scheme) else { return false };
        (scheme != Scheme::Dot8 || dot8::act_planes(abits.get()) == 1)
            && self.c > 0
            && self.c % group == 0
            && self.kh > 0
            && self.kw > 0
            && self.ho > 0
            && self.wo > 0
            && self.top + self.h < self.ho + self.kh
            && self.left + self.w < self.wo + self.kw
    }

    /// GEMM depth: taps times channels, in the order of a convolution's weights (ky, kx, channel).
    pub fn depth(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// Row pitch of the padded image, and of the GEMM's columns.
    pub fn pitch(&self) -> usize {
        self.wo + self.kw - 1
    }

    /// GEMM columns: `ho` rows of [`pitch`](Self::pitch) columns, of which the first `wo` are
    /// output pixels.
    pub fn columns(&self) -> usize {
        self.ho * self.pitch()
    }

    /// The output pixel of GEMM column `q`, or of the next column that is one.
    pub fn pixel(&self, q: usize) -> usize {
        let p = self.pitch();
        (q / p) * self.wo + (q % p).min(self.wo)
    }

    /// Positions of one plane: the padded image and, past it, what the last groups' loads read
    /// for columns that are no pixel (up to `kw - 1` taps across and a 16-lane granule). A
    /// `Lut` nibble plane has a byte per position, a `Dot8` image `c`.
    pub(super) fn plane_len(&self) -> usize {
        (self.ho + self.kh - 1) * self.pitch() + self.kw + lut::LANES
    }

    /// Heap bytes of a [`WindowActs`] packed for this window at `abits` on `scheme` (its
    /// buffers at this size).
    pub fn acts_bytes(&self, abits: Bits, scheme: Scheme) -> usize {
        let len = self.plane_len();
        let group = channel_group(scheme).unwrap_or(lut::GROUP);
        let planes = self.position_bytes(abits, scheme).unwrap_or(0) * len;
        planes + 4 * len + 4 * (self.depth() / group) + 8 * self.kh * self.kw + 4 * self.columns()
    }

    /// Bytes per position of a pack on `scheme` at `abits`: a nibble byte per bit plane and
    /// channel group (`Lut`), or a code per channel (`Dot8`); `None` on overflow.
    fn position_bytes(&self, abits: Bits, scheme: Scheme) -> Option<usize> {
        match scheme {
            Scheme::Dot8 => Some(self.c),
            _ => (self.c / lut::GROUP).checked_mul(abits.get() as usize),
        }
    }

    /// Where input pixel `(y, x)` lies in a plane.
    pub(super) fn at(&self, y: usize, x: usize) -> usize {
        (y + self.top) * self.pitch() + x + self.left
    }
}

/// A convolution's input packed for the window path, in buffers reused across layers and calls.
#[derive(Clone, Debug, Default)]
pub struct WindowActs {
    /// The packed window and the scheme whose layout it holds.
    win: Option<(Window, Scheme)>,
    abits: u8,
    /// `Lut`: `[plane j][channel group k][plane_len]` nibbles; `Dot8`: `[plane_len][c]` codes;
    /// zero outside the image.
    planes: Vec<u8>,
    /// Per position of the padded image, the sum of the pixel's codes (zero outside the image).
    pixel_sums: Vec<i32>,
    /// Per GEMM group of 4 depths (`Lut`) or 16 (`Dot8`), in the weights' depth order: where its
    /// nibbles (codes) lie relative to a column's.
    offsets: Vec<u32>,
    /// Per tap, where its pixel lies relative to a column (for the column sums).
    taps: Vec<usize>,
    /// Per GEMM column, the sum of its codes (each block fills its own).
    col_sums: Vec<i32>,
}

impl WindowActs {
    /// Packs `codes` (the image, `[h][w][c]`, each `< 2^abits`) for `win` in `scheme`'s layout
    /// (`Lut` or `Dot8`). On error nothing is packed.
    pub fn pack(&mut self, codes: &[u8], win: Window, abits: Bits, scheme: Scheme) -> Result<()> {
        self.pack_threads(codes, win, abits, scheme, 1)
    }

    /// [`pack`](Self::pack) with the image's rows split over `threads` threads (feature
    /// `threads`; ignored without it).
    pub fn pack_threads(&mut self, codes: &[u8], win: Window, abits: Bits, scheme: Scheme, threads: usize) -> Result<()> {
        self.prepare(codes.len(), win, abits, scheme)?;
        let out = PackOut::new(&mut self.planes, &mut self.pixel_sums);
        let any = AtomicU8::new(0);
        by_rows(&win, threads, &|rows| {
            let or = match scheme {
                Scheme::Dot8 => pack_bytes(codes, &win, rows, out),
                _ => pack_planes(codes, &win, abits.get(), rows, out),
            };
            any.fetch_or(or, Relaxed);
        });
        let any = any.into_inner();
        if abits.get() < 8 && any >> abits.get() != 0 {
            check_codes(codes, abits.get(), "activation")?;
        }
        self.finish(win, abits, scheme);
        Ok(())
    }

    /// [`pack`](Self::pack) of an f32 image quantized on the way, each value to its activation
    /// code `quant::act_code(x, clip, abits)`: one pass over the image, and no codes stored. The
    /// image's rows are split over `threads` threads (feature `threads`; ignored without it).
    pub fn pack_floats(&mut self, x: &[f32], win: Window, clip: f32, abits: Bits, scheme: Scheme, threads: usize) -> Result<()> {
        self.prepare(x.len(), win, abits, scheme)?;
        let out = PackOut::new(&mut self.planes, &mut self.pixel_sums);
        by_rows(&win, threads, &|rows| match scheme {
            Scheme::Dot8 => pack_bytes_floats(x, &win, clip, abits, rows, out),
            _ => pack_planes_floats(x, &win, clip, abits, rows, out),
        });
        self.finish(win, abits, scheme);
        Ok(())
    }

    /// Checks an image of `values` values for `win` and clears the buffers for its pack.
    fn prepare(&mut self, values: usize, win: Window, abits: Bits, scheme: Scheme) -> Result<()> {
        self.win = None;
        if !win.fits(scheme, abits) {
            crate::bail!(ErrorKind::InvalidArgument, "the window path cannot run {win:?} on {} at {abits}-bit activations", scheme.name());
        }
        if values != win.h * win.w * win.c {
            crate::bail!(ErrorKind::ShapeMismatch, "{values} activations for a {}x{}x{} image", win.h, win.w, win.c);
        }
        if win.depth() > super::MAX_DEPTH {
            crate::bail!(ErrorKind::LimitExceeded, "GEMM depth {} exceeds {}: the i32 accumulator could overflow", win.depth(), super::MAX_DEPTH);
        }
        let len = win.plane_len();
        let Some(n) = win.position_bytes(abits, scheme).and_then(|per| len.checked_mul(per)).filter(|&n| n <= u32::MAX as usize) else {
            crate::bail!(ErrorKind::LimitExceeded, "a {}x{}x{} image is too large for the window path", win.h, win.w, win.c);
        };
        self.planes.clear();
        self.planes.resize(n, 0);
        self.pixel_sums.clear();
        self.pixel_sums.resize(len, 0);
        Ok(())
    }

    /// The group offsets and tap offsets of `win`, once its planes are packed.
    fn finish(&mut self, win: Window, abits: Bits, scheme: Scheme) {
        let (len, p) = (win.plane_len(), win.pitch());
        self.offsets.clear();
        self.taps.clear();
        for ky in 0..win.kh {
            for kx in 0..win.kw {
                let tap = ky * p + kx;
                self.taps.push(tap);
                match scheme {
                    Scheme::Dot8 => self.offsets.extend((0..win.c / dot8::KB).map(|k| (tap * win.c + k * dot8::KB) as u32)),
                    _ => self.offsets.extend((0..win.c / lut::GROUP).map(|k| (k * len + tap) as u32)),
                }
            }
        }
        self.col_sums.resize(win.columns(), 0);
        self.win = Some((win, scheme));
        self.abits = abits.get();
    }
}

/// Image values below which a pack stays on the calling thread: packing 50 K codes takes about
/// 0.01 ms on one thread, and splitting it cost more than it saved (0.037 against 0.010 ms in
/// the kernel benchmark on two threads; BENCHMARKS.md). Such a pack instead wakes the helpers
/// that the GEMM after it will split over, so that they are up by then.
const MIN_SPLIT_VALUES: usize = 1 << 18;

/// `f` on row ranges that cover the image's `0..h`, split over `threads` threads as a GEMM's
/// columns are ([`job::column_blocks`]) when the image is large enough.
fn by_rows(win: &Window, threads: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    let threads = if win.h * win.w * win.c < MIN_SPLIT_VALUES {
        job::wake(threads);
        1
    } else {
        threads
    };
    job::run_parts(job::column_blocks(win.h, 1, threads).map(|(y0, y1)| y0..y1).collect(), threads, f);
}

/// The nibble planes and pixel sums of a pack (zeroed before it), written through raw pointers so
/// that threads packing different image rows write at once: the positions of a row
/// ([`Window::at`]) are its own in every plane and in the sums, so no two threads ever write the
/// same element. Every write is bounds-checked.
#[derive(Clone, Copy)]
pub(super) struct PackOut {
    planes: *mut u8,
    planes_len: usize,
    sums: *mut i32,
    sums_len: usize,
}

// SAFETY: the threads that share a PackOut write disjoint elements (above), each inside its
// buffer (checked per write); the buffers outlive the pack that creates it.
unsafe impl Send for PackOut {}
unsafe impl Sync for PackOut {}

impl PackOut {
    fn new(planes: &mut [u8], sums: &mut [i32]) -> PackOut {
        PackOut { planes: planes.as_mut_ptr(), planes_len: planes.len(), sums: sums.as_mut_ptr(), sums_len: sums.len() }
    }

    /// Byte `i` of the planes.
    #[inline(always)]
    pub(super) fn nibble(&self, i: usize, v: u8) {
        assert!(i < self.planes_len);
        // SAFETY: in bounds (checked); no other thread writes byte i (see the type).
        unsafe { self.planes.add(i).write(v) }
    }

    /// The `n` bytes of the planes from `i`, to write: a `Dot8` pixel's codes.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(super) fn bytes(&self, i: usize, n: usize) -> &mut [u8] {
        assert!(i + n <= self.planes_len);
        // SAFETY: in bounds (checked); each pixel's bytes are written by the one thread that
        // packs its row, and read by no one until the pack is done (see the type).
        unsafe { core::slice::from_raw_parts_mut(self.planes.add(i), n) }
    }

    /// The pixel sum at position `at`.
    #[inline(always)]
    pub(super) fn sum(&self, at: usize, v: i32) {
        assert!(at < self.sums_len);
        // SAFETY: as `nibble`.
        unsafe { self.sums.add(at).write(v) }
    }
}

/// The nibble planes and pixel sums of image rows `rows` from codes; returns the OR of their codes.
fn pack_planes(codes: &[u8], win: &Window, ab: u8, rows: Range<usize>, out: PackOut) -> u8 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return super::simd128_pack::window_planes(codes, win, ab, rows, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pack_planes_generic(codes, win, ab, rows, out)
}

/// `pack_planes` of an f32 image, quantized on the way (see [`WindowActs::pack_floats`]).
fn pack_planes_floats(x: &[f32], win: &Window, clip: f32, abits: Bits, rows: Range<usize>, out: PackOut) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return super::simd128_pack::window_planes_floats(x, win, clip, abits, rows, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pack_planes_floats_generic(x, win, clip, abits, rows, out)
}

/// The portable `pack_planes`, which the SIMD one is tested against.
pub(super) fn pack_planes_generic(codes: &[u8], win: &Window, ab: u8, rows: Range<usize>, out: PackOut) -> u8 {
    let mut any = 0u8;
    for y in rows {
        for x in 0..win.w {
            let px = &codes[(y * win.w + x) * win.c..][..win.c];
            pack_pixel(px, win, ab, win.at(y, x), out);
            any |= px.iter().fold(0, |m, &a| m | a);
        }
    }
    any
}

/// The portable `pack_planes_floats`: each pixel quantized by `quant::act_codes`, then packed.
pub(super) fn pack_planes_floats_generic(x: &[f32], win: &Window, clip: f32, abits: Bits, rows: Range<usize>, out: PackOut) {
    let mut codes = vec![0u8; win.c];
    for y in rows {
        for xx in 0..win.w {
            crate::quant::act_codes(&x[(y * win.w + xx) * win.c..][..win.c], clip, abits, &mut codes);
            pack_pixel(&codes, win, abits.get(), win.at(y, xx), out);
        }
    }
}

/// The `Dot8` image of image rows `rows` from codes: each pixel's `c` codes at its position, and
/// their sum. Returns the OR of their codes.
fn pack_bytes(codes: &[u8], win: &Window, rows: Range<usize>, out: PackOut) -> u8 {
    let mut any = 0u8;
    for y in rows {
        for x in 0..win.w {
            let px = &codes[(y * win.w + x) * win.c..][..win.c];
            let at = win.at(y, x);
            out.bytes(at * win.c, win.c).copy_from_slice(px);
            out.sum(at, super::panel::sum_codes(px));
            any |= px.iter().fold(0, |m, &a| m | a);
        }
    }
    any
}

/// `pack_bytes` of an f32 image, quantized on the way (see [`WindowActs::pack_floats`]).
fn pack_bytes_floats(x: &[f32], win: &Window, clip: f32, abits: Bits, rows: Range<usize>, out: PackOut) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return super::simd128_pack::window_bytes_floats(x, win, clip, abits, rows, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pack_bytes_floats_generic(x, win, clip, abits, rows, out)
}

/// The portable `pack_bytes_floats`: each pixel quantized by `quant::act_codes` into its place.
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))]
fn pack_bytes_floats_generic(x: &[f32], win: &Window, clip: f32, abits: Bits, rows: Range<usize>, out: PackOut) {
    for y in rows {
        for xx in 0..win.w {
            let at = win.at(y, xx);
            let px = out.bytes(at * win.c, win.c);
            crate::quant::act_codes(&x[(y * win.w + xx) * win.c..][..win.c], clip, abits, px);
            out.sum(at, super::panel::sum_codes(px));
        }
    }
}

/// One pixel's codes (`px`, its `c` channels) into the planes at position `at`, and their sum.
fn pack_pixel(px: &[u8], win: &Window, ab: u8, at: usize, out: PackOut) {
    let (len, groups) = (win.plane_len(), win.c / lut::GROUP);
    for (k, quad) in px.chunks_exact(lut::GROUP).enumerate() {
        for j in 0..ab as usize {
            out.nibble((j * groups + k) * len + at, lut::nibble(quad, j));
        }
    }
    out.sum(at, px.iter().map(|&a| a as i32).sum());
}

/// What a convolution without im2col calls per run of output pixels: first pixel, accumulators
/// (`rows` per pixel), code sums, what `part` gave the run.
pub type RunThen<'a, P> = dyn Fn(usize, &[i32], &[i32], P) + Sync + 'a;

/// A column block of [`window_gemm_then`]: its columns, accumulators and column sums, and its
/// runs of pixels (first column in the block, pixels, what `part` gave them).
type Block<'a, P> = (usize, usize, &'a mut [i32], &'a mut [i32], Vec<(usize, usize, P)>);

/// The window path's counterpart of [`pack_gemm_then`](super::pack_gemm_then), on an input that
/// `acts` holds packed: the GEMM of `w` (packed for the scheme of the pack, at `win`'s depth), `out` as scratch
/// for the accumulators (`rows` per GEMM column), and `then(p0, acc, sums, part)` right after the
/// GEMM of each column block on each of its runs of pixels (an output row's, or the part of one
/// in the block): `p0` the run's first pixel, `acc` and `sums` per pixel, `part` what
/// `part(p0, p1)` returned for its pixels `p0..p1` (called first, for every run in order, on this
/// thread). The columns between runs, which are no pixel, reach no one.
pub fn window_gemm_then<P: Send>(
    isa: Isa,
    w: &PackedWeights,
    acts: &mut WindowActs,
    out: &mut [i32],
    threads: usize,
    mut part: impl FnMut(usize, usize) -> P,
    then: &RunThen<'_, P>,
) -> Result<()> {
    let Some((win, scheme)) = acts.win else {
        crate::bail!(ErrorKind::InvalidArgument, "activations were not packed for the window path");
    };
    if w.scheme != scheme {
        crate::bail!(ErrorKind::InvalidArgument, "the window pack holds {} activations, the weights are packed for {}", scheme.name(), w.scheme.name());
    }
    let driver = super::driver(isa, w, scheme, win.depth())?;
    let cols = win.columns();
    let abits = Bits::new(acts.abits)?;
    let Some(out) = super::output(out, w.rows, cols)? else { return Ok(()) };
    let threads = job::split_threads(w, cols, abits, threads);
    let mut col_sums = std::mem::take(&mut acts.col_sums);
    let shared: &WindowActs = acts;
    let mut sums_rest = &mut col_sums[..cols];
    let pitch = win.pitch();
    let parts: Vec<_> = job::blocks(out, cols, w.rows, threads, |q0, q1| {
        // The block's runs of pixels: (first column in the block, pixels, part).
        let mut runs = Vec::new();
        let mut q = q0;
        while q < q1 {
            let end = (q - q % pitch + win.wo).min(q1);
            if q < end {
                runs.push((q - q0, end - q, part(win.pixel(q), win.pixel(end))));
            }
            q = q - q % pitch + pitch;
        }
        runs
    })
    .into_iter()
    .map(|(q0, q1, out, runs)| {
        let (sums, rest) = std::mem::take(&mut sums_rest).split_at_mut(q1 - q0);
        sums_rest = rest;
        (q0, q1, out, sums, runs)
    })
    .collect();
    let rows = w.rows;
    let one = |(q0, q1, out, sums, runs): Block<'_, P>| {
        // A column's sum is its taps' pixel sums: one shifted pass per tap, which vectorizes.
        sums.fill(0);
        for &t in &shared.taps {
            for (s, &p) in sums.iter_mut().zip(&shared.pixel_sums[q0 + t..]) {
                *s += p;
            }
        }
        let n = q1 - q0;
        // Lut: a byte per column in each plane, planes `len / abits` apart; Dot8: `c` codes per
        // column, one plane.
        let (granule, first, stride) = match scheme {
            Scheme::Dot8 => (dot8::P, q0 * win.c, win.c),
            _ => (lut::LANES, q0, shared.planes.len() / shared.abits as usize),
        };
        let view = ActsView {
            cols: n,
            cols_pad: n.div_ceil(granule) * granule,
            abits,
            col_sums: sums,
            data: <u8 as Elem>::elems(&shared.planes[first..]),
            window: Some((&shared.offsets, stride)),
        };
        driver(job::Job { w, a: view, c0: 0, c1: n, out: &mut *out });
        for (at, len, p) in runs {
            then(win.pixel(q0 + at), &out[at * rows..(at + len) * rows], &sums[at..at + len], p);
        }
    };
    job::run_parts(parts, threads, &one);
    acts.col_sums = col_sums;
    Ok(())
}
