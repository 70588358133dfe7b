//! SIMD128 micro-kernels (core::arch::wasm32). Compiled only when the build enables simd128;
//! which kernels exist is decided at build time, the JS side picks the binary.
//!
//! Tiles are const-generic (`M` rows x `N` columns of i32x4 accumulators); LLVM unrolls them
//! into plain locals and V8 maps those to the 16 xmm registers of x64, so `M * N` plus the
//! `M + N` operand vectors must stay near 16 or the tile spills.

use core::arch::wasm32::*;

use super::{bitserial, dot16, lut, Job};

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

/// SIMD version of [`bitserial::pack_planes`] (same layout): per 16 codes and plane, one shift
/// moves bit `j` to each byte's sign bit and `i8x16.bitmask` gathers the 16 bits.
pub fn pack_planes(src: &[u8], n: usize, n_pad: usize, depth: usize, bits: u8, dst: &mut [u64]) {
    let kw = bitserial::words(depth);
    let bits = bits as usize;
    let stride = bits * kw * bitserial::U64_PER_WORD;
    assert!(dst.len() >= n_pad * stride && src.len() >= n * depth);
    for i in 0..n_pad {
        let d = &mut dst[i * stride..(i + 1) * stride];
        if i >= n {
            d.fill(0);
            continue;
        }
        let s = &src[i * depth..(i + 1) * depth];
        // u16 view of the row: plane j, word w, group q (16 depth indices) is u16 index
        // (j * kw + w) * 8 + q. Little-endian, so bit t of that u16 is depth 16 * (8w + q) + t.
        let d16 = d.as_mut_ptr() as *mut u16;
        let groups = kw * 8;
        for g in 0..groups {
            let k = g * 16;
            let v = if k + 16 <= depth {
                unsafe { v128_load(s.as_ptr().add(k) as *const v128) }
            } else {
                let mut t = [0u8; 16];
                if k < depth {
                    t[..depth - k].copy_from_slice(&s[k..]);
                }
                unsafe { v128_load(t.as_ptr() as *const v128) }
            };
            for j in 0..bits {
                let m = i8x16_bitmask(i8x16_shl(v, (7 - j) as u32));
                // SAFETY: (j * kw + w) * 8 + q < bits * kw * 8 = stride * 4 u16s.
                unsafe { *d16.add(j * groups + g) = m };
            }
        }
    }
}

/// SIMD version of [`dot16::widen`] (same layout and sums).
pub fn widen(src: &[u8], n: usize, n_pad: usize, depth: usize, dst: &mut [i16], mut sums: Option<&mut [i32]>) {
    let kp = dot16::padded_depth(depth);
    assert!(dst.len() >= n_pad * kp && src.len() >= n * depth);
    for i in 0..n_pad {
        let d = &mut dst[i * kp..(i + 1) * kp];
        if i >= n {
            d.fill(0);
            continue;
        }
        let s = &src[i * depth..(i + 1) * depth];
        let mut k = 0;
        // u16 lanes hold at most 255 * 2 per step; 4 partial sums per i32 lane afterwards.
        let mut sum = i32x4_splat(0);
        while k + 16 <= depth {
            let v = unsafe { v128_load(s.as_ptr().add(k) as *const v128) };
            let lo = u16x8_extend_low_u8x16(v);
            let hi = u16x8_extend_high_u8x16(v);
            unsafe {
                v128_store(d.as_mut_ptr().add(k) as *mut v128, lo);
                v128_store(d.as_mut_ptr().add(k + 8) as *mut v128, hi);
            }
            sum = i32x4_add(sum, i32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(v)));
            k += 16;
        }
        let mut tail = 0i32;
        for t in k..depth {
            d[t] = s[t] as i16;
            tail += s[t] as i32;
        }
        d[depth..].fill(0);
        if let Some(sums) = sums.as_deref_mut() {
            sums[i] = i32x4_extract_lane::<0>(sum)
                + i32x4_extract_lane::<1>(sum)
                + i32x4_extract_lane::<2>(sum)
                + i32x4_extract_lane::<3>(sum)
                + tail;
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

/// One 4-row x (16 * NB)-column Lut tile for one (digit, plane) pair, added into `acc32`
/// (i32 lanes = columns, 4 vectors per 16 columns) scaled by `2^shift`. Byte accumulators
/// take `steps` lookups, u16 ones 256 flushes, before widening.
#[inline(always)]
unsafe fn lut_pass<const NB: usize, const RELAXED: bool>(
    tables: *const v128,
    idx: [*const v128; NB],
    g_n: usize,
    steps: usize,
    shift: u32,
    acc32: &mut [[[v128; 4]; lut::MR]; NB],
) {
    let mut g = 0;
    while g < g_n {
        let chunk_end = (g + steps * 256).min(g_n);
        let mut acc16 = [[[u16x8_splat(0); 2]; lut::MR]; NB];
        while g < chunk_end {
            let end = (g + steps).min(chunk_end);
            let mut acc8 = [[u8x16_splat(0); lut::MR]; NB];
            while g < end {
                let t: [v128; lut::MR] = core::array::from_fn(|r| v128_load(tables.add(g * lut::MR + r)));
                for b in 0..NB {
                    let i = v128_load(idx[b].add(g));
                    for r in 0..lut::MR {
                        acc8[b][r] = u8x16_add(acc8[b][r], swizzle::<RELAXED>(t[r], i));
                    }
                }
                g += 1;
            }
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

#[inline(always)]
fn lut_tile<const NB: usize, const RELAXED: bool>(job: &mut Job<'_>, col0: usize, row0: usize) {
    let (w, a) = (job.w, job.a);
    let g_n = lut::groups(w.depth);
    let (d_n, dbits) = lut::digits(w.wbits);
    let ab = a.abits as usize;
    let steps = lut::u8_steps(w.wbits);
    let (rt, cb) = (row0 / lut::MR, col0 / lut::LANES);
    let mut acc32 = [[[i32x4_splat(0); 4]; lut::MR]; NB];
    let wbase = w.bytes.as_ptr() as *const v128;
    let abase = a.bytes.as_ptr() as *const v128;
    for d in 0..d_n {
        // SAFETY (pointers): tile (rt, d) of the tables and blocks cb..cb+NB of the indices lie
        // inside the buffers; the callers assert the buffer sizes and NB <= blocks left.
        let tables = unsafe { wbase.add((rt * d_n + d) * g_n * lut::MR) };
        for j in 0..ab {
            let idx: [*const v128; NB] = core::array::from_fn(|b| unsafe { abase.add(((cb + b) * ab + j) * g_n) });
            unsafe { lut_pass::<NB, RELAXED>(tables, idx, g_n, steps, j as u32 + d as u32 * dbits, &mut acc32) };
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
    let (d_n, _) = lut::digits(w.wbits);
    assert!(w.bytes.len() >= w.rows_pad * d_n * g_n * 16);
    assert!(a.bytes.len() >= a.cols_pad * a.abits as usize * g_n && job.c1 <= a.cols_pad);
    assert!(job.c0 % lut::LANES == 0);
    let mut col0 = job.c0;
    while col0 < job.c1 {
        let blocks_left = (job.c1 - col0).div_ceil(lut::LANES);
        for row0 in (0..w.rows).step_by(lut::MR) {
            if blocks_left >= 2 {
                lut_tile::<2, RELAXED>(&mut job, col0, row0);
            } else {
                lut_tile::<1, RELAXED>(&mut job, col0, row0);
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

/// SIMD version of [`lut::pack_acts`] (same layout), also returning column sums. For 16 columns
/// x 16 depth at a time: one load per column, a 4x4 transpose of u32 lanes so that each vector
/// holds one group (4 codes) of 4 columns, then per plane a multiply gathers bit `j` of the 4
/// bytes of each u32 into a nibble (the partial products never collide), and two narrows pack
/// 16 columns' nibbles into one index vector.
pub fn lut_acts(src: &[u8], cols: usize, cols_pad: usize, depth: usize, bits: u8, dst: &mut [u8], sums: &mut [i32]) {
    let g_n = lut::groups(depth);
    let ab = bits as usize;
    assert!(dst.len() >= cols_pad * ab * g_n && src.len() >= cols * depth && sums.len() >= cols);
    let quads = depth.div_ceil(16);
    for cb in 0..cols_pad / lut::LANES {
        let mut csum = [i32x4_splat(0); lut::LANES];
        for q in 0..quads {
            let k = q * 16;
            let v: [v128; lut::LANES] = core::array::from_fn(|l| {
                let c = cb * lut::LANES + l;
                if c >= cols {
                    i32x4_splat(0)
                } else if k + 16 <= depth {
                    unsafe { v128_load(src.as_ptr().add(c * depth + k) as *const v128) }
                } else {
                    let mut t = [0u8; 16];
                    t[..depth - k].copy_from_slice(&src[c * depth + k..(c + 1) * depth]);
                    unsafe { v128_load(t.as_ptr() as *const v128) }
                }
            });
            for l in 0..lut::LANES {
                csum[l] = i32x4_add(csum[l], i32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(v[l])));
            }
            // w[g][cq]: group g (of this quad) of columns 4cq..4cq+4, one u32 lane each.
            let mut w = [[i32x4_splat(0); 4]; 4];
            for cq in 0..4 {
                let (v0, v1, v2, v3) = (v[4 * cq], v[4 * cq + 1], v[4 * cq + 2], v[4 * cq + 3]);
                let t0 = i32x4_shuffle::<0, 4, 1, 5>(v0, v1);
                let t1 = i32x4_shuffle::<2, 6, 3, 7>(v0, v1);
                let t2 = i32x4_shuffle::<0, 4, 1, 5>(v2, v3);
                let t3 = i32x4_shuffle::<2, 6, 3, 7>(v2, v3);
                w[0][cq] = i32x4_shuffle::<0, 1, 4, 5>(t0, t2);
                w[1][cq] = i32x4_shuffle::<2, 3, 6, 7>(t0, t2);
                w[2][cq] = i32x4_shuffle::<0, 1, 4, 5>(t1, t3);
                w[3][cq] = i32x4_shuffle::<2, 3, 6, 7>(t1, t3);
            }
            let groups_here = (g_n - q * 4).min(4);
            for j in 0..ab {
                let base = (cb * ab + j) * g_n * lut::LANES;
                for (g, wg) in w.iter().enumerate().take(groups_here) {
                    let nib: [v128; 4] = core::array::from_fn(|cq| {
                        let b = v128_and(u32x4_shr(wg[cq], j as u32), u32x4_splat(0x0101_0101));
                        u32x4_shr(i32x4_mul(b, u32x4_splat(0x0102_0408)), 24)
                    });
                    let lo = i16x8_narrow_i32x4(nib[0], nib[1]);
                    let hi = i16x8_narrow_i32x4(nib[2], nib[3]);
                    let out = u8x16_narrow_i16x8(lo, hi);
                    // SAFETY: group q*4+g < g_n, so this 16-byte store ends inside the plane.
                    unsafe { v128_store(dst.as_mut_ptr().add(base + (q * 4 + g) * lut::LANES) as *mut v128, out) };
                }
            }
        }
        for l in 0..lut::LANES {
            let c = cb * lut::LANES + l;
            if c < cols {
                let s = csum[l];
                sums[c] = i32x4_extract_lane::<0>(s) + i32x4_extract_lane::<1>(s) + i32x4_extract_lane::<2>(s) + i32x4_extract_lane::<3>(s);
            }
        }
    }
}
