//! SIMD128 micro-kernels (core::arch::wasm32). Compiled only when the build enables simd128;
//! which kernels exist is decided at build time, the JS side picks the binary.
//!
//! Tiles are const-generic (`M` rows x `N` columns of i32x4 accumulators); LLVM unrolls them
//! into plain locals and V8 maps those to the 16 xmm registers of x64, so `M * N` plus the
//! `M + N` operand vectors must stay near 16 or the tile spills.

use core::arch::wasm32::*;

use super::{bitserial, dot16, Job};

/// Sums each of four i32x4 vectors across its lanes: `[Σ a, Σ b, Σ c, Σ d]`.
#[inline(always)]
pub(crate) fn reduce4(a: v128, b: v128, c: v128, d: v128) -> v128 {
    let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
    let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
}

/// Reduces a 4-row tile of lane-partial sums and stores it (rows beyond `rows` dropped).
#[inline(always)]
pub(crate) fn store_tile4<const N: usize>(acc: &[[v128; 4]; N], out: &mut [i32], rows: usize, row0: usize, col_local: usize, ncols: usize) {
    for c in 0..N.min(ncols) {
        let v = reduce4(acc[c][0], acc[c][1], acc[c][2], acc[c][3]);
        let base = (col_local + c) * rows + row0;
        if row0 + 4 <= rows {
            // SAFETY: base + 4 <= (col_local + c + 1) * rows <= out.len(), checked by the slice
            // index below in debug builds.
            debug_assert!(base + 4 <= out.len());
            unsafe { v128_store(out.as_mut_ptr().add(base) as *mut v128, v) };
        } else {
            let mut t = [0i32; 4];
            unsafe { v128_store(t.as_mut_ptr() as *mut v128, v) };
            let m = rows - row0;
            out[base..base + m].copy_from_slice(&t[..m]);
        }
    }
}

/// One 4 x N Dot16 tile over the whole (padded) depth. `w` points at row 0 of the tile, rows
/// `kp` apart; `a` likewise for columns.
#[inline(always)]
unsafe fn dot16_tile<const N: usize>(w: *const i16, a: *const i16, kp: usize) -> [[v128; 4]; N] {
    let mut acc = [[i32x4_splat(0); 4]; N];
    let mut k = 0;
    while k < kp {
        let wv: [v128; 4] = core::array::from_fn(|r| v128_load(w.add(r * kp + k) as *const v128));
        for c in 0..N {
            let av = v128_load(a.add(c * kp + k) as *const v128);
            for r in 0..4 {
                acc[c][r] = i32x4_add(acc[c][r], i32x4_dot_i16x8(wv[r], av));
            }
        }
        k += dot16::KB;
    }
    acc
}

pub fn dot16(job: Job<'_>) {
    const N: usize = 2;
    let Job { w, a, c0, c1, out } = job;
    let kp = dot16::padded_depth(w.depth);
    let rows = w.rows;
    debug_assert!(c0 % dot16::NR == 0 && w.rows_pad % 4 == 0);
    // Bounds: column tiles stop below cols_pad (a multiple of NR, itself a multiple of N) and row
    // tiles below rows_pad, so every pointer below stays inside the packed buffers.
    assert!(a.i16s.len() >= a.cols_pad * kp && w.i16s.len() >= w.rows_pad * kp && c1 <= a.cols_pad);
    for col0 in (c0..c1).step_by(N) {
        let ncols = N.min(c1 - col0);
        let ap = unsafe { a.i16s.as_ptr().add(col0 * kp) };
        for row0 in (0..rows).step_by(4) {
            let wp = unsafe { w.i16s.as_ptr().add(row0 * kp) };
            let acc = unsafe { dot16_tile::<N>(wp, ap, kp) };
            store_tile4(&acc, out, rows, row0, col0 - c0, ncols);
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
    let (wb, ab) = (w.wbits as usize, a.abits as usize);
    let rows = w.rows;
    // v128 per row/column: planes x words.
    let (wstride, astride) = (wb * kw, ab * kw);
    assert!(w.words.len() >= w.rows_pad * wstride * 2 && a.words.len() >= a.cols_pad * astride * 2 && c1 <= a.cols_pad);
    let wbase = w.words.as_ptr() as *const v128;
    let abase = a.words.as_ptr() as *const v128;
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
