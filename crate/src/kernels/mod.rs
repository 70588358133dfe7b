//! Integer GEMM on quantized codes, for weights of every width 1..=8 and unsigned activations of
//! every width 1..=8: `acc[row][col] = Σ_k c[row][k] * a[col][k]`, exact in i32. The layers
//! dequantize themselves (with [`PackedActs::col_sums`] for the weight offset).
//!
//! Structure (tract-linalg style): this file dispatches; one module per packing scheme
//! (`dot16`, `bitserial`, `lut`, `dot8`) owns its memory layout and packers; one module
//! per instruction set holds the micro-kernels for every scheme (`generic` plain Rust,
//! `simd128`, `relaxed`). `reference` is the obviously-correct loop the tests compare
//! everything with. `window` runs a stride-1 convolution's `Lut` or `Dot8` GEMM without an im2col, `direct`
//! a shallow one's (a first layer's) on `Dot16`.

mod acts;
mod bitserial;
mod direct;
mod dot16;
mod dot8;
mod generic;
mod isa;
mod job;
mod lut;
mod packed;
mod panel;
mod reference;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
mod relaxed;
mod scheme;
#[cfg(feature = "threads")]
mod team;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128_pack;
mod window;

pub use acts::{ActCodes, PackedActs};
pub use dot8::{one_plane_at_8_bits, two_planes_at_8_bits};
pub use isa::Isa;
pub use job::{split_threads, PassThreads};
#[cfg(feature = "threads")]
pub use team::set_pool_ready;
pub use packed::{PackedSize, PackedWeights, MAX_DEPTH};
pub use reference::{gemm_reference, im2col_reference};
pub use scheme::Scheme;
pub use direct::{direct_conv, direct_fits, direct_gemm_then, direct_kernel_fits, DirectActs};
pub use window::{window_gemm_then, Window, WindowActs};

use crate::bits::Bits;
use crate::error::{ErrorKind, Result};

/// Depth up to which Dot16's shallow kernel runs (`simd128::dot16_shallow`).
pub const SHALLOW_DEPTH: usize = 16;

/// The fastest scheme for a width pair and depth on this build's best instruction set, chosen by
/// measurement (BENCHMARKS.md, 3x3 conv 64->64 at 28x28, activation packing included):
/// - relaxed SIMD: Lut while activations have at most 2 bits, where its cost (∝ activation
///   bits) is lowest; Dot8 above, on the relaxed i8 dot product (8-bit activations as two 7-bit
///   planes): in Chromium on x64 with AVX-VNNI 2.5x Dot16 up to 7 bits and 1.25-1.35x at 8
///   (BENCHMARKS.md, "Dot8 on the relaxed dot product"); elsewhere it lowers to the same
///   multiply-adds as Dot16 (an earlier Chromium here measured the two level).
/// - SIMD128 (Lut pays less: the plain swizzle needs an index fix-up): Lut for 1-bit
///   activations, and 2-bit ones with one weight digit; Dot16 above.
/// - no SIMD (scalar wasm): BitSerial on wasm's native 64-bit popcount up to
///   wbits * abits = 24 plane pairs (1-bit: ~11x Dot16), Dot16 above.
/// - native (plain Rust, LLVM vectorizes Dot16 for the host): BitSerial up to 8 plane pairs.
///
/// With SIMD, a GEMM at most [`SHALLOW_DEPTH`] deep (a first conv's 3x3 taps of one channel)
/// runs Dot16's shallow kernel at every width: at depth 9, 12.7 GMAC/s with packing in
/// Chromium against Dot8's 4.4 and Lut's 8.0 at 1 bit (the others pad the depth to 16 and pack
/// more than they multiply).
pub fn best_scheme(wbits: Bits, abits: Bits, depth: usize) -> Scheme {
    let (wbits, abits) = (wbits.get(), abits.get());
    let one_digit = wbits <= 6;
    let pairs = wbits as u32 * abits as u32;
    match Isa::best() {
        Isa::Relaxed | Isa::Simd128 if depth <= SHALLOW_DEPTH => Scheme::Dot16,
        Isa::Relaxed if abits <= 2 => Scheme::Lut,
        Isa::Relaxed => Scheme::Dot8,
        Isa::Simd128 if abits == 1 || (abits == 2 && one_digit) => Scheme::Lut,
        Isa::Scalar if cfg!(target_arch = "wasm32") && pairs <= 24 => Scheme::BitSerial,
        Isa::Scalar if !cfg!(target_arch = "wasm32") && pairs <= 8 => Scheme::BitSerial,
        _ => Scheme::Dot16,
    }
}

/// [`best_scheme`] for a convolution the direct path can run ([`direct_conv`], stride and
/// dilation 1, one group): with SIMD it reads the image in place on Dot16 wherever
/// `best_scheme` would multiply 3-8-bit activations on Dot8 or Dot16 through an im2col
/// (ResNet-20's stem, depth 27: 0.047 against 0.092 ms in Node; BENCHMARKS.md). Lut's 1-2-bit
/// activations stay on Lut (not measured against the direct path).
pub fn best_direct_scheme(wbits: Bits, abits: Bits, depth: usize) -> Scheme {
    match best_scheme(wbits, abits, depth) {
        Scheme::Dot8 | Scheme::Dot16 if Isa::best() != Isa::Scalar => Scheme::Dot16,
        s => s,
    }
}

/// `out[col * rows + row] = Σ_k w[row][k] * a[col][k]` (channels fastest, as NHWC wants).
/// Every element is written, none read: `out` need not be zeroed (the kernel suite poisons it).
/// `threads <= 1` runs on this thread; more splits the columns over that many threads, the calling
/// one included, where the GEMM is big enough ([`split_threads`]; feature `threads`, ignored
/// without it).
pub fn gemm(isa: Isa, w: &PackedWeights, a: &PackedActs, out: &mut [i32], threads: usize) -> Result<()> {
    let Some(scheme) = a.scheme else {
        crate::bail!(ErrorKind::InvalidArgument, "activations were not packed (or their packing failed)");
    };
    let driver = driver(isa, w, scheme, a.depth)?;
    let Some(out) = output(out, w.rows, a.cols)? else { return Ok(()) };
    job::run_columns(driver, w, a, out, threads);
    Ok(())
}

/// [`gemm`] on activation codes (`[cols][depth]`, each `< 2^abits`), packed for `w`'s scheme
/// into the reused buffer `acts` on the way, and `then(c0, acc, sums, part)` on each column block
/// `c0..` right after its GEMM. The thread that claims a block packs it, multiplies it and runs
/// `then` on it, one step right after the other, in one fork (no pass over the whole input
/// between them, and one wait for the threads per layer); with [`ActCodes::Fill`] it writes the
/// block's codes first (a convolution's im2col). `acc` is the block's output (`rows` values per
/// column) and `sums` its columns' [`PackedActs::col_sums`]; `part(c0, c1)` is called first for
/// every block in column order, on this thread, to hand each block what it writes (a layer's
/// output columns), so a dequantization epilogue reads its accumulators while they are in that
/// core's cache. Afterwards `acts` holds the whole pack, as [`PackedActs::pack`] leaves it.
#[allow(clippy::too_many_arguments)]
pub fn pack_gemm_then<P: Send>(
    isa: Isa,
    w: &PackedWeights,
    acts: &mut PackedActs,
    codes: ActCodes<'_>,
    cols: usize,
    abits: Bits,
    out: &mut [i32],
    threads: usize,
    part: impl FnMut(usize, usize) -> P,
    then: &(dyn Fn(usize, &[i32], &[i32], P) + Sync),
) -> Result<()> {
    let driver = driver(isa, w, w.scheme, w.depth)?;
    let Some(out) = output(out, w.rows, cols)? else {
        // Nothing to multiply (no rows or no columns): the pack alone, `acts` left as promised.
        let blocks = vec![(0, cols, ())];
        return acts.pack_each(codes, cols, w.depth, abits, w.scheme, blocks, 1, &|_, _, ()| {});
    };
    let threads = split_threads(w, cols, abits, threads);
    let blocks = job::blocks(out, cols, w.rows, threads, part).into_iter().map(|(c0, c1, out, p)| (c0, c1, (out, p))).collect();
    acts.pack_each(codes, cols, w.depth, abits, w.scheme, blocks, threads, &|a, c0, (out, p)| {
        driver(job::Job { w, a, c0: 0, c1: a.cols, out: &mut *out });
        then(c0, out, a.col_sums, p);
    })
}

/// The micro-kernel driver of `isa` for `w` times activations packed for `scheme` at `depth`.
fn driver(isa: Isa, w: &PackedWeights, scheme: Scheme, depth: usize) -> Result<job::Driver> {
    // An instruction set missing from the build has no arm here (`Isa::available` lists the
    // same ones).
    let driver = match isa {
        Isa::Scalar => generic::driver(scheme),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => simd128::driver(scheme),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
        Isa::Relaxed => relaxed::driver(scheme),
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd")))]
        _ => crate::bail!(ErrorKind::InvalidArgument, "instruction set {} is not in this build", isa.name()),
    };
    if scheme != w.scheme {
        crate::bail!(
            ErrorKind::InvalidArgument,
            "weights packed for {} but activations for {}",
            w.scheme.name(),
            scheme.name()
        );
    }
    if depth != w.depth {
        crate::bail!(ErrorKind::ShapeMismatch, "weight depth {} != activation depth {depth}", w.depth);
    }
    Ok(driver)
}

/// The first `rows * cols` values of `out`, or `None` when that is none.
fn output(out: &mut [i32], rows: usize, cols: usize) -> Result<Option<&mut [i32]>> {
    let n = rows * cols;
    if out.len() < n {
        crate::bail!(ErrorKind::ShapeMismatch, "output holds {} values, GEMM needs {n}", out.len());
    }
    Ok(if n == 0 { None } else { Some(&mut out[..n]) })
}
