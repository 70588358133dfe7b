//! `BitSerial` packing: every code split into its bit planes, each plane a bit string along the
//! depth packed into 128-bit words (one v128). Then
//! `Σ_k c·a = Σ_i Σ_j 2^(i+j) popcount(w_i & a_j)`, so the cost grows with `wbits * abits` and a
//! 1-bit layer is a plain AND + popcount.
//!
//! Layout: weights `[rows_pad][wbits][kw]`, activations `[cols_pad][abits][kw]` words of two
//! u64 (little-endian: depth index `k` is bit `k % 64` of u64 `k / 64`, i.e. bit `k % 8` of byte
//! `k / 8` of the v128), padding bits zero so they contribute nothing.

use super::scheme::Layout;

/// Depth per word.
pub const KW_BITS: usize = 128;
/// u64 per word.
pub const U64_PER_WORD: usize = 2;
/// Rows per weight tile.
pub const MR: usize = 4;
/// Columns per activation tile.
pub const NR: usize = 4;

pub fn words(depth: usize) -> usize {
    depth.div_ceil(KW_BITS)
}

/// The `BitSerial` [`Layout`].
pub struct BitSerial;

impl Layout for BitSerial {
    type Elem = u64;
    const ROW_TILE: usize = MR;
    const COL_GRANULE: usize = NR;
    fn weight_row_len(depth: usize, wbits: u8) -> usize {
        wbits as usize * words(depth) * U64_PER_WORD
    }
    fn act_col_len(depth: usize, abits: u8) -> usize {
        abits as usize * words(depth) * U64_PER_WORD
    }
    fn pack_weights(codes: &[u8], rows: usize, rows_pad: usize, depth: usize, wbits: u8, dst: &mut [u64]) {
        planes(codes, rows, rows_pad, depth, wbits, dst, None);
    }
    fn pack_acts(codes: &[u8], cols: usize, cols_pad: usize, depth: usize, abits: u8, dst: &mut [u64], sums: &mut [i32]) -> u8 {
        planes(codes, cols, cols_pad, depth, abits, dst, Some(sums))
    }
}

/// Packs row-major u8 codes `[n][depth]` into `dst` `[n_pad][bits][kw]` (as u64 pairs); `sums`
/// (if given) receives each row's code sum. Returns the OR of all codes. SIMD builds use the
/// SIMD128 packer (same layout).
fn planes(src: &[u8], n: usize, n_pad: usize, depth: usize, bits: u8, dst: &mut [u64], sums: Option<&mut [i32]>) -> u8 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return super::simd128_pack::planes(src, n, n_pad, depth, bits, dst, sums);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pack_planes(src, n, n_pad, depth, bits, dst, sums)
}

/// The portable [`planes`]. Eight codes at a time: bit `j` of each byte is isolated and a
/// multiply gathers the eight bits into the top byte (the partial products never collide, so
/// there are no carries).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn pack_planes(src: &[u8], n: usize, n_pad: usize, depth: usize, bits: u8, dst: &mut [u64], mut sums: Option<&mut [i32]>) -> u8 {
    const LOW_BITS: u64 = 0x0101_0101_0101_0101;
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let kw = words(depth);
    let bits = bits as usize;
    let n64 = kw * U64_PER_WORD;
    let stride = bits * n64;
    debug_assert!(dst.len() >= n_pad * stride);
    for i in 0..n_pad {
        let d = &mut dst[i * stride..(i + 1) * stride];
        d.fill(0);
        if i >= n {
            continue;
        }
        let s = &src[i * depth..(i + 1) * depth];
        if let Some(sums) = sums.as_deref_mut() {
            sums[i] = super::panel::sum_codes(s);
        }
        for (b, chunk) in s.chunks(8).enumerate() {
            let mut x = [0u8; 8];
            x[..chunk.len()].copy_from_slice(chunk);
            let x = u64::from_le_bytes(x);
            for j in 0..bits {
                let byte = (((x >> j) & LOW_BITS).wrapping_mul(GATHER) >> 56) as u64;
                d[j * n64 + b / 8] |= byte << ((b % 8) * 8);
            }
        }
    }
    super::panel::or_codes(&src[..n * depth])
}
