//! Integer GEMM on quantized codes, for weights of every width 1..=8 and unsigned activations of
//! every width 1..=8: `acc[row][col] = Σ_k c[row][k] * a[col][k]`, exact in i32. The layers
//! dequantize themselves (with [`PackedActs::col_sums`] for the weight offset).
//!
//! Structure (tract-linalg style): this file holds the API, validation and dispatch; one module
//! per packing scheme ([`dot16`], [`bitserial`]) owns its memory layout; one module per
//! instruction set holds the micro-kernels for every scheme (`generic` plain Rust, `simd128`,
//! `relaxed`). [`reference`] is the obviously-correct loop the tests compare everything with.

pub mod bench;
mod bitserial;
mod dot16;
mod dot8;
mod generic;
mod lut;
mod panel;
mod reference;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128_pack;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
mod relaxed;

pub use reference::gemm_reference;

use crate::error::{ErrorKind, Result};
use crate::quant::check_bits;

/// Largest supported depth: 255 * 255 * 32768 = 2_130_739_200 < 2^31, so an i32 accumulator
/// cannot overflow for any codes.
pub const MAX_DEPTH: usize = 32768;

/// Instruction set a kernel is compiled for. Which ones exist is fixed at build time (wasm has no
/// run-time feature detection inside a module; the JS side picks the binary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust; the native path too (LLVM may auto-vectorize it for the host).
    Scalar,
    /// wasm SIMD128 intrinsics.
    Simd128,
    /// wasm SIMD128 plus relaxed SIMD.
    Relaxed,
}

impl Isa {
    /// Every Isa this build can run, slowest first.
    pub fn available() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut v = vec![Isa::Scalar];
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        v.push(Isa::Simd128);
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
        v.push(Isa::Relaxed);
        v
    }

    pub fn best() -> Isa {
        *Isa::available().last().expect("Scalar is always available")
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Simd128 => "simd128",
            Isa::Relaxed => "relaxed",
        }
    }

    fn check(self) -> Result<()> {
        if !Isa::available().contains(&self) {
            crate::bail!(ErrorKind::InvalidArgument, "instruction set {} is not in this build", self.name());
        }
        Ok(())
    }
}

/// How codes are packed, which decides the arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Codes widened to i16, `i32x4.dot_i16x8_s`: cost independent of the widths.
    Dot16,
    /// Bit planes along depth, AND + popcount per plane pair: cost ∝ wbits * abits.
    BitSerial,
    /// Weight tables indexed by activation bit-plane nibbles (`i8x16.swizzle`): cost ∝ abits.
    Lut,
    /// Codes kept as bytes; relaxed SIMD's i8 dot product when activations fit 7 bits, widened
    /// at use otherwise.
    Dot8,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dot16 => "dot16",
            Scheme::BitSerial => "bitserial",
            Scheme::Lut => "lut",
            Scheme::Dot8 => "dot8",
        }
    }

    pub fn all() -> &'static [Scheme] {
        &[Scheme::Dot16, Scheme::BitSerial, Scheme::Lut, Scheme::Dot8]
    }
}

/// The fastest scheme for a width pair on this build's best instruction set, chosen by
/// measurement (BENCHMARKS.md, 3x3 conv 64->64 at 28x28, activation packing included):
/// - relaxed SIMD: Lut while activations have at most 2 bits (3 with one weight digit), where
///   its cost (∝ activation bits) beats Dot16's constant cost; Dot16 above.
/// - SIMD128 (Lut pays less: the plain swizzle needs an index fix-up): Lut for 1-bit
///   activations, and 2-bit ones with one weight digit; Dot16 above.
/// - no SIMD (scalar wasm): BitSerial on wasm's native 64-bit popcount up to
///   wbits * abits = 24 plane pairs (1-bit: ~11x Dot16), Dot16 above.
/// - native (plain Rust, LLVM vectorizes Dot16 for the host): BitSerial up to 8 plane pairs.
/// Dot8 (relaxed i8 dot) measured no faster than Dot16 here, so it is not chosen.
pub fn best_scheme(wbits: u8, abits: u8) -> Scheme {
    let one_digit = wbits <= 6;
    let pairs = wbits as u32 * abits as u32;
    match Isa::best() {
        Isa::Relaxed if abits <= 2 || (abits == 3 && one_digit) => Scheme::Lut,
        Isa::Simd128 if abits == 1 || (abits == 2 && one_digit) => Scheme::Lut,
        Isa::Scalar if cfg!(target_arch = "wasm32") && pairs <= 24 => Scheme::BitSerial,
        Isa::Scalar if !cfg!(target_arch = "wasm32") && pairs <= 8 => Scheme::BitSerial,
        _ => Scheme::Dot16,
    }
}

/// Packing routines: the SIMD versions where the build has SIMD (same layouts, so the choice of
/// micro-kernel Isa at `gemm` time is independent of how the data was packed).
mod pack {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub use super::simd128_pack::{dot8, lut_acts, planes, widen};
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pub use super::{bitserial::pack_planes as planes, dot16::widen, dot8::pack as dot8, lut::pack_acts as lut_acts};
}

fn check_depth(depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        crate::bail!(
            ErrorKind::LimitExceeded,
            "GEMM depth {depth} exceeds {MAX_DEPTH}: the i32 accumulator could overflow"
        );
    }
    Ok(())
}

/// Rejects any code that does not fit `bits` bits. One pass of OR, which vectorizes.
fn check_codes(codes: &[u8], bits: u8, what: &str) -> Result<()> {
    if bits >= 8 {
        return Ok(());
    }
    let any = codes.iter().fold(0u8, |m, &c| m | c);
    if any >> bits != 0 {
        let bad = codes.iter().position(|&c| c >> bits != 0).unwrap_or(0);
        crate::bail!(
            ErrorKind::BadValue,
            "{what} code {} at index {bad} does not fit {bits} bits",
            codes[bad]
        );
    }
    Ok(())
}

fn checked_len(a: usize, b: usize, what: &str) -> Result<usize> {
    match a.checked_mul(b) {
        Some(n) => Ok(n),
        None => crate::bail!(ErrorKind::LimitExceeded, "{what} size {a} x {b} overflows"),
    }
}

/// Weights packed once at load (or width switch) time.
#[derive(Clone, Debug)]
pub struct PackedWeights {
    scheme: Scheme,
    rows: usize,
    depth: usize,
    wbits: u8,
    /// Rows rounded up to the scheme's tile height.
    rows_pad: usize,
    /// Dot16: `[rows_pad][kp]`.
    i16s: Vec<i16>,
    /// BitSerial: `[rows_pad][wbits][kw][2]`.
    words: Vec<u64>,
    /// Lut: `[rows_pad / 4][digit][group][4][16]` tables. Dot8: i8 panels.
    bytes: Vec<u8>,
}

/// The buffers [`PackedWeights::new`] allocates for a shape, known without packing: the
/// precision policy costs the memory of widths it has not switched to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedSize {
    pub rows_pad: usize,
    pub i16s: usize,
    pub words: usize,
    pub bytes: usize,
}

impl PackedSize {
    pub fn of(rows: usize, depth: usize, wbits: u8, scheme: Scheme) -> PackedSize {
        let mut s = PackedSize { rows_pad: 0, i16s: 0, words: 0, bytes: 0 };
        match scheme {
            Scheme::Dot16 => {
                s.rows_pad = rows.div_ceil(dot16::MR) * dot16::MR;
                s.i16s = s.rows_pad * dot16::padded_depth(depth);
            }
            Scheme::BitSerial => {
                s.rows_pad = rows.div_ceil(bitserial::MR) * bitserial::MR;
                s.words = s.rows_pad * wbits as usize * bitserial::words(depth) * bitserial::U64_PER_WORD;
            }
            Scheme::Lut => {
                s.rows_pad = rows.div_ceil(lut::MR) * lut::MR;
                s.bytes = s.rows_pad * lut::digits(wbits).0 * lut::groups(depth) * 16;
            }
            Scheme::Dot8 => {
                s.rows_pad = rows.div_ceil(dot8::P) * dot8::P;
                s.bytes = s.rows_pad * dot8::padded_depth(depth);
            }
        }
        s
    }

    /// What [`PackedActs::pack`] needs for `cols` columns (`rows_pad` holds the padded columns;
    /// the per-column sums, `cols` i32s, come on top).
    pub fn acts(cols: usize, depth: usize, abits: u8, scheme: Scheme) -> PackedSize {
        let (granule, per_col) = act_layout(depth, abits, scheme);
        let cols_pad = cols.div_ceil(granule) * granule;
        let n = cols_pad * per_col;
        let mut s = PackedSize { rows_pad: cols_pad, i16s: 0, words: 0, bytes: 0 };
        match scheme {
            Scheme::Dot16 => s.i16s = n,
            Scheme::BitSerial => s.words = n,
            Scheme::Lut | Scheme::Dot8 => s.bytes = n,
        }
        s
    }

    /// Heap bytes of the packed weights.
    pub fn heap_bytes(&self) -> usize {
        self.i16s * 2 + self.words * 8 + self.bytes
    }
}

impl PackedWeights {
    /// `codes`: row-major `[rows][depth]`, each `< 2^wbits`.
    pub fn new(codes: &[u8], rows: usize, depth: usize, wbits: u8, scheme: Scheme) -> Result<Self> {
        check_bits(wbits)?;
        check_depth(depth)?;
        let n = checked_len(rows, depth, "weight")?;
        if codes.len() != n {
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "weights: {} codes given for {rows} rows x {depth} depth",
                codes.len()
            );
        }
        check_codes(codes, wbits, "weight")?;
        let mut w = PackedWeights {
            scheme,
            rows,
            depth,
            wbits,
            rows_pad: 0,
            i16s: Vec::new(),
            words: Vec::new(),
            bytes: Vec::new(),
        };
        let size = PackedSize::of(rows, depth, wbits, scheme);
        w.rows_pad = size.rows_pad;
        w.i16s = vec![0; size.i16s];
        w.words = vec![0; size.words];
        w.bytes = vec![0; size.bytes];
        match scheme {
            Scheme::Dot16 => {
                pack::widen(codes, rows, w.rows_pad, depth, &mut w.i16s, None);
            }
            Scheme::BitSerial => {
                pack::planes(codes, rows, w.rows_pad, depth, wbits, &mut w.words, None);
            }
            Scheme::Lut => lut::pack_weights(codes, rows, w.rows_pad, depth, wbits, &mut w.bytes),
            Scheme::Dot8 => {
                pack::dot8(codes, rows, w.rows_pad, depth, dot8::weight_offset(wbits), &mut w.bytes, None);
            }
        }
        Ok(w)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn depth(&self) -> usize {
        self.depth
    }
    pub fn wbits(&self) -> u8 {
        self.wbits
    }
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// Heap bytes of the packed buffers (what [`PackedSize::of`] predicts).
    pub fn heap_bytes(&self) -> usize {
        self.i16s.capacity() * 2 + self.words.capacity() * 8 + self.bytes.capacity()
    }
}

/// Activations packed per call. A reusable buffer: it grows to the largest layer and never
/// shrinks, so a model reuses one across layers and calls without allocating.
#[derive(Clone, Debug, Default)]
pub struct PackedActs {
    scheme: Option<Scheme>,
    cols: usize,
    depth: usize,
    abits: u8,
    cols_pad: usize,
    col_sums: Vec<i32>,
    /// Dot16: `[cols_pad][kp]`.
    i16s: Vec<i16>,
    /// BitSerial: `[cols_pad][abits][kw][2]`.
    words: Vec<u64>,
    /// Lut: `[cols_pad / 16][abits][group][16]` index nibbles. Dot8: u8 panels.
    bytes: Vec<u8>,
}

fn grow<T: Clone + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

impl PackedActs {
    pub fn new() -> Self {
        Self::default()
    }

    /// `codes`: `[cols][depth]`, each `< 2^abits`. Packs for `scheme` and computes per-column
    /// code sums. On error the buffer holds no valid pack.
    pub fn pack(&mut self, codes: &[u8], cols: usize, depth: usize, abits: u8, scheme: Scheme) -> Result<()> {
        self.pack_threads(codes, cols, depth, abits, scheme, 1)
    }

    /// [`pack`](Self::pack) with the columns split over `threads` rayon tasks (feature
    /// `threads`; ignored without it). Packing is a fifth of a 1-bit layer's time, so a
    /// multi-threaded GEMM needs a multi-threaded pack to scale.
    pub fn pack_threads(&mut self, codes: &[u8], cols: usize, depth: usize, abits: u8, scheme: Scheme, threads: usize) -> Result<()> {
        self.scheme = None;
        check_bits(abits)?;
        check_depth(depth)?;
        let n = checked_len(cols, depth, "activation")?;
        if codes.len() != n {
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "activations: {} codes given for {cols} columns x {depth} depth",
                codes.len()
            );
        }
        grow(&mut self.col_sums, cols);
        let (granule, per_col) = act_layout(depth, abits, scheme);
        let cols_pad = cols.div_ceil(granule) * granule;
        self.cols_pad = cols_pad;
        let sums = &mut self.col_sums[..cols];
        let shape = Cols { cols, cols_pad, depth, granule, per_col, threads };
        // The packers check the range on the fly (an OR of every code, folded into their single
        // pass over the codes); the slow search for the culprit only runs on failure.
        let any = match scheme {
            Scheme::Dot16 => {
                grow(&mut self.i16s, cols_pad * per_col);
                split_pack(&shape, codes, &mut self.i16s, sums, &|src, n, n_pad, dst, sums| {
                    pack::widen(src, n, n_pad, depth, dst, Some(sums))
                })
            }
            Scheme::BitSerial => {
                grow(&mut self.words, cols_pad * per_col);
                split_pack(&shape, codes, &mut self.words, sums, &|src, n, n_pad, dst, sums| {
                    pack::planes(src, n, n_pad, depth, abits, dst, Some(sums))
                })
            }
            Scheme::Lut => {
                grow(&mut self.bytes, cols_pad * per_col);
                split_pack(&shape, codes, &mut self.bytes, sums, &|src, n, n_pad, dst, sums| {
                    pack::lut_acts(src, n, n_pad, depth, abits, dst, sums)
                })
            }
            Scheme::Dot8 => {
                grow(&mut self.bytes, cols_pad * per_col);
                split_pack(&shape, codes, &mut self.bytes, sums, &|src, n, n_pad, dst, sums| {
                    pack::dot8(src, n, n_pad, depth, 0, dst, Some(sums))
                })
            }
        };
        if abits < 8 && any >> abits != 0 {
            check_codes(codes, abits, "activation")?;
        }
        self.scheme = Some(scheme);
        self.cols = cols;
        self.depth = depth;
        self.abits = abits;
        Ok(())
    }

    pub fn col_sums(&self) -> &[i32] {
        &self.col_sums[..self.cols]
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn depth(&self) -> usize {
        self.depth
    }
    pub fn abits(&self) -> u8 {
        self.abits
    }
}

/// Per scheme: the column granule (columns are padded to it and never split below it) and the
/// packed elements per column. Every layout keeps a column range contiguous.
fn act_layout(depth: usize, abits: u8, scheme: Scheme) -> (usize, usize) {
    let ab = abits as usize;
    match scheme {
        Scheme::Dot16 => (dot16::NR, dot16::padded_depth(depth)),
        Scheme::BitSerial => (bitserial::NR, ab * bitserial::words(depth) * bitserial::U64_PER_WORD),
        Scheme::Lut => (lut::LANES, ab * lut::groups(depth)),
        Scheme::Dot8 => (dot8::P, dot8::padded_depth(depth)),
    }
}

/// How a column range of activations is split for packing.
struct Cols {
    cols: usize,
    cols_pad: usize,
    depth: usize,
    granule: usize,
    per_col: usize,
    threads: usize,
}

/// A packer for columns `src = [n][depth]`, padded to `n_pad`, into `dst` (`n_pad * per_col`)
/// and `sums` (`n`); returns the OR of the codes.
type PackFn<'f, T> = dyn Fn(&[u8], usize, usize, &mut [T], &mut [i32]) -> u8 + Sync + 'f;

/// Runs `f` on disjoint column ranges (whole granules), in parallel with the `threads` feature.
fn split_pack<T: Send>(c: &Cols, codes: &[u8], dst: &mut [T], sums: &mut [i32], f: &PackFn<'_, T>) -> u8 {
    let chunk = if cfg!(feature = "threads") && c.threads > 1 {
        // Several blocks per thread, as in `run_columns`, so a late-waking thread is covered.
        c.cols_pad.div_ceil(c.threads * 4).div_ceil(c.granule) * c.granule
    } else {
        c.cols_pad
    }
    .max(c.granule);
    let mut parts = Vec::new();
    let (mut dst, mut sums) = (&mut dst[..c.cols_pad * c.per_col], sums);
    let mut c0 = 0;
    while c0 < c.cols_pad {
        let c1 = (c0 + chunk).min(c.cols_pad);
        let (n0, n1) = (c0.min(c.cols), c1.min(c.cols));
        let (d, rest) = core::mem::take(&mut dst).split_at_mut((c1 - c0) * c.per_col);
        let (s, srest) = core::mem::take(&mut sums).split_at_mut(n1 - n0);
        parts.push((&codes[n0 * c.depth..n1 * c.depth], n1 - n0, c1 - c0, d, s));
        dst = rest;
        sums = srest;
        c0 = c1;
    }
    #[cfg(feature = "threads")]
    if parts.len() > 1 {
        use rayon::prelude::*;
        return parts.into_par_iter().map(|(src, n, n_pad, d, s)| f(src, n, n_pad, d, s)).reduce(|| 0, |a, b| a | b);
    }
    parts.into_iter().fold(0, |acc, (src, n, n_pad, d, s)| acc | f(src, n, n_pad, d, s))
}

/// A view of one column range of the problem, handed to a micro-kernel driver. `out` holds
/// exactly the columns `c0..c1`, `rows` values each.
pub(crate) struct Job<'a> {
    pub w: &'a PackedWeights,
    pub a: &'a PackedActs,
    pub c0: usize,
    pub c1: usize,
    pub out: &'a mut [i32],
}

type Driver = fn(Job<'_>);

fn driver(isa: Isa, scheme: Scheme) -> Driver {
    match (isa, scheme) {
        (Isa::Scalar, Scheme::Dot16) => generic::dot16,
        (Isa::Scalar, Scheme::BitSerial) => generic::bitserial,
        (Isa::Scalar, Scheme::Lut) => generic::lut,
        (Isa::Scalar, Scheme::Dot8) => generic::dot8,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        (Isa::Simd128, Scheme::Dot8) => simd128::dot8,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
        (Isa::Relaxed, Scheme::Dot8) => relaxed::dot8,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        (Isa::Simd128 | Isa::Relaxed, Scheme::Dot16) => simd128::dot16,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        (Isa::Simd128 | Isa::Relaxed, Scheme::BitSerial) => simd128::bitserial,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        (Isa::Simd128, Scheme::Lut) => simd128::lut,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
        (Isa::Relaxed, Scheme::Lut) => simd128::lut_relaxed,
        #[allow(unreachable_patterns)]
        _ => unreachable!("Isa::check rejects instruction sets missing from the build"),
    }
}

/// `out[col * rows + row] = Σ_k w[row][k] * a[col][k]` (channels fastest, as NHWC wants).
/// `threads <= 1` runs on this thread; more splits the columns over rayon (feature `threads`;
/// ignored without it).
pub fn gemm(isa: Isa, w: &PackedWeights, a: &PackedActs, out: &mut [i32], threads: usize) -> Result<()> {
    isa.check()?;
    let Some(scheme) = a.scheme else {
        crate::bail!(ErrorKind::InvalidArgument, "activations were not packed (or their packing failed)");
    };
    if scheme != w.scheme {
        crate::bail!(
            ErrorKind::InvalidArgument,
            "weights packed for {} but activations for {}",
            w.scheme.name(),
            scheme.name()
        );
    }
    if a.depth != w.depth {
        crate::bail!(ErrorKind::ShapeMismatch, "weight depth {} != activation depth {}", w.depth, a.depth);
    }
    let n = w.rows * a.cols;
    if out.len() < n {
        crate::bail!(ErrorKind::ShapeMismatch, "output holds {} values, GEMM needs {n}", out.len());
    }
    let out = &mut out[..n];
    if n == 0 {
        return Ok(());
    }
    let run = driver(isa, scheme);
    run_columns(run, w, a, out, threads);
    Ok(())
}

/// Blocks per thread when splitting columns (see `run_columns`).
#[cfg(feature = "threads")]
const CHUNKS_PER_THREAD: usize = 4;

#[cfg(feature = "threads")]
fn run_columns(run: Driver, w: &PackedWeights, a: &PackedActs, out: &mut [i32], threads: usize) {
    use rayon::prelude::*;
    let cols = a.cols;
    if threads <= 1 || cols < 2 {
        return run(Job { w, a, c0: 0, c1: cols, out });
    }
    // Column blocks of whole tiles (the largest column tile of any scheme: Lut's 16 lanes),
    // several per thread: a wasm pool thread takes ~0.2 ms to wake from Atomics.wait, and with
    // one block per thread the late one's block would finish last; smaller blocks let the
    // threads that are awake steal its share.
    let tile = lut::LANES;
    let per = cols.div_ceil(threads * CHUNKS_PER_THREAD).div_ceil(tile).max(1) * tile;
    out.par_chunks_mut(per * w.rows).enumerate().for_each(|(i, chunk)| {
        let c0 = i * per;
        let c1 = (c0 + per).min(cols);
        run(Job { w, a, c0, c1, out: chunk });
    });
}

#[cfg(not(feature = "threads"))]
fn run_columns(run: Driver, w: &PackedWeights, a: &PackedActs, out: &mut [i32], _threads: usize) {
    run(Job { w, a, c0: 0, c1: a.cols, out });
}
