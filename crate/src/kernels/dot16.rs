//! `Dot16` packing: codes widened once to i16 (weights at load, activations per call) so the
//! inner loop is one `i32x4.dot_i16x8_s` per 8 products with no unpacking (anchors.md: widening
//! at every use runs at a third of the dot's speed).
//!
//! Layout: panels of 4 rows (weights) or 4 columns (activations), interleaved per 8 depth:
//! element (i, k) is at `((i / 4) * kcs + k / 8) * 32 + (i % 4) * 8 + k % 8` with `kcs = kp / 8`.
//! A micro-kernel step then reads one 64-byte run per operand at fixed offsets from a single
//! pointer, instead of one pointer per row and column (wasm has no base+index addressing, so
//! every extra pointer is an extra add per load). Depth is zero-padded to `kp` (a multiple of
//! [`KB`]) and rows/columns to whole panels, so kernels never branch on edges inside the loop.

/// Depth granule: one v128 of i16.
pub const KB: usize = 8;
/// Rows per weight panel; `rows_pad` is a multiple of this.
pub const MR: usize = 4;
/// Columns per activation panel; `cols_pad` is a multiple of this.
pub const NR: usize = 4;
/// i16 per panel step (4 rows or columns x 8 depth).
pub const STEP: usize = 32;

pub fn padded_depth(depth: usize) -> usize {
    depth.div_ceil(KB) * KB
}

/// Index of element (i, k) in a panel layout with `kcs = kp / 8` steps per panel.
#[inline(always)]
pub fn panel_index(i: usize, k: usize, kcs: usize) -> usize {
    ((i / 4) * kcs + k / KB) * STEP + (i % 4) * KB + k % KB
}

/// Widens row-major u8 `[n][depth]` into the panel layout (`n_pad * kp` i16), zero-padded;
/// `sums` (if given) receives each row's code sum. Returns the OR of all codes (the caller's
/// range check).
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))] // SIMD builds pack with simd128_pack
pub fn widen(src: &[u8], n: usize, n_pad: usize, depth: usize, dst: &mut [i16], sums: Option<&mut [i32]>) -> u8 {
    let kp = padded_depth(depth);
    let kcs = kp / KB;
    debug_assert!(dst.len() >= n_pad * kp && n_pad % 4 == 0);
    let mut sums = sums;
    for i in 0..n_pad {
        let s = if i < n { &src[i * depth..(i + 1) * depth] } else { &[][..] };
        for kc in 0..kcs {
            let d = &mut dst[panel_index(i, kc * KB, kcs)..][..KB];
            let k = kc * KB;
            if k + KB <= s.len() {
                for (x, &c) in d.iter_mut().zip(&s[k..k + KB]) {
                    *x = c as i16;
                }
            } else {
                for (l, x) in d.iter_mut().enumerate() {
                    *x = s.get(k + l).map_or(0, |&c| c as i16);
                }
            }
        }
        if i < n {
            if let Some(sums) = sums.as_deref_mut() {
                sums[i] = sum_codes(s);
            }
        }
    }
    or_codes(&src[..n * depth])
}

/// OR of all codes: one vectorizable pass.
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))] // SIMD builds pack with simd128_pack
pub fn or_codes(s: &[u8]) -> u8 {
    s.iter().fold(0u8, |m, &c| m | c)
}

/// Sum of u8 codes; u32 lanes cannot overflow for depth <= MAX_DEPTH (255 * 32768 < 2^32).
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))] // SIMD builds pack with simd128_pack
#[inline]
pub fn sum_codes(s: &[u8]) -> i32 {
    s.iter().map(|&c| c as u32).sum::<u32>() as i32
}
