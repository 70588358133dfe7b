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

/// Runs `run` over all columns: on this thread, or split over `threads` rayon tasks.
#[cfg(feature = "threads")]
pub(super) fn run_columns(run: Driver, w: &PackedWeights, a: &PackedActs, out: &mut [i32], threads: usize) {
    use rayon::prelude::*;
    let cols = a.cols;
    if threads <= 1 || cols < 2 {
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
