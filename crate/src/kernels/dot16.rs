//! `Dot16` packing: codes widened once to i16 (weights at load, activations per call) so the
//! inner loop is one `i32x4.dot_i16x8_s` per 8 products with no unpacking (anchors.md: widening
//! at every use runs at a third of the dot's speed).
//!
//! Layout: weights `[rows_pad][kp]`, activations `[cols_pad][kp]`, both i16, depth zero-padded to
//! `kp` (a multiple of [`KB`]) and rows/cols zero-padded to the tile sizes, so micro-kernels
//! never branch on edges inside the depth loop.

/// Depth granule: one v128 of i16.
pub const KB: usize = 8;
/// Rows per weight tile; `rows_pad` is a multiple of this.
pub const MR: usize = 4;
/// Columns per activation tile; `cols_pad` is a multiple of this.
pub const NR: usize = 4;

pub fn padded_depth(depth: usize) -> usize {
    depth.div_ceil(KB) * KB
}

/// Widens row-major u8 `[n][depth]` into `dst` `[n_pad][kp]`, padding with zeros; `sums` (if
/// given) receives each row's code sum. Returns the OR of all codes (the caller's range check).
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))] // SIMD builds pack with simd128_pack
pub fn widen(src: &[u8], n: usize, n_pad: usize, depth: usize, dst: &mut [i16], sums: Option<&mut [i32]>) -> u8 {
    let kp = padded_depth(depth);
    debug_assert!(dst.len() >= n_pad * kp);
    let mut sums = sums;
    for i in 0..n_pad {
        let d = &mut dst[i * kp..(i + 1) * kp];
        if i < n {
            let s = &src[i * depth..(i + 1) * depth];
            // Two simple loops rather than one fused one: both auto-vectorize.
            for (x, &c) in d[..depth].iter_mut().zip(s) {
                *x = c as i16;
            }
            d[depth..].fill(0);
            if let Some(sums) = sums.as_deref_mut() {
                sums[i] = sum_codes(s);
            }
        } else {
            d.fill(0);
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
