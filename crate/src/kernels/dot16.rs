//! `Dot16` packing: codes widened once to i16 (weights at load, activations per call) so the
//! inner loop is one `i32x4.dot_i16x8_s` per 8 products with no unpacking (widening bytes at every
//! use would put extend instructions beside each dot in the inner loop).
//!
//! Layout: panels of 4 rows (weights) or 4 columns (activations), interleaved per 8 depth:
//! element (i, k) is at `((i / 4) * kcs + k / 8) * 32 + (i % 4) * 8 + k % 8` with `kcs = kp / 8`.
//! A micro-kernel step then reads one 64-byte run per operand at fixed offsets from a single
//! pointer, instead of one pointer per row and column (wasm has no base+index addressing, so
//! every extra pointer is an extra add per load). Depth is zero-padded to `kp` (a multiple of
//! [`KB`]) and rows/columns to whole panels, so kernels never branch on edges inside the loop.

use super::scheme::Layout;

/// Depth granule: one v128 of i16.
pub const KB: usize = 8;
/// Rows per weight panel; `rows_pad` is a multiple of this.
pub const MR: usize = super::panel::P;
/// Columns per activation panel; `cols_pad` is a multiple of this.
pub const NR: usize = super::panel::P;
/// i16 per panel step (4 rows or columns x 8 depth).
pub const STEP: usize = MR * KB;

pub fn padded_depth(depth: usize) -> usize {
    super::panel::padded_depth::<KB>(depth)
}

/// The `Dot16` [`Layout`].
pub struct Dot16;

impl Layout for Dot16 {
    type Elem = i16;
    const ROW_TILE: usize = MR;
    const COL_GRANULE: usize = NR;
    fn weight_row_len(depth: usize, _wbits: u8) -> usize {
        padded_depth(depth)
    }
    fn act_col_len(depth: usize, _abits: u8) -> usize {
        padded_depth(depth)
    }
    fn pack_weights(codes: &[u8], rows: usize, rows_pad: usize, depth: usize, _wbits: u8, dst: &mut [i16]) {
        widen(codes, rows, rows_pad, depth, dst, None);
    }
    fn pack_acts(codes: &[u8], cols: usize, cols_pad: usize, depth: usize, _abits: u8, dst: &mut [i16], sums: &mut [i32]) -> u8 {
        widen(codes, cols, cols_pad, depth, dst, Some(sums))
    }
}

/// Widens row-major u8 `[n][depth]` into the panel layout (`n_pad * kp` i16), zero-padded;
/// `sums` (if given) receives each row's code sum. Returns the OR of all codes. SIMD builds use
/// the SIMD128 packer (same layout).
fn widen(src: &[u8], n: usize, n_pad: usize, depth: usize, dst: &mut [i16], sums: Option<&mut [i32]>) -> u8 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return super::simd128_pack::widen(src, n, n_pad, depth, dst, sums);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    super::panel::pack::<i16, KB>(src, n, n_pad, depth, dst, sums, |c| c as i16)
}
