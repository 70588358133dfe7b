//! [`Job`], the unit of work a micro-kernel driver runs (a column range of one GEMM), and how
//! `gemm` splits a problem's columns into jobs over threads.

use super::acts::ActsView;
use super::{PackedActs, PackedWeights};

/// A view of one column range of the problem, handed to a micro-kernel driver: columns `c0..c1`
/// of `a` (whose columns are those of one column block, renumbered from 0). `out` holds exactly
/// the columns `c0..c1`, `rows` values each.
pub(crate) struct Job<'a> {
    pub w: &'a PackedWeights,
    pub a: ActsView<'a>,
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

/// Blocks per thread when splitting columns, claimed one at a time: a thread that is late (waking,
/// or preempted on a shared machine) leaves its share to the others, and the last block, which
/// one thread may finish alone, is small.
const BLOCKS_PER_THREAD: usize = 4;

/// `0..cols` cut into `threads * BLOCKS_PER_THREAD` blocks of whole `granule`s (the last one may
/// end short at `cols`) that differ by at most one granule, or into one block on one thread.
/// Even blocks matter: 7 blocks on 2 threads leave one thread a quarter more work.
pub fn column_blocks(cols: usize, granule: usize, threads: usize) -> impl Iterator<Item = (usize, usize)> {
    let units = cols.div_ceil(granule.max(1));
    let blocks = if threads <= 1 { 1 } else { (threads * BLOCKS_PER_THREAD).min(units).max(1) };
    (0..blocks).map(move |i| ((i * units / blocks * granule).min(cols), ((i + 1) * units / blocks * granule).min(cols)))
}

/// `data` (`per` values per column) cut along [`column_blocks`]: each block's range and values.
pub(crate) fn column_slices<T>(data: &mut [T], cols: usize, granule: usize, threads: usize, per: usize) -> Vec<(usize, usize, &mut [T])> {
    let mut rest = data;
    column_blocks(cols, granule, threads)
        .map(|(c0, c1)| {
            let (block, tail) = core::mem::take(&mut rest).split_at_mut((c1 - c0) * per);
            rest = tail;
            (c0, c1, block)
        })
        .collect()
}

/// Work (Dot16-equivalent multiply-adds, [`work`]) below which a GEMM stays on the calling
/// thread whatever the pool. A split costs a few microseconds when the helpers are spinning
/// ([`team`](super::team)), and the spawn of a helper when they are not. 0.25 M is about 0.01 ms
/// at the 8-bit kernel's 25 GMAC/s: ResNet-20's 1-bit GEMMs (0.6 M of work) split and gain, the
/// first convs (depth 9-27) do not.
pub(crate) const MIN_SPLIT_WORK: u64 = 250_000;

/// A GEMM's cost in Dot16-equivalent multiply-adds: its multiply-adds scaled by what each costs in
/// its scheme relative to Dot16, from the kernel benchmark's measured rates (Lut ∝ activation
/// bits, about 4x Dot16 at 1 bit; BitSerial ∝ plane pairs).
pub(crate) fn work(w: &PackedWeights, cols: usize, abits: crate::bits::Bits) -> u64 {
    let macs = w.rows as u64 * w.depth as u64 * cols as u64;
    let abits = abits.get() as u64;
    match w.scheme {
        super::Scheme::Dot16 | super::Scheme::Dot8 => macs,
        super::Scheme::Lut => macs * abits.min(4) / 4,
        super::Scheme::BitSerial => macs * (w.wbits.get() as u64 * abits).min(16) / 16,
    }
}

/// Threads a GEMM of `w` over `cols` columns of `abits` activations is split over (its packing
/// too): 1 below [`MIN_SPLIT_WORK`] or with fewer than 2 columns.
pub fn split_threads(w: &PackedWeights, cols: usize, abits: crate::bits::Bits, threads: usize) -> usize {
    if threads <= 1 || cols < 2 || work(w, cols, abits) < MIN_SPLIT_WORK { 1 } else { threads }
}

/// Runs `f` on every part, split over up to `threads` threads (the calling one included; see
/// [`team`](super::team)) with the `threads` feature, else here in order.
pub(crate) fn run_parts<P: Send>(parts: Vec<P>, threads: usize, f: &(dyn Fn(P) + Sync)) {
    #[cfg(feature = "threads")]
    super::team::run_parts(parts, threads, f);
    #[cfg(not(feature = "threads"))]
    {
        let _ = threads;
        parts.into_iter().for_each(f);
    }
}

/// Starts the helpers a split over `threads` threads would use, without waiting for them: for a
/// caller about to split, after some work of its own (see [`team`](super::team)).
pub(crate) fn wake(threads: usize) {
    #[cfg(feature = "threads")]
    super::team::wake(threads);
    #[cfg(not(feature = "threads"))]
    let _ = threads;
}

/// Held for the length of a pass over a model's layers: gets up to `threads - 1` helper threads
/// running for the splits to come and keeps them spinning between layers (see
/// [`team`](super::team)); nothing without the `threads` feature or on one thread.
pub struct PassThreads {
    #[cfg(feature = "threads")]
    _guard: super::team::PassGuard,
}

impl PassThreads {
    pub fn new(threads: usize) -> PassThreads {
        #[cfg(feature = "threads")]
        return PassThreads { _guard: super::team::PassGuard::new(threads) };
        #[cfg(not(feature = "threads"))]
        {
            let _ = threads;
            PassThreads {}
        }
    }
}

/// Runs `run` over all columns of `a`, on this thread or split over `threads` threads
/// ([`team`](super::team)).
pub(super) fn run_columns(run: Driver, w: &PackedWeights, a: &PackedActs, out: &mut [i32], threads: usize) {
    let threads = split_threads(w, a.cols, a.abits, threads);
    let parts = blocks(out, a.cols, w.rows, threads, |_, _| ());
    run_parts(parts, threads, &|(c0, c1, out, ())| {
        let view = a.block(c0, c1).expect("gemm checked that the activations are packed");
        run(Job { w, a: view, c0: 0, c1: view.cols, out });
    });
}

/// Column blocks of whole column tiles (the largest of any scheme: Lut's 16 lanes), each with
/// its part of `out` and what `part` hands it.
pub(super) fn blocks<P>(out: &mut [i32], cols: usize, rows: usize, threads: usize, mut part: impl FnMut(usize, usize) -> P) -> Vec<(usize, usize, &mut [i32], P)> {
    column_slices(out, cols, super::lut::LANES, threads, rows).into_iter().map(|(c0, c1, out)| (c0, c1, out, part(c0, c1))).collect()
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
        split_threads(&w, a.cols, a.abits, threads)
    }

    #[test]
    fn small_gemms_stay_on_one_thread() {
        // MNIST's conv1 (32 x 9 x 784, 0.23 M multiply-adds): one thread on any pool.
        assert_eq!(split(32, 9, 784, 8, Scheme::Dot16, 4), 1);
        // Its conv2 (64 x 288 x 196, 3.6 M): split at 8 bits, and at 1 bit on Lut (0.9 M of work).
        assert_eq!(split(64, 288, 196, 8, Scheme::Dot16, 2), 2);
        assert_eq!(split(64, 288, 196, 1, Scheme::Lut, 3), 3);
        // A 16 x 144 x 256 GEMM: 0.59 M multiply-adds split at 8 bits, not at 1 bit (0.15 M of work).
        assert_eq!(split(16, 144, 256, 8, Scheme::Dot16, 2), 2);
        assert_eq!(split(16, 144, 256, 1, Scheme::Lut, 2), 1);
        // A pool of one, or a single column, never splits.
        assert_eq!(split(64, 576, 784, 8, Scheme::Dot16, 1), 1);
        assert_eq!(split(4096, 4096, 1, 8, Scheme::Dot16, 2), 1);
    }

    #[test]
    fn column_blocks_cover_every_column_evenly_in_whole_granules() {
        for &(cols, granule, threads) in &[(784, 16, 2), (784, 16, 3), (49, 16, 2), (1, 16, 2), (0, 4, 2), (100, 4, 1), (1000, 1, 7)] {
            let blocks: Vec<_> = column_blocks(cols, granule, threads).collect();
            assert_eq!(blocks.first().unwrap().0, 0);
            assert_eq!(blocks.last().unwrap().1, cols);
            assert!(blocks.windows(2).all(|b| b[0].1 == b[1].0), "{blocks:?}");
            assert!(blocks.iter().all(|&(c0, _)| c0 % granule == 0), "{blocks:?}");
            let lens: Vec<usize> = blocks.iter().filter(|b| b.1 < cols).map(|b| b.1 - b.0).collect();
            if let (Some(lo), Some(hi)) = (lens.iter().min(), lens.iter().max()) {
                assert!(hi - lo <= granule, "{cols} cols, {threads} threads: {blocks:?}");
            }
            assert!(threads > 1 || blocks.len() == 1);
        }
        // 784 columns (49 tiles of 16) on 2 threads: 8 blocks of 6-7 tiles, not 7 of 7.
        assert_eq!(column_blocks(784, 16, 2).count(), 8);
        // 64 columns (4 tiles): 4 blocks.
        assert_eq!(column_blocks(64, 16, 2).count(), 4);
    }
}
