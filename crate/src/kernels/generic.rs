//! Portable micro-kernels in plain Rust: the `Scalar` Isa in wasm and the native path. Written
//! as simple slice loops over whole tiles so LLVM can auto-vectorize them for the host.

use super::job::{drivers_by_scheme_name, Job};
use super::{bitserial, dot16, dot8, lut};

drivers_by_scheme_name!();

/// Writes one tile's results, clipping rows and columns beyond the problem.
#[inline]
fn store_tile<const M: usize, const N: usize>(
    acc: &[[i32; M]; N],
    out: &mut [i32],
    rows: usize,
    row0: usize,
    col0_local: usize,
    ncols: usize,
) {
    for (c, col) in acc.iter().enumerate().take(ncols) {
        let base = (col0_local + c) * rows + row0;
        let m = M.min(rows - row0);
        out[base..base + m].copy_from_slice(&col[..m]);
    }
}

pub fn dot16(job: Job<'_>) {
    const MR: usize = dot16::MR;
    const NR: usize = dot16::NR;
    const KB: usize = dot16::KB;
    let Job { w, a, c0, c1, out } = job;
    let (wd, ad) = (w.data::<i16>(), a.data::<i16>());
    let kcs = dot16::padded_depth(w.depth) / KB;
    let rows = w.rows;
    debug_assert!(c0 % NR == 0);
    for col0 in (c0..c1).step_by(NR) {
        let ncols = NR.min(c1 - col0);
        let ap = &ad[(col0 / NR) * kcs * dot16::STEP..][..kcs * dot16::STEP];
        for row0 in (0..rows).step_by(MR) {
            let wp = &wd[(row0 / MR) * kcs * dot16::STEP..][..kcs * dot16::STEP];
            let mut acc = [[0i32; MR]; NR];
            for (ws, as_) in wp.chunks_exact(dot16::STEP).zip(ap.chunks_exact(dot16::STEP)) {
                for (c, accc) in acc.iter_mut().enumerate() {
                    let av = &as_[c * KB..][..KB];
                    for (r, x) in accc.iter_mut().enumerate() {
                        let wv = &ws[r * KB..][..KB];
                        *x += wv.iter().zip(av).map(|(&p, &q)| p as i32 * q as i32).sum::<i32>();
                    }
                }
            }
            store_tile(&acc, out, rows, row0, col0 - c0, ncols);
        }
    }
}

pub fn bitserial(job: Job<'_>) {
    const MR: usize = bitserial::MR;
    const NR: usize = bitserial::NR;
    let Job { w, a, c0, c1, out } = job;
    let (wd, ad) = (w.data::<u64>(), a.data::<u64>());
    let kw = bitserial::words(w.depth);
    let n64 = kw * bitserial::U64_PER_WORD;
    let (wb, ab) = (w.wbits.count(), a.abits.count());
    let rows = w.rows;
    for col0 in (c0..c1).step_by(NR) {
        let ncols = NR.min(c1 - col0);
        for row0 in (0..rows).step_by(MR) {
            let mut acc = [[0i32; MR]; NR];
            for r in 0..MR {
                let wr = &wd[(row0 + r) * wb * n64..(row0 + r + 1) * wb * n64];
                for c in 0..NR {
                    let ac = &ad[(col0 + c) * ab * n64..(col0 + c + 1) * ab * n64];
                    let mut total = 0i32;
                    for i in 0..wb {
                        let wp = &wr[i * n64..(i + 1) * n64];
                        for j in 0..ab {
                            let ap = &ac[j * n64..(j + 1) * n64];
                            let pc: u32 = wp.iter().zip(ap).map(|(&x, &y)| (x & y).count_ones()).sum();
                            total += (pc as i32) << (i + j);
                        }
                    }
                    acc[c][r] = total;
                }
            }
            store_tile(&acc, out, rows, row0, col0 - c0, ncols);
        }
    }
}

pub fn lut(job: Job<'_>) {
    const MR: usize = lut::MR;
    const L: usize = lut::LANES;
    let Job { w, a, c0, c1, out } = job;
    let (wd, ad) = (w.data::<u8>(), a.data::<u8>());
    let g_n = lut::groups(w.depth);
    let (d_n, dbits) = lut::digits(w.wbits.get());
    let vecs = lut::vectors(w.wbits.get());
    let per = MR / vecs;
    let ab = a.abits.count();
    let rows = w.rows;
    debug_assert!(c0 % L == 0);
    for col0 in (c0..c1).step_by(L) {
        let ncols = L.min(c1 - col0);
        let cb = col0 / L;
        for row0 in (0..rows).step_by(MR) {
            let rt = row0 / MR;
            let mut acc = [[0i32; MR]; L];
            for d in 0..d_n {
                let tables = &wd[(rt * d_n + d) * g_n * vecs * 16..][..g_n * vecs * 16];
                // Row r's entry for index `nib` at group g (its nibble of a paired table).
                let entry = |g: usize, r: usize, nib: usize| (tables[(g * vecs + r / per) * 16 + nib] >> (4 * (r % per))) & if per > 1 { 15 } else { 255 };
                for j in 0..ab {
                    // Group g's 16 index bytes: consecutive in a column pack, at the group's
                    // offset from the column in a window pack (window.rs).
                    let idx = |g: usize| match a.window {
                        None => &ad[((cb * ab + j) * g_n + g) * L..][..L],
                        Some((offsets, stride)) => &ad[j * stride + offsets[g] as usize + col0..][..L],
                    };
                    let shift = j as u32 + d as u32 * dbits;
                    for g in 0..g_n {
                        let idx = idx(g);
                        for (lane, col) in acc.iter_mut().enumerate() {
                            let nib = idx[lane] as usize;
                            for (r, x) in col.iter_mut().enumerate() {
                                *x += (entry(g, r, nib) as i32) << shift;
                            }
                        }
                    }
                }
            }
            store_tile(&acc, out, rows, row0, col0 - c0, ncols);
        }
    }
}

pub fn dot8(job: Job<'_>) {
    const P: usize = dot8::P;
    const KB: usize = dot8::KB;
    let Job { w, a, c0, c1, out } = job;
    let (wd, ad) = (w.data::<u8>(), a.data::<u8>());
    let kcs = dot8::padded_depth(w.depth) / KB;
    let planes = dot8::act_planes(a.abits.get());
    let offset = dot8::weight_offset(w.wbits.get());
    let rows = w.rows;
    debug_assert!(c0 % P == 0);
    assert!(a.window.is_none() || planes == 1, "a window pack holds one plane");
    for col0 in (c0..c1).step_by(P) {
        let ncols = P.min(c1 - col0);
        // Column c's 16 codes of depth chunk k in plane `plane`: in the panel, or at the chunk's
        // offset from the column in a window pack (window.rs).
        let vector = |plane: usize, k: usize, c: usize| match a.window {
            None => &ad[((col0 / P) * planes + plane) * kcs * dot8::STEP + k * dot8::STEP + c * KB..][..KB],
            Some((offsets, stride)) => &ad[(col0 + c) * stride + offsets[k] as usize..][..KB],
        };
        for row0 in (0..rows).step_by(P) {
            let wp = &wd[(row0 / P) * kcs * dot8::STEP..][..kcs * dot8::STEP];
            let mut acc = [[0i32; P]; P];
            // Plane by plane, most significant first: acc = 2 acc + Σ w a_plane.
            for plane in 0..planes {
                if plane > 0 {
                    acc.iter_mut().flatten().for_each(|x| *x *= 2);
                }
                for (k, ws) in wp.chunks_exact(dot8::STEP).enumerate() {
                    for (c, accc) in acc.iter_mut().enumerate() {
                        let av = vector(plane, k, c);
                        for (r, x) in accc.iter_mut().enumerate() {
                            let wv = &ws[r * KB..][..KB];
                            *x += wv.iter().zip(av).map(|(&p, &q)| p as i8 as i32 * q as i32).sum::<i32>();
                        }
                    }
                }
            }
            for (c, accc) in acc.iter_mut().enumerate().take(ncols) {
                let fix = offset * a.col_sums[col0 + c];
                accc.iter_mut().for_each(|x| *x += fix);
            }
            store_tile(&acc, out, rows, row0, col0 - c0, ncols);
        }
    }
}
