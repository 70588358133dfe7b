//! [`Job`], the unit of work a micro-kernel driver runs (a column range of one GEMM), and how
//! `gemm` splits a problem's columns into jobs over threads.

use super::{PackedActs, PackedWeights};

/// A view of one column range of the problem, handed to a micro-kernel driver. `out` holds
/// exactly the columns `c0..c1`, `rows` values each.
pub(crate) struct Job<'a> {
    pub w: &'a PackedWeights,
    pub a: &'a PackedActs,
    pub c0: usize,
    pub c1: usize,
    pub out: &'a mut [i32],
}

/// A micro-kernel driver: one (Isa, Scheme) pair's loop over a job's tiles.
pub(crate) type Driver = fn(Job<'_>);

/// Defines `driver(scheme)` in an instruction set's module whose drivers are named after the
/// schemes (`dot16`, `bitserial`, `lut`, `dot8`), as every complete kernel family is.
macro_rules! drivers_by_scheme_name {
    () => {
        pub fn driver(scheme: $crate::kernels::Scheme) -> $crate::kernels::job::Driver {
            use $crate::kernels::Scheme;
            match scheme {
                Scheme::Dot16 => dot16,
                Scheme::BitSerial => bitserial,
                Scheme::Lut => lut,
                Scheme::Dot8 => dot8,
            }
        }
    };
}
pub(super) use drivers_by_scheme_name;

/// Blocks per thread when splitting columns (see `run_columns`).
#[cfg(feature = "threads")]
const CHUNKS_PER_THREAD: usize = 4;

/// Work (Dot16-equivalent multiply-adds, [`work`]) below which a GEMM stays on the calling
/// thread whatever the pool: a wasm pool thread takes ~0.2 ms to wake from Atomics.wait, so a
/// GEMM must take well over that alone for a split to pay. 12 M is about 0.5 ms at the 8-bit
/// kernel's 25 GMAC/s. Every layer of the shipped MNIST models (0.01-0.2 ms) and of a ResNet-20
/// is below it: split, they run slower than on one thread (BENCHMARKS.md, whole models).
pub(crate) const MIN_SPLIT_WORK: u64 = 12_000_000;

/// A GEMM's cost in Dot16-equivalent multiply-adds: its multiply-adds scaled by what each costs in
/// its scheme relative to Dot16, from the kernel benchmark's measured rates (Lut ∝ activation
/// bits, about 4x Dot16 at 1 bit; BitSerial ∝ plane pairs).
pub(crate) fn work(w: &PackedWeights, a: &PackedActs) -> u64 {
    let macs = w.rows as u64 * w.depth as u64 * a.cols as u64;
    let abits = a.abits.get() as u64;
    match w.scheme {
        super::Scheme::Dot16 | super::Scheme::Dot8 => macs,
        super::Scheme::Lut => macs * abits.min(4) / 4,
        super::Scheme::BitSerial => macs * (w.wbits.get() as u64 * abits).min(16) / 16,
    }
}

/// Threads a GEMM is split over: 1 below [`MIN_SPLIT_WORK`] or with fewer than 2 columns.
pub(crate) fn split_threads(w: &PackedWeights, a: &PackedActs, threads: usize) -> usize {
    if threads <= 1 || a.cols < 2 || work(w, a) < MIN_SPLIT_WORK { 1 } else { threads }
}

/// Runs `run` over all columns: on this thread, or split over `threads` rayon tasks.
#[cfg(feature = "threads")]
pub(super) fn run_columns(run: Driver, w: &PackedWeights, a: &PackedActs, out: &mut [i32], threads: usize) {
    use rayon::prelude::*;
    let cols = a.cols;
    let threads = split_threads(w, a, threads);
    if threads <= 1 {
        return run(Job { w, a, c0: 0, c1: cols, out });
    }
    // Column blocks of whole tiles (the largest column tile of any scheme: Lut's 16 lanes),
    // several per thread: a wasm pool thread takes ~0.2 ms to wake from Atomics.wait, and with
    // one block per thread the late one's block would finish last; smaller blocks let the
    // threads that are awake steal its share.
    let tile = super::lut::LANES;
    let per = cols.div_ceil(threads * CHUNKS_PER_THREAD).div_ceil(tile).max(1) * tile;
    out.par_chunks_mut(per * w.rows).enumerate().for_each(|(i, chunk)| {
        let c0 = i * per;
        let c1 = (c0 + per).min(cols);
        run(Job { w, a, c0, c1, out: chunk });
    });
}

/// Runs `run` over all columns on this thread (no `threads` feature).
#[cfg(not(feature = "threads"))]
pub(super) fn run_columns(run: Driver, w: &PackedWeights, a: &PackedActs, out: &mut [i32], _threads: usize) {
    run(Job { w, a, c0: 0, c1: a.cols, out });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::Bits;
    use crate::kernels::Scheme;

    fn split(rows: usize, depth: usize, cols: usize, bits: u8, scheme: Scheme, threads: usize) -> usize {
        let b = Bits::new(bits).unwrap();
        let w = PackedWeights::new(&vec![0; rows * depth], rows, depth, b, scheme).unwrap();
        let mut a = PackedActs::default();
        a.pack(&vec![0; cols * depth], cols, depth, b, scheme).unwrap();
        split_threads(&w, &a, threads)
    }

    #[test]
    fn small_gemms_stay_on_one_thread() {
        // MNIST's conv2 (64 x 288 x 196, 3.6 M multiply-adds) at 8 bits: one thread on any pool.
        assert_eq!(split(64, 288, 196, 8, Scheme::Dot16, 4), 1);
        // The 3x3 conv 64->64 at 28x28 (28.9 M): split at 8 bits, not at 1 bit on Lut (7.2 M of work).
        assert_eq!(split(64, 576, 784, 8, Scheme::Dot16, 2), 2);
        assert_eq!(split(64, 576, 784, 1, Scheme::Lut, 2), 1);
        assert_eq!(split(64, 576, 784, 4, Scheme::Lut, 3), 3);
        // A pool of one, or a single column, never splits.
        assert_eq!(split(64, 576, 784, 8, Scheme::Dot16, 1), 1);
        assert_eq!(split(4096, 4096, 1, 8, Scheme::Dot16, 2), 1);
    }
}
