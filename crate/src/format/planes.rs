//! Bit planes: plane `k` holds bit `k` of every 8-bit weight code, 8 codes per byte, LSB first
//! (code `i` is bit `i % 8` of byte `i / 8`).

/// `SPREAD[byte]` has bit `j` of `byte` moved to bit 0 of byte `j`: one plane byte becomes the
/// contribution of one bit to eight consecutive codes, so unpacking is a lookup, a shift and an OR
/// per 8 codes instead of per code.
static SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            if b & (1 << j) != 0 {
                t[b] |= 1u64 << (8 * j);
            }
            j += 1;
        }
        b += 1;
    }
    t
};

/// Reassembles codes from the most significant planes: `planes[k]` is the plane of bit `7 - k`.
/// Bits of missing planes read as 0. Returns `8 * plane_len` codes.
pub(crate) fn unpack(planes: &[&[u8]], plane_len: usize) -> Vec<u8> {
    debug_assert!(planes.len() <= 8 && planes.iter().all(|p| p.len() == plane_len));
    let mut codes = vec![0u8; plane_len * 8];
    for (j, out) in codes.chunks_exact_mut(8).enumerate() {
        let mut w = 0u64;
        for (k, plane) in planes.iter().enumerate() {
            w |= SPREAD[plane[j] as usize] << (7 - k);
        }
        out.copy_from_slice(&w.to_le_bytes());
    }
    codes
}

/// Splits codes into 8 planes of `plane_len` bytes, plane of bit 7 first. Codes past
/// `codes.len()` (up to `8 * plane_len`) are zero.
pub(crate) fn pack(codes: &[u8], plane_len: usize) -> Vec<Vec<u8>> {
    debug_assert!(codes.len() <= plane_len * 8);
    let mut planes = vec![vec![0u8; plane_len]; 8];
    for (i, &c) in codes.iter().enumerate() {
        for (k, plane) in planes.iter_mut().enumerate() {
            let bit = 7 - k;
            plane[i / 8] |= ((c >> bit) & 1) << (i % 8);
        }
    }
    planes
}
