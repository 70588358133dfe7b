//! Layers that work value by value or channel by channel: activations, the folded BatchNorm
//! affine, residual add, flatten and softmax.

use super::{gate_grad, no_flips, no_rest, single, ChannelAffine, Context, Layer};
use crate::error::{ErrorKind, Result};
use crate::format::Width;
use crate::tensor::{numel, Tensor};

/// `forward` (on a copy of the first input) and `in_place` of a layer that writes its output into
/// its first input's buffer: the layer itself implements `forward_owned` alone.
macro_rules! works_in_place {
    () => {
        fn forward(&self, inputs: &[&Tensor], ctx: &mut Context) -> Result<Tensor> {
            let Some((first, rest)) = inputs.split_first() else {
                crate::bail!(ErrorKind::ShapeMismatch, "{} got no input", self.name);
            };
            self.forward_owned((*first).clone(), rest, ctx)
        }
        fn in_place(&self) -> bool {
            true
        }
    };
}

/// `clamp(x, min, max)`; ReLU is (0, inf) and ReLU6 is (0, 6).
pub struct Clamp {
    pub name: String,
    pub min: f32,
    pub max: f32,
}

impl Layer for Clamp {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        Ok(single(inputs, &self.name)?.to_vec())
    }
    works_in_place!();
    fn forward_owned(&self, mut out: Tensor, rest: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        no_rest(rest, &self.name)?;
        let (lo, hi) = (self.min, self.max);
        // The same values as `v.max(lo).min(hi)` (NaN becomes lo), but in the `a < b ? b : a`
        // form that is f32x4.pmax/pmin in wasm SIMD: f32::max's NaN rule kept it scalar (4 ns a
        // value, a sixth of a ResNet-20 pass).
        out.data_mut().iter_mut().for_each(|v| {
            let y = if lo < *v { *v } else { lo };
            *v = if y < hi { y } else { hi };
        });
        Ok(out)
    }
    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], _ctx: &mut Context) -> Result<Vec<Tensor>> {
        let x = single(inputs, &self.name)?;
        let mut dx = grad.clone();
        gate_grad(x.data(), (self.min, self.max), flip, dx.data_mut())?;
        Ok(vec![dx])
    }
    fn gate(&self) -> Option<(f32, f32)> {
        Some((self.min, self.max))
    }
}

/// Per-channel `x * scale + bias` on the last dimension, one pair per model width: a folded
/// switchable BatchNorm.
pub struct Affine {
    pub name: String,
    /// (scale, bias) for each width index.
    pub params: Vec<(Vec<f32>, Vec<f32>)>,
    active: usize,
}

impl Affine {
    pub fn new(name: &str, params: Vec<(Vec<f32>, Vec<f32>)>) -> Result<Self> {
        let channels = params.first().map_or(0, |p| p.0.len());
        let ok = channels > 0
            && params.iter().all(|(s, b)| s.len() == channels && b.len() == channels)
            && params.iter().flat_map(|(s, b)| s.iter().chain(b)).all(|v| v.is_finite());
        if !ok {
            crate::bail!(ErrorKind::BadValue, "{name}: scale/bias must be finite, equal-length and nonempty");
        }
        Ok(Affine { name: name.to_string(), params, active: 0 })
    }
    pub fn channels(&self) -> usize {
        self.params[0].0.len()
    }
}

impl Layer for Affine {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let shape = single(inputs, &self.name)?;
        if shape.last() != Some(&self.channels()) {
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "{}: expects {} channels in the last dimension, got {shape:?}",
                self.name,
                self.channels()
            );
        }
        Ok(shape.to_vec())
    }
    works_in_place!();
    fn forward_owned(&self, mut out: Tensor, rest: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        no_rest(rest, &self.name)?;
        self.output_shape(&[out.shape()])?;
        let affine = self.channel_affine().expect("an affine layer has one");
        for px in out.data_mut().chunks_exact_mut(affine.scale.len()) {
            affine.apply(px);
        }
        Ok(out)
    }
    fn channel_affine(&self) -> Option<ChannelAffine<'_>> {
        let (scale, bias) = &self.params[self.active];
        Some(ChannelAffine { scale, bias })
    }
    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], _ctx: &mut Context) -> Result<Vec<Tensor>> {
        no_flips(flip, &self.name)?;
        single(inputs, &self.name)?;
        let scale = &self.params[self.active].0;
        let mut dx = grad.clone();
        for px in dx.data_mut().chunks_exact_mut(scale.len()) {
            px.iter_mut().zip(scale).for_each(|(v, s)| *v *= s);
        }
        Ok(vec![dx])
    }
    fn set_width(&mut self, index: usize, _width: Width) -> Result<()> {
        if index >= self.params.len() {
            crate::bail!(ErrorKind::UnsupportedWidth, "{}: no parameters for width #{index}", self.name);
        }
        self.active = index;
        Ok(())
    }
    fn param_bytes(&self, _width: Width) -> usize {
        self.params.iter().map(|(s, b)| (s.len() + b.len()) * 4).sum()
    }
}

/// Element-wise sum of two or more inputs of the same shape.
pub struct Add {
    pub name: String,
}

impl Layer for Add {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        match inputs {
            [first, rest @ ..] if !rest.is_empty() && rest.iter().all(|s| s == first) => Ok(first.to_vec()),
            _ => crate::bail!(
                ErrorKind::ShapeMismatch,
                "{}: needs two or more inputs of one shape, got {inputs:?}",
                self.name
            ),
        }
    }
    works_in_place!();
    fn forward_owned(&self, mut out: Tensor, rest: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        let shapes: Vec<&[usize]> = std::iter::once(out.shape()).chain(rest.iter().map(|t| t.shape())).collect();
        self.output_shape(&shapes)?;
        for t in rest {
            out.data_mut().iter_mut().zip(t.data()).for_each(|(a, &b)| *a += b);
        }
        Ok(out)
    }
    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], _ctx: &mut Context) -> Result<Vec<Tensor>> {
        no_flips(flip, &self.name)?;
        Ok(inputs.iter().map(|_| grad.clone()).collect())
    }
}

pub struct Flatten {
    pub name: String,
}

impl Layer for Flatten {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let shape = single(inputs, &self.name)?;
        match numel(shape) {
            Some(n) => Ok(vec![n]),
            None => crate::bail!(ErrorKind::BadShape, "{}: shape {shape:?} overflows", self.name),
        }
    }
    works_in_place!();
    fn forward_owned(&self, x: Tensor, rest: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        no_rest(rest, &self.name)?;
        let n = x.len();
        x.reshape(vec![n])
    }
    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], _ctx: &mut Context) -> Result<Vec<Tensor>> {
        no_flips(flip, &self.name)?;
        let x = single(inputs, &self.name)?;
        Ok(vec![grad.clone().reshape(x.shape().to_vec())?])
    }
}

/// Softmax over the last dimension.
pub struct Softmax {
    pub name: String,
}

impl Layer for Softmax {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let shape = single(inputs, &self.name)?;
        match shape.last() {
            Some(&n) if n > 0 => Ok(shape.to_vec()),
            _ => crate::bail!(ErrorKind::ShapeMismatch, "{}: empty last dimension in {shape:?}", self.name),
        }
    }
    works_in_place!();
    fn forward_owned(&self, mut out: Tensor, rest: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        no_rest(rest, &self.name)?;
        let n = self.output_shape(&[out.shape()])?.last().copied().unwrap_or(1);
        for row in out.data_mut().chunks_exact_mut(n) {
            softmax_in_place(row);
        }
        Ok(out)
    }
    /// `dx = y * (g - sum(g * y))` per row, with `y` the softmax.
    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], ctx: &mut Context) -> Result<Vec<Tensor>> {
        no_flips(flip, &self.name)?;
        let y = self.forward(inputs, ctx)?;
        let n = y.shape().last().copied().unwrap_or(1);
        let mut dx = grad.clone();
        for (d, yr) in dx.data_mut().chunks_exact_mut(n).zip(y.data().chunks_exact(n)) {
            let s: f32 = d.iter().zip(yr).map(|(g, y)| g * y).sum();
            d.iter_mut().zip(yr).for_each(|(g, y)| *g = y * (*g - s));
        }
        Ok(vec![dx])
    }
}

/// Numerically stable softmax (subtracts the maximum first).
pub fn softmax_in_place(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    if sum > 0.0 {
        v.iter_mut().for_each(|x| *x /= sum);
    }
}

/// GELU, `x * Phi(x)` with the Gaussian CDF in its erf form (BERT's `gelu`, not the tanh
/// approximation).
pub struct Gelu {
    pub name: String,
}

impl Layer for Gelu {
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        Ok(single(inputs, &self.name)?.to_vec())
    }
    works_in_place!();
    fn forward_owned(&self, mut out: Tensor, rest: &[&Tensor], _ctx: &mut Context) -> Result<Tensor> {
        no_rest(rest, &self.name)?;
        out.data_mut().iter_mut().for_each(|v| *v = gelu(*v));
        Ok(out)
    }
    fn backward(&self, _: &[&Tensor], _: &Tensor, _: &[u32], _: &mut Context) -> Result<Vec<Tensor>> {
        super::no_backward(&self.name)
    }
}

pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function (std has none): Abramowitz and Stegun 7.1.28,
/// `1 - (1 + a1 x + ... + a6 x^6)^-16`, absolute error below 3e-7 and no `exp`, so the 1536-wide
/// feed-forward's GELU costs a few multiplies per element. In f64: the 16th power multiplies the
/// polynomial's rounding error by 16, which f32 would carry into the 7th digit.
pub fn erf(x: f32) -> f32 {
    const A: [f64; 6] = [0.070_523_078_4, 0.042_282_012_3, 0.009_270_527_2, 0.000_152_014_3, 0.000_276_567_2, 0.000_043_063_8];
    let z = x.abs() as f64;
    let poly = 1.0 + z * (A[0] + z * (A[1] + z * (A[2] + z * (A[3] + z * (A[4] + z * A[5])))));
    let p2 = poly * poly;
    let p4 = p2 * p2;
    let p8 = p4 * p4;
    let e = (1.0 - 1.0 / (p8 * p8)) as f32;
    if x < 0.0 { -e } else { e }
}
