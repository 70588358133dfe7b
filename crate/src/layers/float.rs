//! Dense f32 products for the float twin and the backward pass of quantized layers. Written so
//! the compiler vectorizes them (independent lanes in the dot product, a plain axpy), which is
//! what keeps a gradient step within a few forward passes in wasm SIMD128 builds.

/// `out[col * stride + base + r] = x[col] . w[r] + bias[base + r]` for `x`: [cols][depth] and
/// `w`: [rows][depth].
pub(crate) fn matmul_nt(
    x: &[f32],
    w: &[f32],
    depth: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
    stride: usize,
    base: usize,
) {
    let rows = w.len() / depth;
    for (col, xc) in x.chunks_exact(depth).enumerate() {
        let dst = &mut out[col * stride + base..col * stride + base + rows];
        for (r, (d, wr)) in dst.iter_mut().zip(w.chunks_exact(depth)).enumerate() {
            *d = dot(xc, wr) + bias.map_or(0.0, |b| b[base + r]);
        }
    }
}

/// `dx[col] += sum_r dy[col * stride + base + r] * w[r]` for `w`: [rows][depth], `dx`: [cols][depth].
pub(crate) fn matmul_tn_acc(dy: &[f32], stride: usize, base: usize, w: &[f32], depth: usize, dx: &mut [f32]) {
    let rows = w.len() / depth;
    for (col, dxc) in dx.chunks_exact_mut(depth).enumerate() {
        let g = &dy[col * stride + base..col * stride + base + rows];
        for (&gr, wr) in g.iter().zip(w.chunks_exact(depth)) {
            if gr != 0.0 {
                dxc.iter_mut().zip(wr).for_each(|(a, &b)| *a += gr * b);
            }
        }
    }
}

/// Dot product in eight independent lanes (a fixed summation order, so results are the same on
/// every target).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])) + tail
}
