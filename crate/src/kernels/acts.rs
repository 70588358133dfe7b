//! [`PackedActs`]: activations packed per call into a buffer reused across layers and calls, with
//! the per-column code sums the layers dequantize with; [`ActsView`], the part of a pack a
//! micro-kernel reads; and the split of packing over threads, alone or with the work that reads
//! each column block (a GEMM) in the same fork.

use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

use super::packed::{act_len, check_codes, check_shape, Elem, Elems, Scratch};
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
    /// Packed elements per column.
    per_col: usize,
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
            per_col: 0,
            col_sums: Vec::new(),
            scratch: Scratch::default(),
        }
    }
}

/// Columns `c0..c1` of a pack as a micro-kernel reads them, renumbered from 0: the block's packed
/// elements (padded to whole granules at the end of the pack), its code sums and its columns.
/// A column block packed on its own thread is read through one without anyone borrowing the
/// whole buffer while other threads fill the rest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ActsView<'a> {
    pub(super) cols: usize,
    // Read by the SIMD drivers' bounds checks.
    #[cfg_attr(not(all(target_arch = "wasm32", target_feature = "simd128")), allow(dead_code))]
    pub(super) cols_pad: usize,
    pub(super) abits: Bits,
    pub(super) col_sums: &'a [i32],
    pub(super) data: Elems<'a>,
    /// A window pack's (window.rs) instead of a column pack: per group, the offset of its
    /// nibbles (`Lut`) or codes (`Dot8`) from a column's; and the bytes from one bit plane to the
    /// next (`Lut`: a column is a byte in each) or from one column to the next (`Dot8`).
    pub(super) window: Option<(&'a [u32], usize)>,
}

impl<'a> ActsView<'a> {
    /// The packed elements, as the scheme's type.
    #[inline]
    pub(super) fn data<T: Elem>(&self) -> &'a [T] {
        T::of_elems(self.data)
    }
}

/// Activation codes (`[cols][depth]`) for [`PackedActs::pack_each`] and
/// [`pack_gemm_then`](super::pack_gemm_then): given, or a buffer that `fill(c0, c1, block)`
/// writes block by block (`[c1 - c0][depth]`, zeroed by no one), on the thread that then packs
/// the block: an im2col in the same fork as the packing and the GEMM.
pub enum ActCodes<'a> {
    Ready(&'a [u8]),
    Fill(&'a mut [u8], &'a (dyn Fn(usize, usize, &mut [u8]) + Sync)),
}

impl ActCodes<'_> {
    fn len(&self) -> usize {
        match self {
            ActCodes::Ready(c) => c.len(),
            ActCodes::Fill(c, _) => c.len(),
        }
    }
}

/// One block's codes in a split pack: read, or to be filled first.
enum BlockCodes<'a> {
    Ready(&'a [u8]),
    Fill(&'a mut [u8]),
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
        let granule = with_layout!(scheme, L => L::COL_GRANULE);
        let blocks = super::job::column_blocks(cols, granule, threads).map(|(c0, c1)| (c0, c1, ())).collect();
        self.pack_each(ActCodes::Ready(codes), cols, depth, abits, scheme, blocks, threads, &|_, _, ()| {})
    }

    /// Packs like [`pack_threads`](Self::pack_threads), one column block `(c0, c1, x)` of
    /// `blocks` at a time (they cover `0..cols` in order, each starting on a whole granule), and
    /// right after packing a block calls `each(view, c0, x)` on the same thread with the block
    /// as [`ActsView`]: a GEMM then multiplies columns its own thread has just packed, in one
    /// fork with the packing. Afterwards the buffer holds the whole pack, as `pack` leaves it.
    /// A code out of range is reported after every block ran (`each` then saw wrong codes).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pack_each<X: Send>(
        &mut self,
        mut codes: ActCodes<'_>,
        cols: usize,
        depth: usize,
        abits: Bits,
        scheme: Scheme,
        blocks: Vec<(usize, usize, X)>,
        threads: usize,
        each: &(dyn Fn(ActsView<'_>, usize, X) + Sync),
    ) -> Result<()> {
        self.scheme = None;
        check_shape(codes.len(), cols, depth, "activation")?;
        if self.col_sums.len() < cols {
            self.col_sums.resize(cols, 0);
        }
        let ab = abits.get();
        // The packers check the range on the fly (an OR of every code, folded into their single
        // pass over the codes); the slow search for the culprit only runs on failure.
        let any = with_layout!(scheme, L => self.pack_as::<L, X>(&mut codes, cols, depth, abits, blocks, threads, each));
        if ab < 8 && any >> ab != 0 {
            let codes = match &codes {
                ActCodes::Ready(c) => c,
                ActCodes::Fill(c, _) => &**c,
            };
            check_codes(codes, ab, "activation")?;
        }
        self.scheme = Some(scheme);
        self.cols = cols;
        self.depth = depth;
        self.abits = abits;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn pack_as<L: Layout, X: Send>(
        &mut self,
        codes: &mut ActCodes<'_>,
        cols: usize,
        depth: usize,
        abits: Bits,
        blocks: Vec<(usize, usize, X)>,
        threads: usize,
        each: &(dyn Fn(ActsView<'_>, usize, X) + Sync),
    ) -> u8 {
        let ab = abits.get();
        let (cols_pad, n) = act_len::<L>(cols, depth, ab);
        let per_col = L::act_col_len(depth, ab);
        self.cols_pad = cols_pad;
        self.per_col = per_col;
        let (mut dst, mut sums) = (&mut self.scratch.grow::<L::Elem>(n)[..n], &mut self.col_sums[..cols]);
        let (mut ready, mut fill, filler): (&[u8], &mut [u8], _) = match codes {
            ActCodes::Ready(c) => (*c, &mut [], None),
            ActCodes::Fill(c, f) => (&[], &mut **c, Some(*f)),
        };
        let mut parts = Vec::with_capacity(blocks.len());
        let mut next = 0;
        for (c0, c1, x) in blocks {
            // The last block packs the padding up to whole granules.
            let end = if c1 >= cols { cols_pad } else { c1 };
            assert!(c0 == next && c0 % L::COL_GRANULE == 0 && end % L::COL_GRANULE == 0 && c1 <= cols, "column blocks must tile 0..{cols} in granules");
            next = c1;
            let (d, rest) = core::mem::take(&mut dst).split_at_mut((end - c0) * per_col);
            let (s, srest) = core::mem::take(&mut sums).split_at_mut(c1 - c0);
            let src = match filler {
                None => {
                    let (src, rest) = ready.split_at((c1 - c0) * depth);
                    ready = rest;
                    BlockCodes::Ready(src)
                }
                Some(_) => {
                    let (src, rest) = core::mem::take(&mut fill).split_at_mut((c1 - c0) * depth);
                    fill = rest;
                    BlockCodes::Fill(src)
                }
            };
            parts.push((c0, c1, src, end - c0, d, s, x));
            dst = rest;
            sums = srest;
        }
        assert!(next == cols, "column blocks must tile 0..{cols}");
        let any = AtomicU8::new(0);
        let one = |(c0, c1, src, n_pad, d, s, x): (usize, usize, BlockCodes<'_>, usize, &mut [L::Elem], &mut [i32], X)| {
            let src: &[u8] = match (src, filler) {
                (BlockCodes::Fill(src), Some(fill)) => {
                    fill(c0, c1, src);
                    src
                }
                (BlockCodes::Fill(src), None) => src,
                (BlockCodes::Ready(src), _) => src,
            };
            any.fetch_or(L::pack_acts(src, s.len(), n_pad, depth, ab, d, s), Relaxed);
            let view = ActsView { cols: s.len(), cols_pad: n_pad, abits, col_sums: s, data: <L::Elem as Elem>::elems(d), window: None };
            each(view, c0, x);
        };
        match parts.len() {
            1 => one(parts.pop().expect("one part")),
            _ if !cfg!(feature = "threads") => parts.into_iter().for_each(one),
            _ => super::job::run_parts(parts, threads, &one),
        }
        any.into_inner()
    }

    /// Columns `c0..c1` of the pack (`c0` on a whole granule, `c1 <= cols`) as a micro-kernel
    /// reads them; `None` before a pack succeeded.
    pub(super) fn block(&self, c0: usize, c1: usize) -> Option<ActsView<'_>> {
        let scheme = self.scheme?;
        let end = if c1 >= self.cols { self.cols_pad } else { c1 };
        let data = with_layout!(scheme, L => {
            let d = self.scratch.get::<<L as Layout>::Elem>();
            <<L as Layout>::Elem as Elem>::elems(&d[c0 * self.per_col..end * self.per_col])
        });
        Some(ActsView { cols: c1 - c0, cols_pad: end - c0, abits: self.abits, col_sums: &self.col_sums[c0..c1], data, window: None })
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
