//! The reference every kernel is tested against: a direct triple loop on raw codes, no packing,
//! no blocking, no tricks, and the im2col the window path (window.rs) stands in for. Kept
//! deliberately obvious so that a disagreement is always the fast kernel's fault.

use super::Window;

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

/// The im2col of `image` (`[h][w][c]` codes) for `win`: `[ho * wo][kh * kw * c]`, the columns a
/// convolution's GEMM multiplies, 0 where a tap reaches into the padding. Panics if `image` is
/// too short (test and benchmark use).
pub fn im2col_reference(image: &[u8], win: &Window) -> Vec<u8> {
    assert!(image.len() >= win.h * win.w * win.c);
    let mut cols = Vec::with_capacity(win.ho * win.wo * win.depth());
    for oy in 0..win.ho {
        for ox in 0..win.wo {
            for ky in 0..win.kh {
                for kx in 0..win.kw {
                    let (iy, ix) = ((oy + ky) as isize - win.top as isize, (ox + kx) as isize - win.left as isize);
                    if (0..win.h as isize).contains(&iy) && (0..win.w as isize).contains(&ix) {
                        let at = (iy as usize * win.w + ix as usize) * win.c;
                        cols.extend_from_slice(&image[at..at + win.c]);
                    } else {
                        cols.extend(std::iter::repeat_n(0, win.c));
                    }
                }
            }
        }
    }
    cols
}
