//! `Lut` packing: table lookups with `i8x16.swizzle`, activations as the index.
//!
//! For every weight row and group of 4 consecutive depth indices, a 16-byte table holds the dot
//! product of the group's 4 weights with every 4-bit pattern: `T[idx] = Σ_t bit_t(idx) * w_t`.
//! Activations are split into bit planes; plane `j` of 16 columns at group `g` forms one index
//! vector (one nibble per byte lane). One swizzle then yields 16 columns x 4 depth of
//! `w * (bit j of a)`, and `Σ c·a = Σ_j 2^j Σ_g T[nibble_j]`. The cost is linear in the
//! activation bits and independent of the weight bits (while table entries fit a byte), where
//! bit-serial is linear in their product.
//!
//! Table entries must fit u8: `4 * max_weight <= 255` holds up to 6 bits. Wider weights are
//! split into two 4-bit digits (`w = 16 * hi + lo`), each with its own tables. 1-bit weights'
//! entries are at most 4, so two rows share one table, a nibble each (`lo + 16 * hi`, rows 2h and
//! 2h+1): one lookup gives both rows, three lookups sum without a carry between the nibbles, and
//! the tables are half as large ([`vectors`]).
//!
//! Layout: weights `[rows_pad / MR][digit][group][vectors][16]` (a tile's tables for one group
//! are adjacent), activations `[cols_pad / LANES][plane][group][LANES]`. Depth is zero-padded to a
//! multiple of 4 and padded entries are zero in the tables, so padding adds nothing.

use super::scheme::Layout;

/// Rows per tile.
pub const MR: usize = 4;
/// Columns per index vector (one per byte lane).
pub const LANES: usize = 16;
/// Depth indices per group (the 4 bits of a swizzle index).
pub const GROUP: usize = 4;

/// The `Lut` [`Layout`].
pub struct Lut;

impl Layout for Lut {
    type Elem = u8;
    const ROW_TILE: usize = MR;
    const COL_GRANULE: usize = LANES;
    fn weight_row_len(depth: usize, wbits: u8) -> usize {
        digits(wbits).0 * groups(depth) * vectors(wbits) * 16 / MR
    }
    fn act_col_len(depth: usize, abits: u8) -> usize {
        abits as usize * groups(depth)
    }
    fn pack_weights(codes: &[u8], rows: usize, rows_pad: usize, depth: usize, wbits: u8, dst: &mut [u8]) {
        pack_weights(codes, rows, rows_pad, depth, wbits, dst);
    }
    /// SIMD builds use the SIMD128 packer (same layout).
    fn pack_acts(codes: &[u8], cols: usize, cols_pad: usize, depth: usize, abits: u8, dst: &mut [u8], sums: &mut [i32]) -> u8 {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return super::simd128_pack::lut_acts(codes, cols, cols_pad, depth, abits, dst, sums);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        pack_acts(codes, cols, cols_pad, depth, abits, dst, sums)
    }
}

/// The index nibble of up to `GROUP` codes of one group at bit plane `j`: bit `t` is bit `j` of
/// code `t`. The portable packers' one definition of the index (the SIMD ones build it by mask).
#[inline]
pub fn nibble(quad: &[u8], j: usize) -> u8 {
    quad.iter().enumerate().fold(0, |n, (t, &a)| n | ((a >> j) & 1) << t)
}

/// Whether two rows share each table (1-bit weights: entries of at most 4, a nibble per row).
pub fn paired(wbits: u8) -> bool {
    wbits == 1
}

/// Table vectors per tile, digit and group: one per row, or one per two rows when [`paired`].
pub fn vectors(wbits: u8) -> usize {
    if paired(wbits) {
        MR / 2
    } else {
        MR
    }
}

pub fn groups(depth: usize) -> usize {
    depth.div_ceil(GROUP)
}

/// Weight digits and the bit width of each: one digit up to 6 bits, else two 4-bit digits.
pub fn digits(wbits: u8) -> (usize, u32) {
    if wbits <= 6 {
        (1, wbits as u32)
    } else {
        (2, 4)
    }
}

/// Builds the weight tables for codes `[rows][depth]` into `dst` (len rows_pad / MR * D * G *
/// vectors * 16).
fn pack_weights(src: &[u8], rows: usize, rows_pad: usize, depth: usize, wbits: u8, dst: &mut [u8]) {
    let g_n = groups(depth);
    let (d_n, dbits) = digits(wbits);
    let mask = ((1u32 << dbits) - 1) as u8;
    let vecs = vectors(wbits);
    // Rows per table vector, and the bits a row's entries are shifted by within it.
    let per = MR / vecs;
    debug_assert!(dst.len() >= rows_pad / MR * d_n * g_n * vecs * 16);
    dst.fill(0);
    for r in 0..rows {
        let (rt, rr) = (r / MR, r % MR);
        let s = &src[r * depth..(r + 1) * depth];
        for d in 0..d_n {
            for g in 0..g_n {
                let mut w = [0u8; GROUP];
                for t in 0..GROUP {
                    if let Some(&c) = s.get(g * GROUP + t) {
                        w[t] = (c >> (d as u32 * dbits)) & mask;
                    }
                }
                let base = (((rt * d_n + d) * g_n + g) * vecs + rr / per) * 16;
                let shift = 4 * (rr % per);
                for idx in 0..16 {
                    let mut v = 0u32;
                    for (t, &wt) in w.iter().enumerate() {
                        if idx >> t & 1 == 1 {
                            v += wt as u32;
                        }
                    }
                    dst[base + idx] |= (v << shift) as u8;
                }
            }
        }
    }
}

/// Index vectors for activation codes `[cols][depth]` into `dst` (len cols_pad * bits * G), and
/// each column's code sum into `sums`. Returns the OR of all codes.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn pack_acts(src: &[u8], cols: usize, cols_pad: usize, depth: usize, bits: u8, dst: &mut [u8], sums: &mut [i32]) -> u8 {
    for c in 0..cols {
        sums[c] = super::panel::sum_codes(&src[c * depth..(c + 1) * depth]);
    }
    let g_n = groups(depth);
    let bits = bits as usize;
    debug_assert!(dst.len() >= cols_pad * bits * g_n);
    for c in 0..cols_pad {
        let (cb, lane) = (c / LANES, c % LANES);
        for j in 0..bits {
            let base = (cb * bits + j) * g_n * LANES + lane;
            if c >= cols {
                for g in 0..g_n {
                    dst[base + g * LANES] = 0;
                }
                continue;
            }
            let s = &src[c * depth..(c + 1) * depth];
            // The last group may be short: its missing depths are zero.
            for (g, quad) in s.chunks(GROUP).enumerate() {
                dst[base + g * LANES] = nibble(quad, j);
            }
        }
    }
    super::panel::or_codes(&src[..cols * depth])
}
