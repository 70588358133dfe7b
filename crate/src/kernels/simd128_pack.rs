//! SIMD128 versions of the activation packers (same layouts as the portable ones in `dot16`,
//! `bitserial` and `lut`). Packing runs on every call, so each packer reads the codes exactly
//! once and folds the code sums and the range check (an OR of all codes) into that pass.
//!
//! Loops over bit planes are unrolled by a const generic `B` so every shift is an immediate:
//! wasm has no 8-bit shifts in hardware terms, and V8 expands a variable 8-bit shift into a much
//! longer sequence than a constant one.

use core::arch::wasm32::*;

use core::ops::Range;

use super::window::{PackOut, Window};
use super::{bitserial, dot16, dot8, lut};

/// Calls `$f::<B>(args)` for `B` = the bit count (1..=8).
macro_rules! by_bits {
    ($bits:expr, $f:ident($($arg:expr),*)) => {
        match $bits {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            6 => $f::<6>($($arg),*),
            7 => $f::<7>($($arg),*),
            _ => $f::<8>($($arg),*),
        }
    };
}

/// 16 codes of the column `src[at..at + len]` from `k`, zero past its end. Wherever 16 bytes from
/// `at + k` lie inside `src` this is one load (masked at the column's end): a column shorter than
/// 16 codes (a first conv's 3x3 taps of one channel) is then not copied out byte by byte.
#[inline(always)]
fn load16(src: &[u8], at: usize, len: usize, k: usize) -> v128 {
    if at + k + 16 <= src.len() {
        // SAFETY: in bounds, checked just above.
        let v = unsafe { v128_load(src.as_ptr().add(at + k) as *const v128) };
        if k + 16 <= len {
            return v;
        }
        let lane = u8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        return v128_and(v, u8x16_lt(lane, u8x16_splat(len.saturating_sub(k) as u8)));
    }
    let s = &src[at..at + len];
    let mut t = [0u8; 16];
    if k < s.len() {
        let end = s.len().min(k + 16);
        t[..end - k].copy_from_slice(&s[k..end]);
    }
    // SAFETY: `t` holds exactly one v128.
    unsafe { v128_load(t.as_ptr() as *const v128) }
}

/// Running sum of u8 codes: u16 lanes take 128 vectors (128 * 2 * 255 < 2^16), then widen.
struct Sum {
    s16: v128,
    s32: v128,
    n: usize,
}

impl Sum {
    #[inline(always)]
    fn new() -> Self {
        Sum { s16: u16x8_splat(0), s32: i32x4_splat(0), n: 0 }
    }
    #[inline(always)]
    fn add(&mut self, v: v128) {
        self.s16 = u16x8_add(self.s16, u16x8_extadd_pairwise_u8x16(v));
        self.n += 1;
        if self.n == 128 {
            self.flush();
        }
    }
    #[inline(always)]
    fn flush(&mut self) {
        self.s32 = i32x4_add(self.s32, i32x4_extadd_pairwise_u16x8(self.s16));
        self.s16 = u16x8_splat(0);
        self.n = 0;
    }
    #[inline(always)]
    fn total(mut self) -> i32 {
        self.flush();
        let s = self.s32;
        i32x4_extract_lane::<0>(s) + i32x4_extract_lane::<1>(s) + i32x4_extract_lane::<2>(s) + i32x4_extract_lane::<3>(s)
    }
}

#[inline(always)]
fn or_lanes(v: v128) -> u8 {
    let v = v128_or(v, i64x2_shuffle::<1, 0>(v, v));
    let x = i64x2_extract_lane::<0>(v) as u64;
    let x = x | x >> 32;
    let x = x | x >> 16;
    (x | x >> 8) as u8
}

/// The `Dot16` packer (panel layout) with sums; returns the OR of all codes.
pub fn widen(src: &[u8], n: usize, n_pad: usize, depth: usize, dst: &mut [i16], mut sums: Option<&mut [i32]>) -> u8 {
    let kp = dot16::padded_depth(depth);
    let kcs = kp / dot16::KB;
    assert!(dst.len() >= n_pad * kp && n_pad % dot16::NR == 0 && src.len() >= n * depth);
    let mut any = u8x16_splat(0);
    let d = dst.as_mut_ptr();
    for i in 0..n_pad {
        // SAFETY: panel_index(i, k, kcs) + 8 <= n_pad * kp for every k < kp.
        let at = |k: usize| unsafe { d.add(super::panel::index::<{ dot16::KB }>(i, k, kcs)) as *mut v128 };
        if i >= n {
            for kc in 0..kcs {
                unsafe { v128_store(at(kc * dot16::KB), i16x8_splat(0)) };
            }
            continue;
        }
        let mut sum = Sum::new();
        let mut k = 0;
        while k < kp {
            let v = load16(src, i * depth, depth, k);
            any = v128_or(any, v);
            sum.add(v);
            unsafe { v128_store(at(k), u16x8_extend_low_u8x16(v)) };
            if k + 8 < kp {
                unsafe { v128_store(at(k + 8), u16x8_extend_high_u8x16(v)) };
            }
            k += 16;
        }
        if let Some(sums) = sums.as_deref_mut() {
            sums[i] = sum.total();
        }
    }
    or_lanes(any)
}

#[inline(always)]
fn planes_row<const B: usize>(src: &[u8], at: usize, len: usize, groups: usize, d16: *mut u16, any: &mut v128) -> i32 {
    let mut sum = Sum::new();
    for g in 0..groups {
        let v = load16(src, at, len, g * 16);
        *any = v128_or(*any, v);
        sum.add(v);
        for j in 0..B {
            // Bit j to each byte's sign bit; bitmask gathers the 16 sign bits (bit t = lane t).
            let m = i8x16_bitmask(i8x16_shl(v, (7 - j) as u32));
            // SAFETY: j * groups + g < B * groups = the row's u16 count (asserted by caller).
            unsafe { *d16.add(j * groups + g) = m };
        }
    }
    sum.total()
}

fn planes_b<const B: usize>(src: &[u8], n: usize, n_pad: usize, depth: usize, dst: &mut [u64], mut sums: Option<&mut [i32]>) -> u8 {
    let kw = bitserial::words(depth);
    let stride = B * kw * bitserial::U64_PER_WORD;
    assert!(dst.len() >= n_pad * stride && src.len() >= n * depth);
    let mut any = u8x16_splat(0);
    for i in 0..n_pad {
        let d = &mut dst[i * stride..(i + 1) * stride];
        if i >= n {
            d.fill(0);
            continue;
        }
        // u16 view: plane j, 16-code group g (of kw * 8) is u16 index j * kw * 8 + g; little-endian,
        // so bit t of it is depth 16 g + t, as the portable packer lays it out.
        let total = planes_row::<B>(src, i * depth, depth, kw * 8, d.as_mut_ptr() as *mut u16, &mut any);
        if let Some(sums) = sums.as_deref_mut() {
            sums[i] = total;
        }
    }
    or_lanes(any)
}

/// The `BitSerial` packer (bit planes) with optional sums; returns the OR of all codes.
pub fn planes(src: &[u8], n: usize, n_pad: usize, depth: usize, bits: u8, dst: &mut [u64], sums: Option<&mut [i32]>) -> u8 {
    by_bits!(bits, planes_b(src, n, n_pad, depth, dst, sums))
}

/// Nibble of bit `j` of the 4 bytes of each u32 lane: isolate the bits, then one multiply moves
/// byte t's bit to position 24 + t (+ j) with no colliding partial products.
#[inline(always)]
fn nibbles<const J: usize>(w: v128) -> v128 {
    if J <= 4 {
        // Positions 8t + J; the product's window 24 + J .. 27 + J still fits in 32 bits.
        let b = v128_and(w, u32x4_splat(0x0101_0101 << J));
        u32x4_shr(i32x4_mul(b, u32x4_splat(0x0102_0408)), 24 + J as u32)
    } else {
        let b = v128_and(u32x4_shr(w, J as u32), u32x4_splat(0x0101_0101));
        u32x4_shr(i32x4_mul(b, u32x4_splat(0x0102_0408)), 24)
    }
}

/// Loads columns `c0 + 4cq .. + 4` at depth `k` (zeros past the codes).
#[inline(always)]
fn load4(src: &[u8], cols: usize, depth: usize, c0: usize, k: usize, fast: bool) -> [v128; 4] {
    if fast {
        // SAFETY: the caller checked that these columns exist and k + 16 <= depth.
        core::array::from_fn(|i| unsafe { v128_load(src.as_ptr().add((c0 + i) * depth + k) as *const v128) })
    } else {
        core::array::from_fn(|i| if c0 + i < cols { load16(src, (c0 + i) * depth, depth, k) } else { u8x16_splat(0) })
    }
}

/// Plane `J` of one 16-column x 16-depth block: index vectors of the (up to 4) groups.
/// Per 4 columns, nibbles are formed in place (u32 lane = group) and narrowed to bytes
/// `[col][group]`; a byte shuffle and a u32 transpose then give one vector per group with a
/// byte per column. Works 4 columns at a time so few vectors are live (V8 has 16 xmm registers
/// on x64; spilling made the first version 3x slower).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lut_plane<const J: usize>(
    src: &[u8],
    cols: usize,
    depth: usize,
    c0: usize,
    k: usize,
    fast: bool,
    groups_here: usize,
    dst: *mut u8,
    mut acc: Option<(&mut v128, &mut [Sum; lut::LANES])>,
) {
    let mut x = [u8x16_splat(0); 4];
    for (cq, xq) in x.iter_mut().enumerate() {
        let v = load4(src, cols, depth, c0 + 4 * cq, k, fast);
        if let Some((any, sums)) = acc.as_mut() {
            for i in 0..4 {
                **any = v128_or(**any, v[i]);
                sums[4 * cq + i].add(v[i]);
            }
        }
        let n: [v128; 4] = core::array::from_fn(|i| nibbles::<J>(v[i]));
        // Bytes 4i + g: column i (of this quad), group g.
        let b = u8x16_narrow_i16x8(i16x8_narrow_i32x4(n[0], n[1]), i16x8_narrow_i32x4(n[2], n[3]));
        // Bytes 4g + i.
        *xq = i8x16_shuffle::<0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15>(b, b);
    }
    // u32 transpose: y[g] lane cq = x[cq] lane g, i.e. byte 4cq + i = column 4cq + i.
    let t0 = i32x4_shuffle::<0, 4, 1, 5>(x[0], x[1]);
    let t1 = i32x4_shuffle::<2, 6, 3, 7>(x[0], x[1]);
    let t2 = i32x4_shuffle::<0, 4, 1, 5>(x[2], x[3]);
    let t3 = i32x4_shuffle::<2, 6, 3, 7>(x[2], x[3]);
    let y = [
        i32x4_shuffle::<0, 1, 4, 5>(t0, t2),
        i32x4_shuffle::<2, 3, 6, 7>(t0, t2),
        i32x4_shuffle::<0, 1, 4, 5>(t1, t3),
        i32x4_shuffle::<2, 3, 6, 7>(t1, t3),
    ];
    for (g, yg) in y.iter().enumerate().take(groups_here) {
        // SAFETY: the caller passes the plane's start; group g of this quad exists.
        unsafe { v128_store(dst.add(g * lut::LANES) as *mut v128, *yg) };
    }
}

fn lut_b<const B: usize>(src: &[u8], cols: usize, cols_pad: usize, depth: usize, dst: &mut [u8], sums: &mut [i32]) -> u8 {
    let g_n = lut::groups(depth);
    assert!(dst.len() >= cols_pad * B * g_n && src.len() >= cols * depth && sums.len() >= cols);
    let quads = depth.div_ceil(16);
    let full_quads = depth / 16;
    let mut any = u8x16_splat(0);
    let base = dst.as_mut_ptr();
    for cb in 0..cols_pad / lut::LANES {
        let c0 = cb * lut::LANES;
        let full_cols = c0 + lut::LANES <= cols;
        let mut sum: [Sum; lut::LANES] = core::array::from_fn(|_| Sum::new());
        for q in 0..quads {
            let k = q * 16;
            let fast = full_cols && q < full_quads;
            let groups_here = (g_n - q * 4).min(4);
            // SAFETY: plane j of block cb, from group 4q on, lies inside dst (asserted above).
            let plane = |j: usize| unsafe { base.add(((cb * B + j) * g_n + q * 4) * lut::LANES) };
            lut_plane::<0>(src, cols, depth, c0, k, fast, groups_here, plane(0), Some((&mut any, &mut sum)));
            macro_rules! more { ($($j:literal)*) => {$( if B > $j { lut_plane::<$j>(src, cols, depth, c0, k, fast, groups_here, plane($j), None); } )*}; }
            more!(1 2 3 4 5 6 7);
        }
        for (l, s) in sum.into_iter().enumerate() {
            let t = s.total();
            if c0 + l < cols {
                sums[c0 + l] = t;
            }
        }
    }
    or_lanes(any)
}

/// The `Lut` activation packer (index vectors and sums); returns the OR of all codes.
pub fn lut_acts(src: &[u8], cols: usize, cols_pad: usize, depth: usize, bits: u8, dst: &mut [u8], sums: &mut [i32]) -> u8 {
    match bits {
        1 => lut_masks::<1>(src, cols, cols_pad, depth, dst, sums),
        2 => lut_masks::<2>(src, cols, cols_pad, depth, dst, sums),
        _ => by_bits!(bits, lut_b(src, cols, cols_pad, depth, dst, sums)),
    }
}

/// `lut_b` for codes of `B` <= 2 bits, by masks (wider codes run the Dot8 scheme, which is faster
/// there): bit `j` of a column's 16 codes at one depth step is one `i8x16.bitmask`, a u16 whose
/// nibbles are the column's index bytes of 4 groups; 16 columns' masks are two u16x8 vectors, and
/// each group's index vector is their nibble at that group, narrowed to bytes. A column's code
/// sum is `Σ_j 2^j popcount`. This takes fewer operations than `lut_plane`'s multiplies and
/// transposes (BENCHMARKS.md, "Lut packer by bitmask"). Codes wider than `B` bits show in the
/// returned OR as there; their index bytes and sums are then wrong, and the caller's range check
/// rejects the pack.
fn lut_masks<const B: usize>(src: &[u8], cols: usize, cols_pad: usize, depth: usize, dst: &mut [u8], sums: &mut [i32]) -> u8 {
    let g_n = lut::groups(depth);
    assert!(dst.len() >= cols_pad * B * g_n && src.len() >= cols * depth && sums.len() >= cols);
    let quads = depth.div_ceil(16);
    let full_quads = depth / 16;
    let nibble = u16x8_splat(0xF);
    let mut any = u8x16_splat(0);
    let base = dst.as_mut_ptr();
    for cb in 0..cols_pad / lut::LANES {
        let c0 = cb * lut::LANES;
        let full_cols = c0 + lut::LANES <= cols;
        let mut total = [0u32; lut::LANES];
        for q in 0..quads {
            let k = q * 16;
            let fast = full_cols && q < full_quads;
            // masks[j][i]: bit j of column c0 + i's 16 codes from depth k.
            let mut masks = [[0u16; lut::LANES]; B];
            for cq in 0..4 {
                let v = load4(src, cols, depth, c0 + 4 * cq, k, fast);
                for (i, &vi) in v.iter().enumerate() {
                    any = v128_or(any, vi);
                    for (j, mj) in masks.iter_mut().enumerate() {
                        // Bit j to the sign bit (a constant shift once the loop is unrolled).
                        let m = i8x16_bitmask(i8x16_shl(vi, 7 - j as u32));
                        mj[4 * cq + i] = m;
                        total[4 * cq + i] += m.count_ones() << j;
                    }
                }
            }
            let groups_here = (g_n - q * 4).min(4);
            for (j, m) in masks.iter().enumerate() {
                let lo = u16x8(m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]);
                let hi = u16x8(m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15]);
                let group = |shift: u32| u8x16_narrow_i16x8(v128_and(u16x8_shr(lo, shift), nibble), v128_and(u16x8_shr(hi, shift), nibble));
                // SAFETY: plane j of block cb, groups 4q .. 4q + groups_here, lies inside dst
                // (asserted above).
                let at = |g: usize| unsafe { base.add(((cb * B + j) * g_n + q * 4 + g) * lut::LANES) as *mut v128 };
                unsafe {
                    v128_store(at(0), group(0));
                    if groups_here > 1 {
                        v128_store(at(1), group(4));
                    }
                    if groups_here > 2 {
                        v128_store(at(2), group(8));
                    }
                    if groups_here > 3 {
                        v128_store(at(3), group(12));
                    }
                }
            }
        }
        for (l, &t) in total.iter().enumerate() {
            if c0 + l < cols {
                sums[c0 + l] = t as i32;
            }
        }
    }
    or_lanes(any)
}

/// The `Dot8` packer (panel layout, bytes minus `offset`) with optional sums; with `split`, each
/// column as the two planes `a >> 1` and `a & 1` instead (8-bit activations, dot8.rs). Returns
/// the OR of all codes.
#[allow(clippy::too_many_arguments)]
pub fn dot8(src: &[u8], n: usize, n_pad: usize, depth: usize, offset: i32, split: bool, dst: &mut [u8], mut sums: Option<&mut [i32]>) -> u8 {
    let kp = dot8::padded_depth(depth);
    let kcs = kp / dot8::KB;
    // Panel steps per column: both planes' with `split`.
    let col_kcs = if split { 2 * kcs } else { kcs };
    assert!(dst.len() >= n_pad * col_kcs * dot8::KB && n_pad % dot8::P == 0 && src.len() >= n * depth);
    let shift = u8x16_splat(offset as u8);
    let one = u8x16_splat(1);
    let lane = u8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut any = u8x16_splat(0);
    let d = dst.as_mut_ptr();
    for i in 0..n_pad {
        // SAFETY: panel_index(i, k, col_kcs) + 16 <= n_pad * col_kcs * KB for every k < col_kcs * KB.
        let at = |k: usize| unsafe { d.add(super::panel::index::<{ dot8::KB }>(i, k, col_kcs)) as *mut v128 };
        if i >= n {
            for kc in 0..col_kcs {
                unsafe { v128_store(at(kc * dot8::KB), u8x16_splat(0)) };
            }
            continue;
        }
        let mut sum = Sum::new();
        for kc in 0..kcs {
            let k = kc * dot8::KB;
            // Zero past the depth.
            let v = load16(src, i * depth, depth, k);
            any = v128_or(any, v);
            sum.add(v);
            if split {
                unsafe {
                    v128_store(at(k), u8x16_shr(v, 1));
                    v128_store(at(kp + k), v128_and(v, one));
                }
                continue;
            }
            let mut x = u8x16_sub(v, shift);
            if k + 16 > depth {
                // Padding must stay 0, not -offset.
                x = v128_and(x, u8x16_lt(lane, u8x16_splat((depth - k) as u8)));
            }
            unsafe { v128_store(at(k), x) };
        }
        if let Some(sums) = sums.as_deref_mut() {
            sums[i] = sum.total();
        }
    }
    or_lanes(any)
}

/// The window pack's nibble planes and pixel sums (window.rs; `planes` and `sums` zeroed by the
/// caller), by masks as `lut_masks`: bit `j` of 16 channels' codes is one `i8x16.bitmask`, whose
/// nibbles are the index bytes of 4 channel groups, and the sum is `Σ_j 2^j popcount`. Channels
/// past the last 16 (a multiple of 4) go 4 at a time. Returns the OR of all codes.
pub fn window_planes(codes: &[u8], win: &Window, ab: u8, rows: Range<usize>, out: PackOut) -> u8 {
    assert!(codes.len() >= win.h * win.w * win.c && rows.end <= win.h);
    // SAFETY: 16 codes from channel v * 16 of pixel p lie inside the image (c >= v * 16 + 16).
    let vector = |p: usize, v: usize| unsafe { v128_load(codes.as_ptr().add(p * win.c + v * 16) as *const v128) };
    let quad = |p: usize, k: usize| -> [u8; 4] { codes[p * win.c + k * 4..][..4].try_into().expect("4 codes") };
    // 1 and 2 bits are what layers run on Lut; wider codes (tests, benchmarks) take the portable
    // packer rather than six more copies of this loop in the binary.
    match ab {
        1 => window_pixels::<1>(win, rows, out, vector, quad),
        2 => window_pixels::<2>(win, rows, out, vector, quad),
        _ => super::window::pack_planes_generic(codes, win, ab, rows, out),
    }
}

/// [`window_planes`] of an f32 image, each value quantized on the way exactly as
/// `quant::act_code` does it (clamp to `[0, clip]` by two selects that send NaN to 0, times
/// `levels / clip`, plus 0.5, truncated), 16 values at a time, then packed as the codes. The codes
/// are never stored.
pub fn window_planes_floats(x: &[f32], win: &Window, clip: f32, abits: crate::bits::Bits, rows: Range<usize>, out: PackOut) {
    assert!(x.len() >= win.h * win.w * win.c && rows.end <= win.h);
    let k = crate::quant::levels(abits) as f32 / clip;
    // SAFETY: 16 values from channel v * 16 of pixel p lie inside the image (c >= v * 16 + 16).
    let load = |p: usize, v: usize, i: usize| unsafe { v128_load(x.as_ptr().add(p * win.c + v * 16 + 4 * i) as *const v128) };
    let quad = |p: usize, g: usize| -> [u8; 4] {
        let mut q = [0u8; 4];
        crate::quant::act_codes(&x[p * win.c + g * 4..][..4], clip, abits, &mut q);
        q
    };
    match abits.get() {
        1 => _ = window_pixels::<1>(win, rows, out, |p, v| codes16::<1>(|i| load(p, v, i), clip, k), quad),
        2 => _ = window_pixels::<2>(win, rows, out, |p, v| codes16::<3>(|i| load(p, v, i), clip, k), quad),
        _ => super::window::pack_planes_floats_generic(x, win, clip, abits, rows, out),
    }
}

/// The `LEVELS`-level activation codes of 16 floats (`load(i)`: floats `4i..4i + 4`) as bytes.
/// `y * k + 0.5` lies in `[0.5, LEVELS + 0.5]`, so its truncation counts the `n` in
/// `1..=LEVELS` that it reaches: one compare per level (a lane of all ones is -1), where V8 lowers
/// `i32x4.trunc_sat_f32x4` to about 8 instructions on x64 (a third of a 1-bit window pack).
#[inline(always)]
fn codes16<const LEVELS: usize>(load: impl Fn(usize) -> v128, clip: f32, k: f32) -> v128 {
    let (zero, half, clip4, k4) = (f32x4_splat(0.0), f32x4_splat(0.5), f32x4_splat(clip), f32x4_splat(k));
    let minus = |i: usize| {
        let y = f32x4_pmin(clip4, f32x4_pmax(zero, load(i)));
        let f = f32x4_add(f32x4_mul(y, k4), half);
        (1..=LEVELS).fold(i32x4_splat(0), |c, n| i32x4_add(c, f32x4_ge(f, f32x4_splat(n as f32))))
    };
    // Lanes of -LEVELS..=0 narrow exactly, and one negation gives the codes.
    i8x16_neg(i8x16_narrow_i16x8(i16x8_narrow_i32x4(minus(0), minus(1)), i16x8_narrow_i32x4(minus(2), minus(3))))
}

/// The `Dot8` window image of an f32 image (window.rs `pack_bytes_floats`), each value quantized
/// as `quant::act_code` does it, 16 at a time: two selects that send NaN to 0, a multiply-add,
/// the truncation (relaxed SIMD's where the build has it: `y * k + 0.5` lies in
/// `[0.5, levels + 0.5]`, where it equals `trunc_sat` and V8 emits one `cvttps2dq` instead of
/// about 8 instructions), two narrows; each pixel's sum from the i32 lanes. Channels come in
/// whole 16s (`Window::fits`).
pub fn window_bytes_floats(x: &[f32], win: &Window, clip: f32, abits: crate::bits::Bits, rows: Range<usize>, out: PackOut) {
    assert!(x.len() >= win.h * win.w * win.c && rows.end <= win.h && win.c % 16 == 0);
    let k = crate::quant::levels(abits) as f32 / clip;
    let (zero, half, clip4, k4) = (f32x4_splat(0.0), f32x4_splat(0.5), f32x4_splat(clip), f32x4_splat(k));
    for y in rows {
        for xx in 0..win.w {
            let (p, at) = (y * win.w + xx, win.at(y, xx));
            let dst = out.bytes(at * win.c, win.c);
            let mut sum = i32x4_splat(0);
            for (v, d) in dst.chunks_exact_mut(16).enumerate() {
                let code = |i: usize| {
                    // SAFETY: 16 values from channel v * 16 of pixel p lie inside the image.
                    let v = unsafe { v128_load(x.as_ptr().add(p * win.c + v * 16 + 4 * i) as *const v128) };
                    let f = f32x4_add(f32x4_mul(f32x4_pmin(clip4, f32x4_pmax(zero, v)), k4), half);
                    #[cfg(target_feature = "relaxed-simd")]
                    return i32x4_relaxed_trunc_f32x4(f);
                    #[cfg(not(target_feature = "relaxed-simd"))]
                    i32x4_trunc_sat_f32x4(f)
                };
                let c = [code(0), code(1), code(2), code(3)];
                sum = i32x4_add(sum, i32x4_add(i32x4_add(c[0], c[1]), i32x4_add(c[2], c[3])));
                let bytes = u8x16_narrow_i16x8(i16x8_narrow_i32x4(c[0], c[1]), i16x8_narrow_i32x4(c[2], c[3]));
                // SAFETY: `d` is 16 bytes.
                unsafe { v128_store(d.as_mut_ptr() as *mut v128, bytes) };
            }
            let total = i32x4_extract_lane::<0>(sum) + i32x4_extract_lane::<1>(sum) + i32x4_extract_lane::<2>(sum) + i32x4_extract_lane::<3>(sum);
            out.sum(at, total);
        }
    }
}

/// The window pack of every pixel `p` of image rows `rows`, whose codes come as 16-channel
/// vectors (`vector(p, v)`: channels `16v..16v + 16`) and, past the last whole one, 4 at a time
/// (`quad(p, g)`: channels `4g..4g + 4`). Returns the OR of their codes.
#[inline(always)]
fn window_pixels<const B: usize>(win: &Window, rows: Range<usize>, out: PackOut, vector: impl Fn(usize, usize) -> v128, quad: impl Fn(usize, usize) -> [u8; 4]) -> u8 {
    let (len, groups) = (win.plane_len(), win.c / lut::GROUP);
    let vectors = win.c / 16;
    let mut any = u8x16_splat(0);
    let mut any_tail = 0u8;
    for y in rows {
        for x in 0..win.w {
            let (p, at) = (y * win.w + x, win.at(y, x));
            let mut sum = 0u32;
            for v in 0..vectors {
                let codes16 = vector(p, v);
                any = v128_or(any, codes16);
                for j in 0..B {
                    let m = i8x16_bitmask(i8x16_shl(codes16, 7 - j as u32)) as u32;
                    sum += m.count_ones() << j;
                    for t in 0..4 {
                        out.nibble((j * groups + 4 * v + t) * len + at, (m >> (4 * t) & 0xF) as u8);
                    }
                }
            }
            for g in 4 * vectors..groups {
                let q = quad(p, g);
                for j in 0..B {
                    out.nibble((j * groups + g) * len + at, lut::nibble(&q, j));
                }
                sum += q.iter().map(|&a| a as u32).sum::<u32>();
                any_tail |= q.iter().fold(0, |m, &a| m | a);
            }
            out.sum(at, sum as i32);
        }
    }
    or_lanes(any) | any_tail
}
