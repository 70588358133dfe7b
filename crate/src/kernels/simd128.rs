//! SIMD128 micro-kernels (core::arch::wasm32). Compiled only when the build enables simd128;
//! which kernels exist is decided at build time, the JS side picks the binary.
//!
//! Tiles are const-generic (`M` rows x `N` columns of i32x4 accumulators); LLVM unrolls them
//! into plain locals and V8 maps those to the 16 xmm registers of x64, so `M * N` plus the
//! `M + N` operand vectors must stay near 16 or the tile spills.

use core::arch::wasm32::*;
use core::ops::Range;

use super::job::{drivers_by_scheme_name, Job};
use super::{bitserial, dot16, dot8, lut};

drivers_by_scheme_name!();

/// Sums each of four i32x4 vectors across its lanes: `[Σ a, Σ b, Σ c, Σ d]`.
#[inline(always)]
pub(crate) fn reduce4(a: v128, b: v128, c: v128, d: v128) -> v128 {
    let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
    let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
}

/// Stores the first `live` (at most 4) lanes of `v` at `out[at..]`: one v128 store when all 4
/// are (a column's 4 rows of a full panel), else through a copy.
#[inline(always)]
fn store_rows(out: &mut [i32], at: usize, live: usize, v: v128) {
    if live == 4 {
        assert!(at + 4 <= out.len());
        // SAFETY: the 4 i32 written lie inside `out` (asserted).
        unsafe { v128_store(out.as_mut_ptr().add(at) as *mut v128, v) };
    } else {
        let mut t = [0i32; 4];
        // SAFETY: `t` holds exactly one v128.
        unsafe { v128_store(t.as_mut_ptr() as *mut v128, v) };
        out[at..at + live].copy_from_slice(&t[..live]);
    }
}

/// Reduces a 4-row tile of lane-partial sums and stores it (rows beyond `rows` dropped).
#[inline(always)]
pub(crate) fn store_tile4<const N: usize>(acc: &[[v128; 4]; N], out: &mut [i32], rows: usize, row0: usize, col_local: usize, ncols: usize) {
    for c in 0..N.min(ncols) {
        let v = reduce4(acc[c][0], acc[c][1], acc[c][2], acc[c][3]);
        store_rows(out, (col_local + c) * rows + row0, (rows - row0).min(4), v);
    }
}

/// The shallow Dot16 kernels' weights for one pair of depths of a 4-row panel (Dot16's panel
/// layout, dot16.rs): `[w(r, k0), w(r, k1)]` for r = 0..4, `w(r, k1)` zero without a `k1`.
#[inline(always)]
fn pair_weights(panel: &[i16], k0: usize, k1: Option<usize>) -> v128 {
    // Element (i, k) of a panel: (k / 8) * 32 + (i % 4) * 8 + k % 8.
    let at = |r: usize, k: usize| panel[(k / dot16::KB) * dot16::STEP + r * dot16::KB + k % dot16::KB];
    let second = |r: usize| k1.map_or(0, |k| at(r, k));
    i16x8(at(0, k0), second(0), at(1, k0), second(1), at(2, k0), second(2), at(3, k0), second(3))
}

/// One 4 x N Dot16 tile over `kcs` panel steps. `w` points at the row panel, `a` at the first of
/// the N columns inside a column panel; both advance one 32-i16 step per 8 depth.
#[inline(always)]
unsafe fn dot16_tile<const N: usize>(mut w: *const i16, mut a: *const i16, kcs: usize) -> [[v128; 4]; N] {
    let mut acc = [[i32x4_splat(0); 4]; N];
    for _ in 0..kcs {
        let wv: [v128; 4] = core::array::from_fn(|r| v128_load(w.add(r * dot16::KB) as *const v128));
        for c in 0..N {
            let av = v128_load(a.add(c * dot16::KB) as *const v128);
            for r in 0..4 {
                acc[c][r] = i32x4_add(acc[c][r], i32x4_dot_i16x8(wv[r], av));
            }
        }
        w = w.add(dot16::STEP);
        a = a.add(dot16::STEP);
    }
    acc
}

/// Columns per cache block: their activations (64 x 2 x kp bytes) stay in L2 while every row
/// panel passes over them, and each row panel (4 x 2 x kp bytes) stays in L1 meanwhile.
const DOT16_COL_BLOCK: usize = 64;

pub fn dot16(job: Job<'_>) {
    const N: usize = 2;
    let kp = dot16::padded_depth(job.w.depth);
    // Depth 0 (an empty problem) stays on the general tile, which writes its zeros.
    if kp > 0 && job.w.depth <= super::SHALLOW_DEPTH {
        return dot16_shallow(job);
    }
    let Job { w, a, c0, c1, out } = job;
    let kcs = kp / dot16::KB;
    let rows = w.rows;
    // Bounds: column tiles stop below cols_pad (whole panels) and row tiles below rows_pad, so
    // every pointer below stays inside the packed buffers.
    let (wd, ad) = (w.data::<i16>(), a.data::<i16>());
    assert!(ad.len() >= a.cols_pad * kp && wd.len() >= w.rows.div_ceil(dot16::MR) * dot16::MR * kp && c1 <= a.cols_pad);
    assert!(c0 % dot16::NR == 0);
    for cb0 in (c0..c1).step_by(DOT16_COL_BLOCK) {
        let cb1 = (cb0 + DOT16_COL_BLOCK).min(c1);
        for row0 in (0..rows).step_by(dot16::MR) {
            let wp = unsafe { wd.as_ptr().add(row0 * kp) };
            for col0 in (cb0..cb1).step_by(N) {
                let ncols = N.min(c1 - col0);
                // Column col0 within its panel: panel start + (col0 % 4) * 8.
                let ap = unsafe { ad.as_ptr().add((col0 / dot16::NR) * dot16::NR * kp + (col0 % dot16::NR) * dot16::KB) };
                let acc = unsafe { dot16_tile::<N>(wp, ap, kcs) };
                store_tile4(&acc, out, rows, row0, col0 - c0, ncols);
            }
        }
    }
}

/// Dot16 at depth <= 16 (a first conv: 3x3 taps of one channel), where the general tile's
/// 4-lane reductions cost more than its products (3 GMAC/s at depth 9 against 21 at depth 288).
/// Per row panel the weights are regrouped once as i16 pairs of its 4 rows, `[w(r, k), w(r, k+1)]`
/// for r = 0..4, so that one `i32x4.dot_i16x8_s` against a column's pair (k, k+1), splatted from
/// the packed activations (a pair never straddles a step of 8: k is even), gives the 4 rows'
/// partial sums in the 4 lanes: no reduction, and the vector is the column's 4 outputs as `out`
/// lays them out. Pairs past the depth are zero on both sides and skipped.
fn dot16_shallow(job: Job<'_>) {
    match job.w.depth.div_ceil(2) {
        1 => dot16_pairs::<1>(job),
        2 => dot16_pairs::<2>(job),
        3 => dot16_pairs::<3>(job),
        4 => dot16_pairs::<4>(job),
        5 => dot16_pairs::<5>(job),
        6 => dot16_pairs::<6>(job),
        7 => dot16_pairs::<7>(job),
        _ => dot16_pairs::<8>(job),
    }
}

fn dot16_pairs<const P: usize>(job: Job<'_>) {
    let Job { w, a, c0, c1, out } = job;
    let kp = dot16::padded_depth(w.depth);
    let rows = w.rows;
    let (wd, ad) = (w.data::<i16>(), a.data::<i16>());
    let rows_pad = rows.div_ceil(dot16::MR) * dot16::MR;
    assert!(2 * P <= kp && ad.len() >= a.cols_pad * kp && wd.len() >= rows_pad * kp && c1 <= a.cols_pad && c1 <= a.cols);
    // Element (i, k) of a panel layout: panel start + (k / 8) * 32 + (i % 4) * 8 + k % 8.
    let at = |k: usize| (k / dot16::KB) * dot16::STEP + k % dot16::KB;
    for row0 in (0..rows).step_by(dot16::MR) {
        let panel = &wd[row0 * kp..(row0 + dot16::MR) * kp];
        let wp: [v128; P] = core::array::from_fn(|j| pair_weights(panel, 2 * j, Some(2 * j + 1)));
        let live = (rows - row0).min(dot16::MR);
        for col in c0..c1 {
            let base = (col / dot16::NR) * dot16::NR * kp + (col % dot16::NR) * dot16::KB;
            let mut acc = i32x4_splat(0);
            for (j, &wv) in wp.iter().enumerate() {
                // SAFETY: base + at(2j) + 1 < cols_pad * kp (asserted above), so the 4 bytes
                // read lie inside the packed activations.
                let pair = unsafe { v128_load32_splat(ad.as_ptr().add(base + at(2 * j)) as *const u32) };
                acc = i32x4_add(acc, i32x4_dot_i16x8(wv, pair));
            }
            store_rows(out, (col - c0) * rows + row0, live, acc);
        }
    }
}

/// The direct path's kernel (direct.rs) on output rows `ys`: per 4-row panel, the pair weight
/// vectors of `dot16_pairs` (built once per call), against pairs loaded in place from the padded
/// image instead of from packed columns.
pub fn direct_rows(w: &super::PackedWeights, win: &super::Window, image: &[i16], ys: core::ops::Range<usize>, acc: &mut [i32]) {
    match super::direct::pair_offsets(win).len() {
        1 => direct_pairs::<1>(w, win, image, ys, acc),
        2 => direct_pairs::<2>(w, win, image, ys, acc),
        3 => direct_pairs::<3>(w, win, image, ys, acc),
        4 => direct_pairs::<4>(w, win, image, ys, acc),
        5 => direct_pairs::<5>(w, win, image, ys, acc),
        6 => direct_pairs::<6>(w, win, image, ys, acc),
        7 => direct_pairs::<7>(w, win, image, ys, acc),
        8 => direct_pairs::<8>(w, win, image, ys, acc),
        9 => direct_pairs::<9>(w, win, image, ys, acc),
        10 => direct_pairs::<10>(w, win, image, ys, acc),
        11 => direct_pairs::<11>(w, win, image, ys, acc),
        12 => direct_pairs::<12>(w, win, image, ys, acc),
        13 => direct_pairs::<13>(w, win, image, ys, acc),
        14 => direct_pairs::<14>(w, win, image, ys, acc),
        15 => direct_pairs::<15>(w, win, image, ys, acc),
        16 => direct_pairs::<16>(w, win, image, ys, acc),
        n => panic!("{n} pairs per pixel: the direct path takes at most {}", super::direct::MAX_PAIRS),
    }
}

// Out of line: V8 compiles a wasm function whole, on its first call, and with the 16 counts
// inlined `direct_rows` was the largest function a first prediction compiles (38 KB), of which a
// model uses one count.
#[inline(never)]
fn direct_pairs<const P: usize>(w: &super::PackedWeights, win: &super::Window, image: &[i16], ys: core::ops::Range<usize>, acc: &mut [i32]) {
    let kp = dot16::padded_depth(w.depth);
    let (rows, c, wo) = (w.rows, win.c, win.wo);
    let wd = w.data::<i16>();
    let row = (wo + win.kw - 1) * c;
    let offsets: [usize; P] = {
        let o = super::direct::pair_offsets(win);
        core::array::from_fn(|j| o[j])
    };
    let depths: [(usize, Option<usize>); P] = core::array::from_fn(|j| super::direct::pair_depths(win, j));
    // The farthest value any pair of row y reads is (y + kh) * row (direct.rs).
    assert!(image.len() > (ys.end + win.kh - 1) * row && acc.len() >= ys.len() * wo * rows && wd.len() >= rows.div_ceil(dot16::MR) * dot16::MR * kp);
    for row0 in (0..rows).step_by(dot16::MR) {
        let panel = &wd[row0 * kp..(row0 + dot16::MR) * kp];
        let wp: [v128; P] = core::array::from_fn(|j| pair_weights(panel, depths[j].0, depths[j].1));
        let live = (rows - row0).min(dot16::MR);
        for (i, y) in ys.clone().enumerate() {
            let base = unsafe { image.as_ptr().add(y * row) };
            for x in 0..wo {
                // SAFETY: x * c + offsets[j] + 1 <= (wo - 1) * c + (kh - 1) * row + kw * c, so
                // every load ends at or below (y + kh) * row from the image's start, inside it
                // (asserted).
                let px = unsafe { base.add(x * c) };
                let mut sum = i32x4_splat(0);
                for (&wv, &o) in wp.iter().zip(&offsets) {
                    let pair = unsafe { v128_load32_splat(px.add(o) as *const u32) };
                    sum = i32x4_add(sum, i32x4_dot_i16x8(wv, pair));
                }
                store_rows(acc, (i * wo + x) * rows + row0, live, sum);
            }
        }
    }
}

/// Adds `2^shift * popcount(w_r & a_c)` summed over `kw` words into every (r, c) of a 4 x N
/// tile. Byte counters take at most 8 per word, so they are widened every 31 words.
#[inline(always)]
unsafe fn bitserial_pair<const N: usize>(w: [*const v128; 4], a: [*const v128; N], kw: usize, shift: u32, acc: &mut [[v128; 4]; N]) {
    let mut k = 0;
    while k < kw {
        let end = (k + 31).min(kw);
        let mut cnt = [[i8x16_splat(0); 4]; N];
        while k < end {
            let wv: [v128; 4] = core::array::from_fn(|r| v128_load(w[r].add(k)));
            for c in 0..N {
                let av = v128_load(a[c].add(k));
                for r in 0..4 {
                    cnt[c][r] = i8x16_add(cnt[c][r], i8x16_popcnt(v128_and(wv[r], av)));
                }
            }
            k += 1;
        }
        for c in 0..N {
            for r in 0..4 {
                let s = i32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(cnt[c][r]));
                acc[c][r] = i32x4_add(acc[c][r], i32x4_shl(s, shift));
            }
        }
    }
}

pub fn bitserial(job: Job<'_>) {
    const N: usize = 2;
    let Job { w, a, c0, c1, out } = job;
    let kw = bitserial::words(w.depth);
    let (wb, ab) = (w.wbits.count(), a.abits.count());
    let rows = w.rows;
    // v128 per row/column: planes x words.
    let (wstride, astride) = (wb * kw, ab * kw);
    let (wd, ad) = (w.data::<u64>(), a.data::<u64>());
    assert!(wd.len() >= w.rows.div_ceil(bitserial::MR) * bitserial::MR * wstride * 2 && ad.len() >= a.cols_pad * astride * 2 && c1 <= a.cols_pad);
    let wbase = wd.as_ptr() as *const v128;
    let abase = ad.as_ptr() as *const v128;
    for col0 in (c0..c1).step_by(N) {
        let ncols = N.min(c1 - col0);
        for row0 in (0..rows).step_by(4) {
            let mut acc = [[i32x4_splat(0); 4]; N];
            for i in 0..wb {
                let wp: [*const v128; 4] = core::array::from_fn(|r| unsafe { wbase.add((row0 + r) * wstride + i * kw) });
                for j in 0..ab {
                    let ap: [*const v128; N] = core::array::from_fn(|c| unsafe { abase.add((col0 + c) * astride + j * kw) });
                    unsafe { bitserial_pair::<N>(wp, ap, kw, (i + j) as u32, &mut acc) };
                }
            }
            store_tile4(&acc, out, rows, row0, col0 - c0, ncols);
        }
    }
}

/// The table lookup; relaxed SIMD's swizzle skips the out-of-range fix-up (indices here are
/// always nibbles, so both give the same bytes).
#[inline(always)]
fn swizzle<const RELAXED: bool>(table: v128, idx: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    if RELAXED {
        return i8x16_relaxed_swizzle(table, idx);
    }
    i8x16_swizzle(table, idx)
}

/// Runs `add(groups, acc8)` over the groups `0..g_n` in runs of `per8` (what a byte accumulator
/// takes), widening each run's bytes into u16 lanes, and those every 256 runs into `acc32` (i32
/// lanes = columns, 4 vectors per 16 columns) scaled by `2^shift`: the accumulator ladder both
/// Lut passes climb.
#[inline(always)]
unsafe fn lut_ladder<const NB: usize>(g_n: usize, per8: usize, shift: u32, acc32: &mut [[[v128; 4]; lut::MR]; NB], mut add: impl FnMut(Range<usize>, &mut [[v128; lut::MR]; NB])) {
    let mut g = 0;
    while g < g_n {
        let chunk_end = (g + per8 * 256).min(g_n);
        let mut acc16 = [[[u16x8_splat(0); 2]; lut::MR]; NB];
        while g < chunk_end {
            let end = (g + per8).min(chunk_end);
            let mut acc8 = [[u8x16_splat(0); lut::MR]; NB];
            add(g..end, &mut acc8);
            g = end;
            for b in 0..NB {
                for r in 0..lut::MR {
                    acc16[b][r][0] = u16x8_add(acc16[b][r][0], u16x8_extend_low_u8x16(acc8[b][r]));
                    acc16[b][r][1] = u16x8_add(acc16[b][r][1], u16x8_extend_high_u8x16(acc8[b][r]));
                }
            }
        }
        for b in 0..NB {
            for r in 0..lut::MR {
                let q = &mut acc32[b][r];
                let h = acc16[b][r];
                q[0] = i32x4_add(q[0], i32x4_shl(u32x4_extend_low_u16x8(h[0]), shift));
                q[1] = i32x4_add(q[1], i32x4_shl(u32x4_extend_high_u16x8(h[0]), shift));
                q[2] = i32x4_add(q[2], i32x4_shl(u32x4_extend_low_u16x8(h[1]), shift));
                q[3] = i32x4_add(q[3], i32x4_shl(u32x4_extend_high_u16x8(h[1]), shift));
            }
        }
    }
}

/// Group `g`'s index vector of block `b`: a window pack (window.rs) keeps each group's index
/// bytes at an offset from the column's, unaligned; a column pack, one after the other.
#[inline(always)]
unsafe fn lut_index<const NB: usize, const WINDOW: bool>(idx: &[*const v128; NB], offsets: *const u32, b: usize, g: usize) -> v128 {
    if WINDOW {
        v128_load((idx[b] as *const u8).add(*offsets.add(g) as usize) as *const v128)
    } else {
        v128_load(idx[b].add(g))
    }
}

/// One 4-row x (16 * NB)-column Lut tile for one (digit, plane) pair, added into `acc32` scaled
/// by `2^shift`; byte accumulators take `steps` lookups (`lut_ladder`).
#[inline(always)]
unsafe fn lut_pass<const NB: usize, const RELAXED: bool, const WINDOW: bool>(
    tables: *const v128,
    idx: [*const v128; NB],
    offsets: *const u32,
    g_n: usize,
    steps: usize,
    shift: u32,
    acc32: &mut [[[v128; 4]; lut::MR]; NB],
) {
    lut_ladder(g_n, steps, shift, acc32, |groups, acc8| {
        for g in groups {
            let t: [v128; lut::MR] = core::array::from_fn(|r| v128_load(tables.add(g * lut::MR + r)));
            for b in 0..NB {
                let i = lut_index::<NB, WINDOW>(&idx, offsets, b, g);
                for r in 0..lut::MR {
                    acc8[b][r] = u8x16_add(acc8[b][r], swizzle::<RELAXED>(t[r], i));
                }
            }
        }
    });
}

/// `lut_pass` for 1-bit weights, whose tables pair two rows (lut.rs: row 2h in each entry's low
/// nibble, 2h+1 in its high one, each at most 4). Per group: 2 table loads and 2 lookups per
/// block where `lut_pass` takes 4 of each. Three lookups sum in one byte without a carry between
/// the nibbles (at most 12 each); then the nibbles split into the rows' byte accumulators (mask,
/// and 16-bit shift and mask), which take 21 such splits (at most 252).
#[inline(always)]
unsafe fn lut_pass_paired<const NB: usize, const RELAXED: bool, const WINDOW: bool>(
    tables: *const v128,
    idx: [*const v128; NB],
    offsets: *const u32,
    g_n: usize,
    shift: u32,
    acc32: &mut [[[v128; 4]; lut::MR]; NB],
) {
    const SUMMED: usize = 3;
    const SPLITS: usize = 21;
    let low = u8x16_splat(0x0f);
    lut_ladder(g_n, SUMMED * SPLITS, shift, acc32, |groups, acc8| {
        let mut g = groups.start;
        while g < groups.end {
            let stop = (g + SUMMED).min(groups.end);
            let mut packed = [[u8x16_splat(0); 2]; NB];
            while g < stop {
                let t = [v128_load(tables.add(2 * g)), v128_load(tables.add(2 * g + 1))];
                for b in 0..NB {
                    let i = lut_index::<NB, WINDOW>(&idx, offsets, b, g);
                    for h in 0..2 {
                        packed[b][h] = u8x16_add(packed[b][h], swizzle::<RELAXED>(t[h], i));
                    }
                }
                g += 1;
            }
            for b in 0..NB {
                for h in 0..2 {
                    acc8[b][2 * h] = u8x16_add(acc8[b][2 * h], v128_and(packed[b][h], low));
                    // A 16-bit shift and the mask: V8 lowers a byte shift to five instructions
                    // (a shift, then a mask it builds each time).
                    acc8[b][2 * h + 1] = u8x16_add(acc8[b][2 * h + 1], v128_and(u16x8_shr(packed[b][h], 4), low));
                }
            }
        }
    });
}

/// Table lookups a u8 lane can accumulate without overflow: each adds at most 4 * digit max.
#[inline(always)]
fn lut_u8_steps(dbits: u32) -> usize {
    255 / (lut::GROUP * ((1usize << dbits) - 1))
}

#[inline(always)]
fn lut_tile<const NB: usize, const RELAXED: bool, const WINDOW: bool>(job: &mut Job<'_>, col0: usize, row0: usize) {
    let (w, a) = (job.w, job.a);
    let g_n = lut::groups(w.depth);
    let (d_n, dbits) = lut::digits(w.wbits.get());
    let (vecs, paired) = (lut::vectors(w.wbits.get()), lut::paired(w.wbits.get()));
    let ab = a.abits.count();
    let steps = lut_u8_steps(dbits);
    let (rt, cb) = (row0 / lut::MR, col0 / lut::LANES);
    let mut acc32 = [[[i32x4_splat(0); 4]; lut::MR]; NB];
    let wbase = w.data::<u8>().as_ptr() as *const v128;
    let abase = a.data::<u8>().as_ptr() as *const v128;
    let offsets = a.window.map_or(core::ptr::null(), |(o, _)| o.as_ptr());
    for d in 0..d_n {
        // SAFETY (pointers): tile (rt, d) of the tables and blocks cb..cb+NB of the indices lie
        // inside the buffers; the callers assert the buffer sizes and NB <= blocks left.
        let tables = unsafe { wbase.add((rt * d_n + d) * g_n * vecs) };
        for j in 0..ab {
            let idx: [*const v128; NB] = core::array::from_fn(|b| unsafe {
                match a.window {
                    Some((_, stride)) => (abase as *const u8).add(j * stride + col0 + b * lut::LANES) as *const v128,
                    None => abase.add(((cb + b) * ab + j) * g_n),
                }
            });
            let shift = j as u32 + d as u32 * dbits;
            if paired {
                unsafe { lut_pass_paired::<NB, RELAXED, WINDOW>(tables, idx, offsets, g_n, shift, &mut acc32) };
            } else {
                unsafe { lut_pass::<NB, RELAXED, WINDOW>(tables, idx, offsets, g_n, steps, shift, &mut acc32) };
            }
        }
    }
    let rows = w.rows;
    let m = lut::MR.min(rows - row0);
    for (b, blk) in acc32.iter().enumerate() {
        let first = col0 + b * lut::LANES;
        if first >= job.c1 {
            break;
        }
        let n = lut::LANES.min(job.c1 - first);
        let mut t = [[0i32; 16]; lut::MR];
        for r in 0..m {
            for q in 0..4 {
                unsafe { v128_store(t[r].as_mut_ptr().add(q * 4) as *mut v128, blk[r][q]) };
            }
        }
        for lane in 0..n {
            let base = (first + lane - job.c0) * rows + row0;
            for r in 0..m {
                job.out[base + r] = t[r][lane];
            }
        }
    }
}

fn lut_impl<const RELAXED: bool>(mut job: Job<'_>) {
    let (w, a) = (job.w, job.a);
    let g_n = lut::groups(w.depth);
    let (d_n, _) = lut::digits(w.wbits.get());
    assert!(w.data::<u8>().len() >= w.rows.div_ceil(lut::MR) * d_n * g_n * lut::vectors(w.wbits.get()) * 16);
    let ab = a.abits.count();
    match a.window {
        // Every load of a window pack, the last plane's farthest group at the last lane, inside it.
        Some((offsets, stride)) => {
            let far = offsets.iter().copied().max().unwrap_or(0) as usize;
            assert!(offsets.len() == g_n && a.data::<u8>().len() >= (ab - 1) * stride + far + a.cols_pad);
        }
        None => assert!(a.data::<u8>().len() >= a.cols_pad * ab * g_n),
    }
    assert!(job.c1 <= a.cols_pad && job.c0 % lut::LANES == 0);
    let window = a.window.is_some();
    let mut col0 = job.c0;
    while col0 < job.c1 {
        let blocks_left = (job.c1 - col0).div_ceil(lut::LANES);
        for row0 in (0..w.rows).step_by(lut::MR) {
            match (blocks_left >= 2, window) {
                (true, false) => lut_tile::<2, RELAXED, false>(&mut job, col0, row0),
                (false, false) => lut_tile::<1, RELAXED, false>(&mut job, col0, row0),
                (true, true) => lut_tile::<2, RELAXED, true>(&mut job, col0, row0),
                (false, true) => lut_tile::<1, RELAXED, true>(&mut job, col0, row0),
            }
        }
        col0 += lut::LANES * blocks_left.min(2);
    }
}

pub fn lut(job: Job<'_>) {
    lut_impl::<false>(job)
}

#[cfg(target_feature = "relaxed-simd")]
pub fn lut_relaxed(job: Job<'_>) {
    lut_impl::<true>(job)
}

/// Reduces a 4-row x N tile, adds `offset * Σ a` per column (Dot8's weight shift) and stores it.
#[inline(always)]
pub(crate) fn store_tile4_offset<const N: usize>(acc: &[[v128; 4]; N], out: &mut [i32], rows: usize, row0: usize, col0: usize, c0: usize, ncols: usize, offset: i32, col_sums: &[i32]) {
    let mut acc = *acc;
    if offset != 0 {
        for c in 0..N.min(ncols) {
            // Lane 0 of row r's accumulator goes into row r's sum, so adding there is enough.
            let fix = offset * col_sums[col0 + c];
            for r in 0..4 {
                acc[c][r] = i32x4_add(acc[c][r], i32x4(fix, 0, 0, 0));
            }
        }
    }
    store_tile4(&acc, out, rows, row0, col0 - c0, ncols);
}

/// Where a Dot8 tile reads its activations: [`Panel`] or [`Windowed`]. The depth chunks come in
/// runs whose chunks lie a fixed distance apart, so that the tile walks each run by pointer
/// increments, where an offset per chunk would add a scalar load and two adds to every step of
/// a loop of a dozen SIMD instructions.
pub(crate) trait Dot8Acts: Copy {
    /// Runs of a `kcs`-chunk depth, and chunks per run.
    fn runs(self, kcs: usize) -> (usize, usize);
    /// Column `c`'s 16 bytes of chunk `j` of run `r`.
    unsafe fn at(self, r: usize, j: usize, c: usize) -> *const u8;
}

/// A column pack's panel (dot8.rs), from a tile's first column: one run.
#[derive(Clone, Copy)]
pub(crate) struct Panel(*const u8);

impl Dot8Acts for Panel {
    fn runs(self, kcs: usize) -> (usize, usize) {
        (1, kcs)
    }
    #[inline(always)]
    unsafe fn at(self, _: usize, j: usize, c: usize) -> *const u8 {
        self.0.add(j * dot8::STEP + c * dot8::KB)
    }
}

/// A window pack's padded image of codes (window.rs), from a tile's first column: a run per
/// kernel row (its taps' channels are `kw * c` consecutive codes), runs `row` bytes apart,
/// columns `col` bytes apart.
#[derive(Clone, Copy)]
pub(crate) struct Windowed {
    a: *const u8,
    runs: usize,
    len: usize,
    row: usize,
    col: usize,
}

impl Windowed {
    /// The run structure of a window pack's chunk offsets (window.rs: tap `(ky, kx)`'s chunk
    /// `k` at `(ky * pitch + kx) * c + 16 k`), checked, for columns `col` bytes apart.
    fn new(a: *const u8, offsets: &[u32], col: usize) -> Windowed {
        let len = offsets.iter().zip(offsets.iter().skip(1)).take_while(|(x, y)| **y == **x + dot8::KB as u32).count() + 1;
        let row = offsets.get(len).map_or(0, |&o| o as usize);
        let runs = offsets.len() / len;
        let laid_out = runs * len == offsets.len() && offsets.iter().enumerate().all(|(k, &o)| o as usize == (k / len) * row + (k % len) * dot8::KB);
        assert!(laid_out, "a window pack's chunks lie in runs of kernel rows");
        Windowed { a, runs, len, row, col }
    }
}

impl Dot8Acts for Windowed {
    fn runs(self, _: usize) -> (usize, usize) {
        (self.runs, self.len)
    }
    #[inline(always)]
    unsafe fn at(self, r: usize, j: usize, c: usize) -> *const u8 {
        self.a.add(r * self.row + j * dot8::KB + c * self.col)
    }
}

/// One 4-row x 2-column Dot8 tile over `kcs` depth chunks: `mac(w, a, acc)` adds the products
/// of one row's 16 weight bytes and one column's 16 activation bytes into that pair's i32 lanes
/// (the SIMD128 and relaxed-SIMD kernels differ only there).
///
/// # Safety
/// `w` and `a` must hold `kcs` chunks of the tile's rows and columns.
#[inline(always)]
unsafe fn dot8_tile<A: Dot8Acts>(w: *const u8, a: A, kcs: usize, mac: impl Fn(v128, v128, v128) -> v128) -> [[v128; 4]; 2] {
    let mut acc = [[i32x4_splat(0); 4]; 2];
    let (runs, len) = a.runs(kcs);
    let mut wk = w;
    for r in 0..runs {
        for j in 0..len {
            let wv: [v128; 4] = core::array::from_fn(|i| v128_load(wk.add(i * dot8::KB) as *const v128));
            for (c, accc) in acc.iter_mut().enumerate() {
                let av = v128_load(a.at(r, j, c) as *const v128);
                for (x, &wr) in accc.iter_mut().zip(&wv) {
                    *x = mac(wr, av, *x);
                }
            }
            wk = wk.add(dot8::STEP);
        }
    }
    acc
}

/// Plain SIMD128's multiply-add for [`dot8_tile`]: the bytes widened to i16 (it has no 8-bit
/// dot product).
#[inline(always)]
fn widened_mac(w: v128, a: v128, acc: v128) -> v128 {
    let lo = i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), u16x8_extend_low_u8x16(a));
    let hi = i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), u16x8_extend_high_u8x16(a));
    i32x4_add(acc, i32x4_add(lo, hi))
}

/// Walks a Dot8 problem in 4 x 2 tiles of [`dot8_tile`] with `mac` (shared with the relaxed
/// kernel), on a column pack or a window pack.
#[inline(always)]
pub(crate) fn dot8_driver(job: Job<'_>, mac: impl Fn(v128, v128, v128) -> v128 + Copy) {
    let kp = dot8::padded_depth(job.w.depth);
    let kcs = kp / dot8::KB;
    // Two activation planes (8-bit activations, dot8.rs): acc = 2 Σ w (a >> 1) + Σ w (a & 1).
    let split = dot8::act_planes(job.a.abits.get()) == 2;
    let wd = job.w.data::<u8>();
    let ad = job.a.data::<u8>();
    assert!(wd.len() >= job.w.rows.div_ceil(dot8::P) * dot8::P * kp && job.c1 <= job.a.cols_pad && job.c0 % dot8::P == 0);
    match job.a.window {
        None => {
            let akp = if split { 2 * kp } else { kp };
            assert!(ad.len() >= job.a.cols_pad * akp);
            // SAFETY (every pointer below): columns below cols_pad and kcs chunks (twice when
            // split: the second plane's steps follow the first's in the panel) lie in the pack.
            dot8_walk(job, kcs, mac, |col0| {
                let p = unsafe { ad.as_ptr().add((col0 / dot8::P) * dot8::P * akp + (col0 % dot8::P) * dot8::KB) };
                (Panel(p), split.then(|| Panel(unsafe { p.add(kcs * dot8::STEP) })))
            })
        }
        Some((offsets, stride)) => {
            // A window pack holds one plane; its farthest load, the last padded column's last
            // chunk, lies inside it.
            let far = offsets.iter().map(|&o| o as usize).max().unwrap_or(0) + dot8::KB;
            assert!(!split && offsets.len() == kcs && (job.a.cols_pad == 0 || ad.len() >= (job.a.cols_pad - 1) * stride + far));
            let runs = Windowed::new(ad.as_ptr(), offsets, stride);
            dot8_walk(job, kcs, mac, |col0| (Windowed { a: unsafe { ad.as_ptr().add(col0 * stride) }, ..runs }, None))
        }
    }
}

/// The tiles of [`dot8_driver`]: `acts(col0)` gives a tile's activations and, for 8-bit
/// activations in two planes, the second plane's.
#[inline(always)]
fn dot8_walk<A: Dot8Acts>(job: Job<'_>, kcs: usize, mac: impl Fn(v128, v128, v128) -> v128 + Copy, acts: impl Fn(usize) -> (A, Option<A>)) {
    const N: usize = 2;
    let Job { w, a, c0, c1, out } = job;
    let rows = w.rows;
    let kp = kcs * dot8::KB;
    let offset = dot8::weight_offset(w.wbits.get());
    let wd = w.data::<u8>();
    for cb0 in (c0..c1).step_by(DOT16_COL_BLOCK) {
        let cb1 = (cb0 + DOT16_COL_BLOCK).min(c1);
        for row0 in (0..rows).step_by(dot8::P) {
            let wp = unsafe { wd.as_ptr().add(row0 * kp) };
            for col0 in (cb0..cb1).step_by(N) {
                let ncols = N.min(c1 - col0);
                let (ap, low) = acts(col0);
                // SAFETY: as dot8_driver asserts.
                let mut acc = unsafe { dot8_tile(wp, ap, kcs, mac) };
                if let Some(low) = low {
                    let low = unsafe { dot8_tile(wp, low, kcs, mac) };
                    for (ac, lc) in acc.iter_mut().zip(&low) {
                        for (x, &l) in ac.iter_mut().zip(lc) {
                            *x = i32x4_add(i32x4_shl(*x, 1), l);
                        }
                    }
                }
                store_tile4_offset(&acc, out, rows, row0, col0, c0, ncols, offset, &a.col_sums);
            }
        }
    }
}

pub fn dot8(job: Job<'_>) {
    dot8_driver(job, widened_mac)
}
