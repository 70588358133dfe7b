//! `BitSerial` packing: every code split into its bit planes, each plane a bit string along the
//! depth packed into 128-bit words (one v128). Then
//! `Σ_k c·a = Σ_i Σ_j 2^(i+j) popcount(w_i & a_j)`, so the cost grows with `wbits * abits` and a
//! 1-bit layer is a plain AND + popcount.
//!
//! Layout: weights `[rows_pad][wbits][kw]`, activations `[cols_pad][abits][kw]` words of two
//! u64 (little-endian: depth index `k` is bit `k % 64` of u64 `k / 64`, i.e. bit `k % 8` of byte
//! `k / 8` of the v128), padding bits zero so they contribute nothing.

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

/// Packs row-major u8 codes `[n][depth]` into `dst` `[n_pad][bits][kw]` (as u64 pairs).
pub fn pack_planes(src: &[u8], n: usize, n_pad: usize, depth: usize, bits: u8, dst: &mut [u64]) {
    let kw = words(depth);
    let bits = bits as usize;
    let stride = bits * kw * U64_PER_WORD;
    debug_assert!(dst.len() >= n_pad * stride);
    for i in 0..n_pad {
        let d = &mut dst[i * stride..(i + 1) * stride];
        d.fill(0);
        if i >= n {
            continue;
        }
        let s = &src[i * depth..(i + 1) * depth];
        for (q, chunk) in s.chunks(64).enumerate() {
            // q indexes u64s along depth; word w = q / 2, half h = q % 2.
            let (w, h) = (q / 2, q % 2);
            for j in 0..bits {
                let mut x = 0u64;
                for (t, &c) in chunk.iter().enumerate() {
                    x |= (((c >> j) & 1) as u64) << t;
                }
                d[(j * kw + w) * U64_PER_WORD + h] = x;
            }
        }
    }
}
