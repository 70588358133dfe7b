//! The reference every kernel is tested against: a direct triple loop on raw codes, no packing,
//! no blocking, no tricks. Kept deliberately obvious so that a disagreement is always the fast
//! kernel's fault.

/// `out[col * rows + row] = Σ_k w[row][k] * a[col][k]` with `w` row-major `[rows][depth]` and
/// `a` column-major `[cols][depth]`. Panics if a slice is too short (test-only use).
pub fn gemm_reference(
    w_codes: &[u8],
    a_codes: &[u8],
    rows: usize,
    cols: usize,
    depth: usize,
    out: &mut [i32],
) {
    assert!(w_codes.len() >= rows * depth && a_codes.len() >= cols * depth);
    assert!(out.len() >= rows * cols);
    for col in 0..cols {
        let a = &a_codes[col * depth..(col + 1) * depth];
        for row in 0..rows {
            let w = &w_codes[row * depth..(row + 1) * depth];
            let mut acc: i64 = 0;
            for k in 0..depth {
                acc += w[k] as i64 * a[k] as i64;
            }
            // Depth is capped (MAX_DEPTH) so the exact sum always fits an i32.
            out[col * rows + row] = acc as i32;
        }
    }
}
