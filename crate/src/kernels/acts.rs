//! [`PackedActs`]: activations packed per call into a buffer reused across layers and calls, with
//! the per-column code sums the layers dequantize with, and the split of packing over threads.

use super::packed::{act_len, check_codes, check_shape, Elem, Scratch};
use super::scheme::{with_layout, Layout};
use super::Scheme;
use crate::bits::Bits;
use crate::error::Result;

/// Activations packed per call. A reusable buffer: it grows to the largest layer and never
/// shrinks, so a model reuses one across layers and calls without allocating.
#[derive(Clone, Debug)]
pub struct PackedActs {
    /// `None` until a pack succeeds (and again while one runs).
    pub(super) scheme: Option<Scheme>,
    pub(super) cols: usize,
    pub(super) depth: usize,
    pub(super) abits: Bits,
    pub(super) cols_pad: usize,
    pub(super) col_sums: Vec<i32>,
    scratch: Scratch,
}

impl Default for PackedActs {
    fn default() -> Self {
        PackedActs {
            scheme: None,
            cols: 0,
            depth: 0,
            abits: Bits::MIN,
            cols_pad: 0,
            col_sums: Vec::new(),
            scratch: Scratch::default(),
        }
    }
}

impl PackedActs {
    pub fn new() -> Self {
        Self::default()
    }

    /// `codes`: `[cols][depth]`, each `< 2^abits`. Packs for `scheme` and computes per-column
    /// code sums. On error the buffer holds no valid pack.
    pub fn pack(&mut self, codes: &[u8], cols: usize, depth: usize, abits: Bits, scheme: Scheme) -> Result<()> {
        self.pack_threads(codes, cols, depth, abits, scheme, 1)
    }

    /// [`pack`](Self::pack) with the columns split over `threads` threads (feature
    /// `threads`; ignored without it). Packing is a fifth of a 1-bit layer's time, so a
    /// multi-threaded GEMM needs a multi-threaded pack to scale.
    pub fn pack_threads(&mut self, codes: &[u8], cols: usize, depth: usize, abits: Bits, scheme: Scheme, threads: usize) -> Result<()> {
        self.scheme = None;
        check_shape(codes, cols, depth, "activation")?;
        if self.col_sums.len() < cols {
            self.col_sums.resize(cols, 0);
        }
        let ab = abits.get();
        // The packers check the range on the fly (an OR of every code, folded into their single
        // pass over the codes); the slow search for the culprit only runs on failure.
        let any = with_layout!(scheme, L => self.pack_as::<L>(codes, cols, depth, ab, threads));
        if ab < 8 && any >> ab != 0 {
            check_codes(codes, ab, "activation")?;
        }
        self.scheme = Some(scheme);
        self.cols = cols;
        self.depth = depth;
        self.abits = abits;
        Ok(())
    }

    fn pack_as<L: Layout>(&mut self, codes: &[u8], cols: usize, depth: usize, abits: u8, threads: usize) -> u8 {
        let (cols_pad, n) = act_len::<L>(cols, depth, abits);
        self.cols_pad = cols_pad;
        let shape = Cols { cols, cols_pad, depth, granule: L::COL_GRANULE, per_col: L::act_col_len(depth, abits), threads };
        let dst = self.scratch.grow::<L::Elem>(n);
        split_pack(&shape, codes, dst, &mut self.col_sums[..cols], &|src, n, n_pad, dst, sums| {
            L::pack_acts(src, n, n_pad, depth, abits, dst, sums)
        })
    }

    /// The packed elements, as the scheme's type (the buffer may be longer than this pack).
    #[inline]
    pub(super) fn data<T: Elem>(&self) -> &[T] {
        self.scratch.get::<T>()
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
    pub fn abits(&self) -> Bits {
        self.abits
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

/// Runs `f` on disjoint column ranges (whole granules), over `c.threads` threads.
fn split_pack<T: Send>(c: &Cols, codes: &[u8], dst: &mut [T], sums: &mut [i32], f: &PackFn<'_, T>) -> u8 {
    let threads = if cfg!(feature = "threads") { c.threads } else { 1 };
    let mut parts = Vec::new();
    let (mut dst, mut sums) = (&mut dst[..c.cols_pad * c.per_col], sums);
    for (c0, c1) in super::job::column_blocks(c.cols_pad, c.granule, threads) {
        let (n0, n1) = (c0.min(c.cols), c1.min(c.cols));
        let (d, rest) = core::mem::take(&mut dst).split_at_mut((c1 - c0) * c.per_col);
        let (s, srest) = core::mem::take(&mut sums).split_at_mut(n1 - n0);
        parts.push((&codes[n0 * c.depth..n1 * c.depth], n1 - n0, c1 - c0, d, s));
        dst = rest;
        sums = srest;
    }
    if parts.len() == 1 {
        let (src, n, n_pad, d, s) = parts.pop().expect("one part");
        return f(src, n, n_pad, d, s);
    }
    let any = core::sync::atomic::AtomicU8::new(0);
    super::job::run_parts(parts, threads, &|(src, n, n_pad, d, s)| {
        any.fetch_or(f(src, n, n_pad, d, s), core::sync::atomic::Ordering::Relaxed);
    });
    any.into_inner()
}
