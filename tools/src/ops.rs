//! Fused CPU ops for quantization-aware training in NHWC, as candle custom ops with hand-written
//! backward passes. Why custom: candle 0.11's own paths are slow here (broadcast of one clip value,
//! BatchNorm backward, conv input-gradient loops) and its max-pool gradient is wrong (0.11.1 gives
//! each window's maximum a quarter of the gradient, and tied maxima a share each). The forward
//! passes of the quantizers call the runtime's own functions in `anybit::quant`, so the trainer
//! computes exactly the values the runtime will.

use std::sync::{Arc, Mutex};

use anybit::{quant, Bits};
use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor,
};
use rayon::prelude::*;

fn f32s<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let d = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&d[a..b]),
        None => bail!("custom op needs a contiguous input"),
    }
}

pub fn data(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

// ---------------------------------------------------------------------------------------------
// im2col for NHWC convolution: [N, H, W, C] -> [N*Ho*Wo, kh*kw*C], column order (ky, kx, c),
// which is the runtime's weight layout [out, kh, kw, in]; the conv is then one matmul.

#[derive(Clone, Copy, Debug)]
pub struct Im2col {
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    /// The first layer's input is data: skip its gradient.
    pub input_grad: bool,
}

impl Im2col {
    pub fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        ((h + 2 * self.pad - self.kh) / self.stride + 1, (w + 2 * self.pad - self.kw) / self.stride + 1)
    }
    fn dims(&self, l: &Layout) -> Result<(usize, usize, usize, usize)> {
        match l.dims() {
            &[n, h, w, c] if h + 2 * self.pad >= self.kh && w + 2 * self.pad >= self.kw => {
                Ok((n, h, w, c))
            }
            d => bail!("im2col: bad input shape {d:?}"),
        }
    }
}

impl CustomOp1 for Im2col {
    fn name(&self) -> &'static str {
        "im2col-nhwc"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s, l)?;
        let (n, h, w, c) = self.dims(l)?;
        let (ho, wo) = self.out_hw(h, w);
        let k = self.kh * self.kw * c;
        let mut out = vec![0f32; n * ho * wo * k];
        let (kh, kw, st, p) = (self.kh, self.kw, self.stride, self.pad as isize);
        out.par_chunks_mut(k).enumerate().for_each(|(r, row)| {
            let (img, rem) = (r / (ho * wo), r % (ho * wo));
            let (oy, ox) = (rem / wo, rem % wo);
            for ky in 0..kh {
                let iy = (oy * st + ky) as isize - p;
                for kx in 0..kw {
                    let ix = (ox * st + kx) as isize - p;
                    let dst = &mut row[(ky * kw + kx) * c..][..c];
                    if iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize {
                        let at = ((img * h + iy as usize) * w + ix as usize) * c;
                        dst.copy_from_slice(&x[at..at + c]);
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n * ho * wo, k))))
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        if !self.input_grad {
            return Ok(None);
        }
        let (n, h, w, c) = arg.dims4()?;
        let (ho, wo) = self.out_hw(h, w);
        let g = data(grad)?;
        let k = self.kh * self.kw * c;
        let (kh, kw, st, p) = (self.kh, self.kw, self.stride, self.pad as isize);
        let mut dx = vec![0f32; n * h * w * c];
        dx.par_chunks_mut(h * w * c).enumerate().for_each(|(img, dimg)| {
            for oy in 0..ho {
                for ox in 0..wo {
                    let row = &g[((img * ho + oy) * wo + ox) * k..][..k];
                    for ky in 0..kh {
                        let iy = (oy * st + ky) as isize - p;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = (ox * st + kx) as isize - p;
                            if ix < 0 || ix >= w as isize {
                                continue;
                            }
                            let d = &mut dimg[(iy as usize * w + ix as usize) * c..][..c];
                            for (a, b) in d.iter_mut().zip(&row[(ky * kw + kx) * c..][..c]) {
                                *a += b;
                            }
                        }
                    }
                }
            }
        });
        Ok(Some(Tensor::from_vec(dx, (n, h, w, c), arg.device())?))
    }
}

// ---------------------------------------------------------------------------------------------
// PACT activation quantizer, fused: y = act_value(act_code(x, alpha, bits)). Straight-through
// inside the clip range; d/d alpha = 1 where x >= alpha (PACT).

#[derive(Clone, Copy, Debug)]
pub struct Pact {
    pub bits: Bits,
}

impl CustomOp2 for Pact {
    fn name(&self) -> &'static str {
        "pact"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1)?;
        let alpha = f32s(s2, l2)?;
        if alpha.len() != 1 || !(alpha[0] > 0.0) {
            bail!("pact: clip must be one positive value, got {alpha:?}");
        }
        let (a, b) = (alpha[0], self.bits);
        let out: Vec<f32> =
            x.par_iter().map(|&v| quant::act_value(quant::act_code(v, a, b), a, b)).collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        alpha: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let a = alpha.flatten_all()?.to_vec1::<f32>()?[0];
        let xv = data(x)?;
        let g = data(grad)?;
        let dx: Vec<f32> = xv
            .par_iter()
            .zip(g.par_iter())
            .map(|(&v, &g)| if v > 0.0 && v < a { g } else { 0.0 })
            .collect();
        let da: f64 = xv
            .par_iter()
            .zip(g.par_iter())
            .map(|(&v, &g)| if v >= a { g as f64 } else { 0.0 })
            .sum();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(vec![da as f32], alpha.shape(), alpha.device())?),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Nested DoReFa weight quantizer, exactly as the runtime decodes it.

/// `(E, M)` = (mean |W|, max |tanh W|) of one weight tensor. Export writes E as the weight scale
/// and M defines the 8-bit codes, so trainer and runtime share these two numbers.
pub fn weight_stats(w: &[f32]) -> (f32, f32) {
    let e = (w.iter().map(|v| v.abs() as f64).sum::<f64>() / w.len().max(1) as f64) as f32;
    let m = w.iter().fold(0f32, |m, v| m.max(v.tanh().abs()));
    (e, m)
}

/// 8-bit codes of a weight tensor (what the `.anybit` file stores).
pub fn weight_codes8(w: &[f32]) -> Vec<u8> {
    let (_, m) = weight_stats(w);
    w.iter().map(|&v| quant::dorefa_code8(v, m)).collect()
}

/// The values the runtime uses for `bits`-bit weights.
pub fn weight_values(w: &[f32], bits: Bits) -> Vec<f32> {
    let (e, m) = weight_stats(w);
    w.iter()
        .map(|&v| quant::weight_value(quant::derive_code(quant::dorefa_code8(v, m), bits), bits, e))
        .collect()
}

#[derive(Clone, Copy, Debug)]
pub struct WeightQuant {
    pub bits: Bits,
}

impl CustomOp1 for WeightQuant {
    fn name(&self) -> &'static str {
        "nested-dorefa"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let w = f32s(s, l)?;
        Ok((CpuStorage::F32(weight_values(w, self.bits)), l.shape().clone()))
    }
    /// Straight-through the rounding: w_q ~ E tanh(W) / M, so dw_q/dW = E (1 - tanh^2 W) / M,
    /// with E and M treated as constants (as the official code detaches E).
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let w = data(arg)?;
        let g = data(grad)?;
        let (e, m) = weight_stats(&w);
        let k = if m > 0.0 { e / m } else { 1.0 };
        let dw: Vec<f32> = w
            .iter()
            .zip(&g)
            .map(|(&v, &g)| {
                let t = v.tanh();
                g * k * (1.0 - t * t)
            })
            .collect();
        Ok(Some(Tensor::from_vec(dw, arg.shape(), arg.device())?))
    }
}

// ---------------------------------------------------------------------------------------------
// BatchNorm in training mode over all axes but the last (channels-last), fused with the affine
// scale and shift. The batch mean and biased variance are left in `stats` for the caller's
// running averages.

pub const BN_EPS: f32 = 1e-5;

#[derive(Clone, Debug, Default)]
pub struct BnStats {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub count: usize,
}

pub struct BatchNormTrain {
    pub stats: Arc<Mutex<BnStats>>,
}

fn channel_stats(x: &[f32], c: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / c;
    let chunk = rows.div_ceil(16).max(1) * c;
    let (s, s2) = x
        .par_chunks(chunk)
        .map(|part| {
            let mut s = vec![0f64; c];
            let mut s2 = vec![0f64; c];
            for row in part.chunks_exact(c) {
                for j in 0..c {
                    let v = row[j] as f64;
                    s[j] += v;
                    s2[j] += v * v;
                }
            }
            (s, s2)
        })
        .reduce(
            || (vec![0f64; c], vec![0f64; c]),
            |(mut a, mut a2), (b, b2)| {
                for j in 0..c {
                    a[j] += b[j];
                    a2[j] += b2[j];
                }
                (a, a2)
            },
        );
    let n = rows.max(1) as f64;
    let mean: Vec<f32> = s.iter().map(|v| (v / n) as f32).collect();
    let var: Vec<f32> =
        s.iter().zip(&s2).map(|(a, b)| ((b / n) - (a / n) * (a / n)).max(0.0) as f32).collect();
    (mean, var)
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "batchnorm-train-nhwc"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1)?;
        let gamma = f32s(s2, l2)?;
        let beta = f32s(s3, l3)?;
        let c = *l1.dims().last().unwrap_or(&0);
        if c == 0 || gamma.len() != c || beta.len() != c || x.len() < 2 * c {
            bail!("batchnorm: shape {:?} with {} scales", l1.dims(), gamma.len());
        }
        let (mean, var) = channel_stats(x, c);
        let k: Vec<f32> =
            var.iter().zip(gamma).map(|(v, g)| g / (v + BN_EPS).sqrt()).collect();
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(c).zip(x.par_chunks(c)).for_each(|(o, xr)| {
            for j in 0..c {
                o[j] = (xr[j] - mean[j]) * k[j] + beta[j];
            }
        });
        *self.stats.lock().unwrap() = BnStats { mean, var, count: x.len() / c };
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let xv = data(x)?;
        let gm = data(gamma)?;
        let g = data(grad)?;
        let c = gm.len();
        let st = self.stats.lock().unwrap().clone();
        let inv: Vec<f32> = st.var.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()).collect();
        let rows = xv.len() / c;
        // Per channel: sum g and sum g * xhat.
        let chunk = rows.div_ceil(16).max(1) * c;
        let (sg, sgx) = xv
            .par_chunks(chunk)
            .zip(g.par_chunks(chunk))
            .map(|(xp, gp)| {
                let mut a = vec![0f64; c];
                let mut b = vec![0f64; c];
                for (xr, gr) in xp.chunks_exact(c).zip(gp.chunks_exact(c)) {
                    for j in 0..c {
                        let xh = (xr[j] - st.mean[j]) * inv[j];
                        a[j] += gr[j] as f64;
                        b[j] += (gr[j] * xh) as f64;
                    }
                }
                (a, b)
            })
            .reduce(
                || (vec![0f64; c], vec![0f64; c]),
                |(mut a, mut b), (x, y)| {
                    for j in 0..c {
                        a[j] += x[j];
                        b[j] += y[j];
                    }
                    (a, b)
                },
            );
        let n = rows as f32;
        let mg: Vec<f32> = sg.iter().map(|v| (*v as f32) / n).collect();
        let mgx: Vec<f32> = sgx.iter().map(|v| (*v as f32) / n).collect();
        let mut dx = vec![0f32; xv.len()];
        dx.par_chunks_mut(c).zip(xv.par_chunks(c)).zip(g.par_chunks(c)).for_each(
            |((d, xr), gr)| {
                for j in 0..c {
                    let xh = (xr[j] - st.mean[j]) * inv[j];
                    d[j] = gm[j] * inv[j] * (gr[j] - mg[j] - xh * mgx[j]);
                }
            },
        );
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(sgx.iter().map(|v| *v as f32).collect(), gamma.shape(), dev)?),
            Some(Tensor::from_vec(sg.iter().map(|v| *v as f32).collect(), beta.shape(), dev)?),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Max pooling, NHWC, no padding; the gradient goes to the first maximum of each window only.

#[derive(Clone, Copy, Debug)]
pub struct MaxPool {
    pub k: usize,
    pub stride: usize,
}

impl MaxPool {
    pub fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        ((h - self.k) / self.stride + 1, (w - self.k) / self.stride + 1)
    }
    /// Index (within the image) of each output's arg-max; `x` is one image.
    fn argmax(&self, x: &[f32], h: usize, w: usize, c: usize, out: &mut [usize]) {
        let (ho, wo) = self.out_hw(h, w);
        for oy in 0..ho {
            for ox in 0..wo {
                for ch in 0..c {
                    let mut best = usize::MAX;
                    let mut bv = f32::NEG_INFINITY;
                    for ky in 0..self.k {
                        for kx in 0..self.k {
                            let i = ((oy * self.stride + ky) * w + ox * self.stride + kx) * c + ch;
                            if best == usize::MAX || x[i] > bv {
                                best = i;
                                bv = x[i];
                            }
                        }
                    }
                    out[(oy * wo + ox) * c + ch] = best;
                }
            }
        }
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "maxpool-nhwc"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s, l)?;
        let (n, h, w, c) = match l.dims() {
            &[n, h, w, c] if h >= self.k && w >= self.k && self.stride > 0 => (n, h, w, c),
            d => bail!("maxpool: bad input shape {d:?}"),
        };
        let (ho, wo) = self.out_hw(h, w);
        let mut out = vec![0f32; n * ho * wo * c];
        out.par_chunks_mut(ho * wo * c).enumerate().for_each(|(img, o)| {
            let xi = &x[img * h * w * c..][..h * w * c];
            let mut idx = vec![0usize; ho * wo * c];
            self.argmax(xi, h, w, c, &mut idx);
            for (o, i) in o.iter_mut().zip(&idx) {
                *o = xi[*i];
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, ho, wo, c))))
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (n, h, w, c) = arg.dims4()?;
        let (ho, wo) = self.out_hw(h, w);
        let x = data(arg)?;
        let g = data(grad)?;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(h * w * c).enumerate().for_each(|(img, d)| {
            let mut idx = vec![0usize; ho * wo * c];
            self.argmax(&x[img * h * w * c..][..h * w * c], h, w, c, &mut idx);
            for (j, i) in idx.iter().enumerate() {
                d[*i] += g[img * ho * wo * c + j];
            }
        });
        Ok(Some(Tensor::from_vec(dx, (n, h, w, c), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use candle_core::{Device, Var};

    fn rand(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    /// Compares the op's gradient of sum(f(x) * r) with central finite differences at a sample
    /// of coordinates.
    fn check_grad(shape: &[usize], f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>, eps: f32, tol: f32) {
        let mut rng = Rng::new(3);
        let n: usize = shape.iter().product();
        let x0 = rand(&mut rng, n);
        let x = Var::from_tensor(&Tensor::from_vec(x0.clone(), shape, &Device::Cpu).unwrap()).unwrap();
        let y = f(x.as_tensor()).unwrap();
        let r = Tensor::from_vec(rand(&mut rng, y.elem_count()), y.shape(), &Device::Cpu).unwrap();
        let loss = (y * &r).unwrap().sum_all().unwrap();
        let g = data(loss.backward().unwrap().get(x.as_tensor()).unwrap()).unwrap();
        let eval = |v: Vec<f32>| -> f64 {
            let t = Tensor::from_vec(v, shape, &Device::Cpu).unwrap();
            let y = f(&t).unwrap();
            data(&y).unwrap().iter().zip(data(&r).unwrap()).map(|(a, b)| (*a as f64) * b as f64).sum()
        };
        for k in 0..40 {
            let i = (k * 7919) % n;
            let (mut p, mut m) = (x0.clone(), x0.clone());
            p[i] += eps;
            m[i] -= eps;
            let fd = (eval(p) - eval(m)) / (2.0 * eps as f64);
            assert!((fd as f32 - g[i]).abs() <= tol * (1.0 + fd.abs() as f32), "coord {i}: fd {fd} grad {}", g[i]);
        }
    }

    #[test]
    fn im2col_gradient_matches_finite_differences() {
        for (stride, pad) in [(1, 1), (2, 0), (2, 1)] {
            let op = Im2col { kh: 3, kw: 3, stride, pad, input_grad: true };
            check_grad(&[2, 6, 5, 3], &|x| x.apply_op1(op), 1e-2, 1e-3);
        }
    }

    #[test]
    fn im2col_matches_direct_convolution() {
        let mut rng = Rng::new(5);
        let (n, h, w, c, o) = (2, 5, 4, 3, 2);
        let x = rand(&mut rng, n * h * w * c);
        let wt = rand(&mut rng, o * 9 * c);
        let xt = Tensor::from_vec(x.clone(), (n, h, w, c), &Device::Cpu).unwrap();
        let wtt = Tensor::from_vec(wt.clone(), (o, 9 * c), &Device::Cpu).unwrap();
        let op = Im2col { kh: 3, kw: 3, stride: 1, pad: 1, input_grad: false };
        let y = data(&xt.apply_op1(op).unwrap().matmul(&wtt.t().unwrap()).unwrap()).unwrap();
        for b in 0..n {
            for oy in 0..h {
                for ox in 0..w {
                    for oc in 0..o {
                        let mut s = 0f32;
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = (oy as isize + ky as isize - 1, ox as isize + kx as isize - 1);
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                for ci in 0..c {
                                    s += x[((b * h + iy as usize) * w + ix as usize) * c + ci]
                                        * wt[oc * 9 * c + (ky * 3 + kx) * c + ci];
                                }
                            }
                        }
                        let got = y[((b * h + oy) * w + ox) * o + oc];
                        assert!((got - s).abs() < 1e-4, "{got} vs {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn batchnorm_gradient_matches_finite_differences() {
        let g = Tensor::new(&[1.5f32, -0.7, 0.3], &Device::Cpu).unwrap();
        let b = Tensor::new(&[0.1f32, 0.2, -0.3], &Device::Cpu).unwrap();
        check_grad(
            &[4, 3, 2, 3],
            &|x| x.apply_op3(&g, &b, BatchNormTrain { stats: Default::default() }),
            1e-2,
            2e-2,
        );
    }

    #[test]
    fn batchnorm_normalizes() {
        let mut rng = Rng::new(9);
        let x: Vec<f32> = (0..600).map(|i| rng.normal() as f32 * 3.0 + (i % 3) as f32).collect();
        let xt = Tensor::from_vec(x, (200, 3), &Device::Cpu).unwrap();
        let one = Tensor::ones(3, candle_core::DType::F32, &Device::Cpu).unwrap();
        let zero = Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap();
        let st: Arc<Mutex<BnStats>> = Default::default();
        let y = data(&xt.apply_op3(&one, &zero, BatchNormTrain { stats: st.clone() }).unwrap()).unwrap();
        for c in 0..3 {
            let col: Vec<f32> = y.iter().skip(c).step_by(3).copied().collect();
            let m = col.iter().sum::<f32>() / 200.0;
            let v = col.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / 200.0;
            assert!(m.abs() < 1e-4 && (v - 1.0).abs() < 1e-3, "channel {c}: mean {m} var {v}");
        }
        assert_eq!(st.lock().unwrap().count, 200);
    }

    #[test]
    fn maxpool_gradient_goes_to_the_argmax_only() {
        check_grad(&[2, 4, 6, 3], &|x| x.apply_op1(MaxPool { k: 2, stride: 2 }), 1e-3, 1e-2);
        // Ties (common after quantization): exactly one element of the window gets the gradient.
        let x = Var::from_tensor(&Tensor::ones((1, 2, 2, 1), candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap();
        let y = x.as_tensor().apply_op1(MaxPool { k: 2, stride: 2 }).unwrap().sum_all().unwrap();
        let g = data(y.backward().unwrap().get(x.as_tensor()).unwrap()).unwrap();
        assert_eq!(g, vec![1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn pact_is_the_runtime_quantizer_with_pact_gradients() {
        let xs = [-1.0f32, 0.0, 0.1, 0.49, 0.5, 1.2, 2.0, 3.5, f32::NAN];
        let x = Var::from_tensor(&Tensor::new(&xs, &Device::Cpu).unwrap()).unwrap();
        let a = Var::new(&[2.0f32], &Device::Cpu).unwrap();
        for bits in Bits::all_desc() {
            let y = x.as_tensor().apply_op2(a.as_tensor(), Pact { bits }).unwrap();
            let yv = data(&y).unwrap();
            for (v, q) in xs.iter().zip(&yv) {
                assert_eq!(*q, quant::act_value(quant::act_code(*v, 2.0, bits), 2.0, bits));
            }
        }
        let y = x.as_tensor().apply_op2(a.as_tensor(), Pact { bits: Bits::new(4).unwrap() }).unwrap().sum_all().unwrap();
        let gs = y.backward().unwrap();
        assert_eq!(data(gs.get(x.as_tensor()).unwrap()).unwrap(), vec![0., 0., 1., 1., 1., 1., 0., 0., 0.]);
        // x >= alpha: 2.0 and 3.5.
        assert_eq!(data(gs.get(a.as_tensor()).unwrap()).unwrap(), vec![2.0]);
    }

    #[test]
    fn weight_quantizer_is_the_runtime_decode() {
        let mut rng = Rng::new(11);
        let mut w = rand(&mut rng, 500);
        w[0] = 0.0;
        w[1] = -3.0;
        let (e, m) = weight_stats(&w);
        let codes = weight_codes8(&w);
        let t = Tensor::from_vec(w.clone(), 500, &Device::Cpu).unwrap();
        for bits in Bits::all_desc() {
            let q = data(&t.apply_op1(WeightQuant { bits }).unwrap()).unwrap();
            for i in 0..w.len() {
                let want = quant::weight_value(quant::derive_code(codes[i], bits), bits, e);
                assert_eq!(q[i], want);
                assert_eq!(codes[i], quant::dorefa_code8(w[i], m));
            }
            let distinct: std::collections::BTreeSet<u32> = q.iter().map(|v| v.to_bits()).collect();
            assert!(distinct.len() <= 1 << bits.get());
        }
    }
}
