//! `Dot8` packing: codes kept as bytes, for relaxed SIMD's `i32x4.relaxed_dot_i8x16_i7x16_add`
//! (16 products and the accumulation in one instruction; exact here because activations are
//! then at most 7 bits, so x64's pairwise i16 step cannot saturate: 2 * 128 * 127 < 2^15).
//! Other instruction sets widen the bytes at use.
//!
//! Weights are stored as i8: the code itself up to 7 bits, `code - 128` at 8 bits (the kernel
//! adds `128 * Σ a` back from the activation column sums). Activations are stored as u8, up to
//! 7 bits as they are; 8-bit ones as two planes of at most 7 bits, `a >> 1` then `a & 1` (each
//! column `2 kp` deep), which every kernel combines as `2 Σ w (a >> 1) + Σ w (a & 1)`: two
//! relaxed dot products per 16 depth instead of a widening to i16. Where the engine's relaxed
//! dot product is exact for bytes of 128..=255 too (V8 on x64 with AVX-VNNI: one `vpdpbusd`;
//! probed once, `relaxed::unsigned_dot_is_exact`) they go as they are, one plane: one dot
//! product per 16 depth (BENCHMARKS.md).
//!
//! Layout: panels of 4 rows or columns interleaved per 16 depth: element (i, k) is at
//! `((i / 4) * kcs + k / 16) * 64 + (i % 4) * 16 + k % 16` with `kcs = kp / 16`; depth
//! zero-padded to `kp` (a multiple of 16), rows and columns to whole panels.

use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use super::scheme::Layout;

/// Depth granule: one v128 of bytes.
pub const KB: usize = 16;
/// Rows (columns) per panel.
pub const P: usize = super::panel::P;
/// Bytes per panel step.
pub const STEP: usize = P * KB;

pub fn padded_depth(depth: usize) -> usize {
    super::panel::padded_depth::<KB>(depth)
}

/// Activation planes per column: 1 up to 7 bits, 2 at 8 bits (`a >> 1`, `a & 1`) unless the
/// relaxed dot product is exact for bytes of 128..=255 here ([`one_plane_at_8_bits`]).
pub fn act_planes(abits: u8) -> usize {
    if abits > 7 && !one_plane_at_8_bits() {
        2
    } else {
        1
    }
}

/// Set by [`two_planes_at_8_bits`].
static TWO_PLANES: AtomicBool = AtomicBool::new(false);

/// Keeps 8-bit activations in two planes even where one would do, or stops keeping them (the
/// default): for tests of the two-plane path on machines that take the other, and for
/// benchmarks of both. Switch it only while no packed activations are in use: a pack is read
/// with the plane count of its GEMM's time.
pub fn two_planes_at_8_bits(on: bool) {
    TWO_PLANES.store(on, Relaxed);
}

/// Whether 8-bit activations go as one plane of bytes: in the relaxed-SIMD build, on an engine
/// whose relaxed dot product is exact for them (`relaxed::unsigned_dot_is_exact`, probed once).
pub fn one_plane_at_8_bits() -> bool {
    if TWO_PLANES.load(Relaxed) {
        return false;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
    return super::relaxed::unsigned_dot_is_exact();
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd")))]
    false
}

/// What the weights were shifted by (the kernel adds `offset * Σ a` back).
pub fn weight_offset(wbits: u8) -> i32 {
    if wbits >= 8 {
        128
    } else {
        0
    }
}

/// The `Dot8` [`Layout`].
pub struct Dot8;

impl Layout for Dot8 {
    type Elem = u8;
    const ROW_TILE: usize = P;
    const COL_GRANULE: usize = P;
    fn weight_row_len(depth: usize, _wbits: u8) -> usize {
        padded_depth(depth)
    }
    fn act_col_len(depth: usize, abits: u8) -> usize {
        padded_depth(depth) * act_planes(abits)
    }
    fn pack_weights(codes: &[u8], rows: usize, rows_pad: usize, depth: usize, wbits: u8, dst: &mut [u8]) {
        pack(codes, rows, rows_pad, depth, weight_offset(wbits), dst, None);
    }
    fn pack_acts(codes: &[u8], cols: usize, cols_pad: usize, depth: usize, abits: u8, dst: &mut [u8], sums: &mut [i32]) -> u8 {
        if act_planes(abits) == 1 {
            return pack(codes, cols, cols_pad, depth, 0, dst, Some(sums));
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return super::simd128_pack::dot8(codes, cols, cols_pad, depth, 0, true, dst, Some(sums));
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        pack_split(codes, cols, cols_pad, depth, dst, sums)
    }
}

/// Packs row-major codes `[n][depth]` into the panel layout (`n_pad * kp` bytes), subtracting
/// `offset` (as i8 bytes; padding stays 0, not -offset, so it adds nothing); `sums` (if given)
/// receives each row's code sum. Returns the OR of all codes. SIMD builds use the SIMD128
/// packer (same layout).
fn pack(src: &[u8], n: usize, n_pad: usize, depth: usize, offset: i32, dst: &mut [u8], sums: Option<&mut [i32]>) -> u8 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return super::simd128_pack::dot8(src, n, n_pad, depth, offset, false, dst, sums);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    super::panel::pack::<u8, KB>(src, n, n_pad, depth, dst, sums, |c| (c as i32 - offset) as u8)
}

/// 8-bit activation codes `[n][depth]` as the two planes `a >> 1` and `a & 1` of each column, in
/// the panel layout over depth `2 kp` (plane p, depth k at depth `p kp + k`); `sums` receives
/// each column's code sum. Returns the OR of all codes.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn pack_split(src: &[u8], n: usize, n_pad: usize, depth: usize, dst: &mut [u8], sums: &mut [i32]) -> u8 {
    let kp = padded_depth(depth);
    let kcs2 = 2 * kp / KB;
    debug_assert!(dst.len() >= n_pad * 2 * kp && n_pad % P == 0);
    for i in 0..n_pad {
        let s = if i < n { &src[i * depth..(i + 1) * depth] } else { &[][..] };
        for k in 0..kp {
            let c = s.get(k).copied().unwrap_or(0);
            dst[super::panel::index::<KB>(i, k, kcs2)] = c >> 1;
            dst[super::panel::index::<KB>(i, kp + k, kcs2)] = c & 1;
        }
        if i < n {
            sums[i] = super::panel::sum_codes(s);
        }
    }
    super::panel::or_codes(&src[..n * depth])
}
