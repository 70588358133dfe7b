//! The part Conv2d and Dense share: 8-bit codes kept for the life of the model, the packed
//! weights of the current width derived from them, and integer GEMM + dequantization.

use std::sync::OnceLock;

use super::{float, ChannelAffine, Context};
use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::format::{Precision, Width};
use crate::kernels::{self, ActCodes, PackedSize, PackedWeights, Scheme, Window};
use crate::quant;

/// The first `n` elements of `acc`, grown if needed but not zeroed: the GEMM writes them all.
fn scratch(acc: &mut Vec<i32>, n: usize) -> &mut [i32] {
    if acc.len() < n {
        acc.resize(n, 0);
    }
    &mut acc[..n]
}

/// Per-width parameters of a quantized layer (see docs/FORMAT.md for the tensor names).
#[derive(Clone, Debug, PartialEq)]
pub struct WidthParams {
    /// Weight scale E_b: a b-bit code c stands for E_b * (2c / (2^b - 1) - 1).
    pub wscale: f32,
    /// PACT clip of the layer's input: activations are clamped to [0, clip] and quantized.
    pub clip: f32,
    /// Optional per-output bias, added after dequantization.
    pub bias: Option<Vec<f32>>,
    /// Optional per-output-channel factors of `wscale` (a `linear` node's per-channel scales).
    pub row_scales: Option<Vec<f32>>,
}

/// How a quantized layer turns its f32 input into activation codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActQuant {
    /// PACT: clamp to `[0, clip]` (a per-width parameter) and round to `a` bits.
    Pact,
    /// Per column (token) over its own range `[lo, hi]`, rounded to `a` bits: for inputs with no
    /// fixed sign or range, such as a transformer's hidden states.
    Dynamic,
}

/// How a convolution without an im2col packs its input ([`QuantWeights::gemm_conv`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// Lut index planes or Dot8 codes over the padded image (`kernels::Window`).
    Window,
    /// A padded i16 image read in place by Dot16's pairs (`kernels::DirectActs`).
    Direct,
}

/// What the current width resolved to: packed weights for each group and the dequantization.
struct Active {
    packed: Vec<PackedWeights>,
    wbits: Bits,
    abits: Bits,
    clip: f32,
    wscale: f32,
    /// The dequantized weights of this width, [groups * rows][depth], made on the first float
    /// twin or backward pass (inference never needs them, so it never pays their memory).
    float: OnceLock<Vec<f32>>,
    /// E * clip / (2^wb * La): turns `2*acc - Lw*colsum` into the real dot product. A weight
    /// code c stands for E ((2c + 1) / 2^wb - 1) = E (2c - Lw) / 2^wb and an activation code a for
    /// a * clip / La, so the dot product is E clip / (2^wb La) * (2 Σ c a - Lw Σ a).
    step: f32,
    lw: i32,
    bias: Option<Vec<f32>>,
    row_scales: Option<Vec<f32>>,
    /// Per output row (all groups): the dequantization step (`step`, times the row's scale if
    /// any) and the bias (0 if none), so that the epilogue is one multiply-add per value.
    row_step: Vec<f32>,
    row_bias: Vec<f32>,
    /// Whether `2 * acc - Lw * colsum` fits i32 for every column (`2 depth Lw La < 2^31`): the
    /// epilogue then stays in i32, which wasm SIMD converts to f32 directly.
    narrow: bool,
    /// Dynamic activations: `Σ_k (2 c_k - Lw)` of each row, so that a column's offset `lo`
    /// enters as `lo * rowsum`.
    row_codes: Vec<i64>,
}

pub struct QuantWeights {
    name: String,
    groups: usize,
    /// Output rows per group.
    rows: usize,
    /// Depth (inputs per output) of each group's GEMM.
    depth: usize,
    /// 8-bit codes, [groups * rows][depth], row-major.
    codes8: Vec<u8>,
    precision: Precision,
    acts: ActQuant,
    widths: Vec<WidthParams>,
    active: Option<Active>,
    /// A convolution the direct path can run ([`kernels::best_direct_scheme`]).
    direct: bool,
}

impl QuantWeights {
    pub fn new(
        name: &str,
        codes8: Vec<u8>,
        groups: usize,
        rows: usize,
        depth: usize,
        precision: Precision,
        widths: Vec<WidthParams>,
    ) -> Result<Self> {
        let expected = groups.checked_mul(rows).and_then(|r| r.checked_mul(depth));
        if expected != Some(codes8.len()) || groups == 0 || rows == 0 || depth == 0 {
            crate::bail!(
                ErrorKind::BadShape,
                "{name}: {} weight codes do not form {groups} groups of {rows} x {depth}",
                codes8.len()
            );
        }
        for (i, p) in widths.iter().enumerate() {
            let bias_ok = p.bias.as_ref().is_none_or(|b| b.len() == groups * rows);
            let rows_ok = p.row_scales.as_ref().is_none_or(|r| r.len() == groups * rows && r.iter().all(|v| v.is_finite()));
            if !(p.clip > 0.0 && p.clip.is_finite() && p.wscale.is_finite() && bias_ok && rows_ok) {
                crate::bail!(ErrorKind::BadValue, "{name}: invalid parameters for width #{i}");
            }
        }
        Ok(QuantWeights {
            name: name.to_string(),
            groups,
            rows,
            depth,
            codes8,
            precision,
            acts: ActQuant::Pact,
            widths,
            active: None,
            direct: false,
        })
    }

    /// Says that these are the weights of a convolution the direct path can run (its kernel and
    /// channels fit, stride and dilation 1, one group): they are packed for its scheme.
    pub(crate) fn set_direct(&mut self, direct: bool) {
        self.direct = direct;
    }

    /// The scheme these weights are packed for at a width's bits.
    pub fn scheme(&self, wbits: Bits, abits: Bits) -> Scheme {
        if self.direct {
            kernels::best_direct_scheme(wbits, abits, self.depth)
        } else {
            kernels::best_scheme(wbits, abits, self.depth)
        }
    }

    /// The same layer with activations quantized by `acts`.
    pub fn with_acts(mut self, acts: ActQuant) -> Self {
        self.acts = acts;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn groups(&self) -> usize {
        self.groups
    }
    pub fn rows_per_group(&self) -> usize {
        self.rows
    }
    pub fn depth(&self) -> usize {
        self.depth
    }
    pub fn outputs(&self) -> usize {
        self.groups * self.rows
    }

    /// Bits of weights and input activations this layer runs at for a model width.
    pub fn bits_at(&self, width: Width) -> (Bits, Bits) {
        match self.precision {
            Precision::Model => (width.w, width.a),
            Precision::Fixed8 => (Bits::MAX, Bits::MAX),
        }
    }

    /// The GEMMs this layer runs at `width` over `cols` activation columns per group.
    pub fn gemm_shape(&self, cols: usize, width: Width) -> super::GemmShape {
        let (wbits, abits) = self.bits_at(width);
        super::GemmShape { rows: self.rows_per_group(), depth: self.depth(), cols, wbits, abits, count: self.groups(), window: None }
    }

    /// Heap bytes at `width`: the 8-bit codes (kept, so any width can be derived later), every
    /// width's biases, and the weights packed for `width`.
    pub fn param_bytes(&self, width: Width) -> usize {
        let (wbits, abits) = self.bits_at(width);
        let packed = PackedSize::of(self.rows, self.depth, wbits, self.scheme(wbits, abits)).heap_bytes();
        let per_row: usize = self.widths.iter().flat_map(|p| [p.bias.as_ref(), p.row_scales.as_ref()]).flatten().map(|b| b.len() * 4).sum();
        let row_codes = if self.acts == ActQuant::Dynamic { self.outputs() * 8 } else { 0 };
        self.codes8.len() + per_row + row_codes + self.groups * packed
    }

    /// Derive the b-bit codes from the stored 8-bit ones and pack them for the kernel. No file
    /// access and no calibration: this is the whole cost of a width switch for this layer.
    pub fn set_width(&mut self, index: usize, width: Width) -> Result<()> {
        let Some(params) = self.widths.get(index) else {
            crate::bail!(ErrorKind::UnsupportedWidth, "{}: no parameters for width #{index}", self.name);
        };
        let (wbits, abits) = self.bits_at(width);
        let scheme = self.scheme(wbits, abits);
        let group_len = self.rows * self.depth;
        let mut derived = vec![0u8; group_len];
        let mut packed = Vec::with_capacity(self.groups);
        let lw = quant::levels(wbits) as f32;
        let mut row_codes = Vec::new();
        for g in 0..self.groups {
            let src = &self.codes8[g * group_len..(g + 1) * group_len];
            for (d, &c) in derived.iter_mut().zip(src) {
                *d = quant::derive_code(c, wbits);
            }
            if self.acts == ActQuant::Dynamic {
                row_codes.extend(derived.chunks_exact(self.depth).map(|row| {
                    row.iter().map(|&c| 2 * c as i64).sum::<i64>() - lw as i64 * self.depth as i64
                }));
            }
            packed.push(PackedWeights::new(&derived, self.rows, self.depth, wbits, scheme)?);
        }
        let la = quant::levels(abits) as f32;
        let n = (1u32 << wbits.get()) as f32;
        let step = match self.acts {
            ActQuant::Pact => params.wscale * params.clip / (n * la),
            ActQuant::Dynamic => params.wscale / n,
        };
        let outputs = self.outputs();
        let row_step = (0..outputs).map(|r| params.row_scales.as_ref().map_or(step, |s| step * s[r])).collect();
        let row_bias = params.bias.clone().unwrap_or_else(|| vec![0.0; outputs]);
        let narrow = 2 * self.depth as u64 * lw as u64 * la as u64 <= i32::MAX as u64;
        self.active = Some(Active {
            packed,
            wbits,
            abits,
            clip: params.clip,
            wscale: params.wscale,
            float: OnceLock::new(),
            // Dynamic activations carry their own step per column; the weight half is the same.
            step,
            row_step,
            row_bias,
            narrow,
            lw: lw as i32,
            bias: params.bias.clone(),
            row_scales: params.row_scales.clone(),
            row_codes,
        });
        Ok(())
    }

    fn active(&self) -> Result<&Active> {
        match &self.active {
            Some(a) => Ok(a),
            None => crate::bail!(ErrorKind::InvalidArgument, "{}: no width selected", self.name),
        }
    }

    /// Quantize an f32 input into `ctx.input_codes` with this layer's clip and activation bits.
    pub(crate) fn quantize_input(&self, x: &[f32], ctx: &mut Context) -> Result<()> {
        let a = self.active()?;
        ctx.input_codes.resize(x.len(), 0);
        quant::act_codes(x, a.clip, a.abits, &mut ctx.input_codes);
        Ok(())
    }

    /// GEMM of group `g` over `cols` activation-code columns in `ctx.col_codes` ([cols][depth]),
    /// dequantized into `out` at `out[col * out_stride + g * rows + row]`, then `affine` (over all
    /// groups' outputs) applied while the column is in cache. With `fill`, the codes are not
    /// there yet: `fill(c0, c1, codes)` writes columns `c0..c1` (a convolution's im2col) on the
    /// thread that packs and multiplies them, in the GEMM's fork.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm_group(
        &self,
        g: usize,
        cols: usize,
        ctx: &mut Context,
        out: &mut [f32],
        out_stride: usize,
        affine: Option<ChannelAffine<'_>>,
        fill: Option<&(dyn Fn(usize, usize, &mut [u8]) + Sync)>,
    ) -> Result<()> {
        let a = self.active()?;
        let Context { isa, threads, col_codes, acts, acc, .. } = ctx;
        let acc = scratch(acc, cols * self.rows);
        let epilogue = self.epilogue(a, g, out_stride, affine);
        let mut rest = &mut out[..cols * out_stride];
        let part = |c0: usize, c1: usize| {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut((c1 - c0) * out_stride);
            rest = tail;
            part
        };
        let Some(n) = cols.checked_mul(self.depth) else {
            crate::bail!(ErrorKind::LimitExceeded, "{}: {cols} columns x depth {} overflows", self.name, self.depth);
        };
        let codes = match fill {
            Some(f) => {
                col_codes.resize(n, 0);
                ActCodes::Fill(&mut col_codes[..], f)
            }
            None => ActCodes::Ready(col_codes.get(..n).unwrap_or(col_codes)),
        };
        kernels::pack_gemm_then(*isa, &a.packed[g], acts, codes, cols, a.abits, acc, *threads, part, &|_, acc, sums, out| epilogue(acc, sums, out))
    }

    /// [`gemm_group`](Self::gemm_group) for a one-group convolution with stride and dilation 1
    /// without an im2col, from its f32 input `x` (the image), quantized and packed once in one
    /// pass where an im2col would copy the codes `kh * kw` times:
    /// - `Path::Window`, as Lut index planes or the Dot8 image of codes ([`kernels::Window`]):
    ///   needs a [`window_scheme`](Self::window_scheme);
    /// - `Path::Direct`, as a padded i16 image ([`kernels::DirectActs`]): needs Dot16 and a
    ///   geometry that [`kernels::direct_fits`] (a shallow first layer).
    pub(crate) fn gemm_conv(&self, x: &[f32], win: Window, path: Path, ctx: &mut Context, out: &mut [f32], affine: Option<ChannelAffine<'_>>) -> Result<()> {
        let a = self.active()?;
        if self.groups != 1 || win.depth() != self.depth {
            crate::bail!(ErrorKind::InvalidArgument, "{}: a convolution without im2col needs one group of depth {}", self.name, self.depth);
        }
        let columns = match path {
            Path::Window => win.columns(),
            Path::Direct => win.ho * win.wo,
        };
        let Some(n) = columns.checked_mul(self.rows) else {
            crate::bail!(ErrorKind::LimitExceeded, "{}: {columns} columns x {} rows overflows", self.name, self.rows);
        };
        let Context { isa, threads, window, direct, acc, .. } = ctx;
        let acc = scratch(acc, n);
        let epilogue = self.epilogue(a, 0, self.rows, affine);
        let mut rest = &mut out[..win.ho * win.wo * self.rows];
        let part = |p0: usize, p1: usize| {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut((p1 - p0) * self.rows);
            rest = tail;
            part
        };
        let then = |_, acc: &[i32], sums: &[i32], out: &mut [f32]| epilogue(acc, sums, out);
        match path {
            Path::Window => {
                // The pack splits over the threads the GEMM will.
                let pack_threads = kernels::split_threads(&a.packed[0], columns, a.abits, *threads);
                window.pack_floats(x, win, a.clip, a.abits, a.packed[0].scheme(), pack_threads)?;
                kernels::window_gemm_then(*isa, &a.packed[0], window, acc, *threads, part, &then)
            }
            Path::Direct => {
                direct.pack_floats(x, win, a.clip, a.abits)?;
                kernels::direct_gemm_then(*isa, &a.packed[0], direct, acc, *threads, part, &then)
            }
        }
    }

    /// The scheme the window path runs the current width on for `win`, if it does: Lut, or Dot8
    /// with its activations in one plane ([`Window::fits`]).
    pub(crate) fn window_scheme(&self, win: &Window) -> Option<Scheme> {
        let a = self.active.as_ref()?;
        let scheme = a.packed.first()?.scheme();
        (a.packed.iter().all(|p| p.scheme() == scheme) && win.fits(scheme, a.abits)).then_some(scheme)
    }

    /// Whether the current width multiplies on `scheme` (Dot16 for the direct path).
    pub(crate) fn runs_on(&self, scheme: Scheme) -> bool {
        self.active.as_ref().is_some_and(|a| a.packed.iter().all(|p| p.scheme() == scheme))
    }

    /// The dequantization epilogue of group `g`: a column block of the output, one pixel
    /// (`out_stride` values) per column, from its accumulators (`rows` per column) and code sums,
    /// right after the GEMM of those columns, with `affine` (over all groups' outputs) applied
    /// while the column is in cache.
    fn epilogue<'a>(&'a self, a: &'a Active, g: usize, out_stride: usize, affine: Option<ChannelAffine<'a>>) -> impl Fn(&[i32], &[i32], &mut [f32]) + Sync + 'a {
        let base = g * self.rows;
        let (steps, biases) = (&a.row_step[base..base + self.rows], &a.row_bias[base..base + self.rows]);
        let affine = affine.map(|f| f.part(base, self.rows));
        move |acc: &[i32], sums: &[i32], out: &mut [f32]| {
            let n = self.rows;
            for ((&sum, px), row_acc) in sums.iter().zip(out.chunks_exact_mut(out_stride)).zip(acc.chunks_exact(n)) {
                let dst = &mut px[base..base + n];
                if a.narrow {
                    let correction = a.lw * sum;
                    let value = |v: i32, step: f32, bias: f32| step * (2 * v - correction) as f32 + bias;
                    if let Some(f) = &affine {
                        // One pass for both: the same operations as the affine layer's own. An
                        // index loop over slices of one length, which vectorizes (a zip of six
                        // iterators did not: 11% of an MNIST pass at 1 bit).
                        let (steps, biases, scale, shift) = (&steps[..n], &biases[..n], &f.scale[..n], &f.bias[..n]);
                        for i in 0..n {
                            dst[i] = value(row_acc[i], steps[i], biases[i]) * scale[i] + shift[i];
                        }
                        continue;
                    }
                    for (((d, &v), &step), &bias) in dst.iter_mut().zip(row_acc).zip(steps).zip(biases) {
                        *d = value(v, step, bias);
                    }
                } else {
                    // i64: 2*acc can exceed i32 for deep layers even though acc itself fits.
                    let correction = a.lw as i64 * sum as i64;
                    for (((d, &v), &step), &bias) in dst.iter_mut().zip(row_acc).zip(steps).zip(biases) {
                        *d = step * (2 * v as i64 - correction) as f32 + bias;
                    }
                }
                if let Some(f) = &affine {
                    f.apply(dst);
                }
            }
        }
    }

    /// A dynamic-activation layer on `tokens` columns of f32 input (`x`: [tokens][depth]), one
    /// group: each column is quantized over its own `[lo, hi]` to `a` bits, `x ≈ lo + s q`, so
    /// `Σ w x ≈ s Σ w q + lo Σ w`; written to `out` as [tokens][rows]. With `inv_smooth`, each
    /// input channel is first multiplied by its factor (in the same pass as the quantization).
    pub(crate) fn gemm_dynamic(&self, x: &[f32], inv_smooth: Option<&[f32]>, tokens: usize, ctx: &mut Context, out: &mut [f32]) -> Result<()> {
        let a = self.active()?;
        if self.acts != ActQuant::Dynamic || self.groups != 1 {
            crate::bail!(ErrorKind::InvalidArgument, "{}: not a one-group layer with dynamic activations", self.name);
        }
        let la = quant::levels(a.abits) as f32;
        let mut ranges = Vec::with_capacity(tokens);
        ctx.col_codes.clear();
        let mut smoothed = Vec::new();
        for col in x.chunks_exact(self.depth).take(tokens) {
            let col = match inv_smooth {
                Some(f) => {
                    smoothed.clear();
                    smoothed.extend(col.iter().zip(f).map(|(v, s)| v * s));
                    &smoothed[..]
                }
                None => col,
            };
            let (lo, hi) = col.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
            let s = if hi > lo { (hi - lo) / la } else { 0.0 };
            let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
            ctx.col_codes.extend(col.iter().map(|&v| (((v - lo) * inv + 0.5).floor()).clamp(0.0, la) as u8));
            ranges.push((lo, s));
        }
        let Context { isa, threads, col_codes, acts, acc, .. } = ctx;
        let acc = scratch(acc, tokens * self.rows);
        // A block of tokens from `t0`, dequantized right after its GEMM, on the thread that ran it.
        let epilogue = |t0: usize, acc: &[i32], sums: &[i32], dst: &mut [f32]| {
            let cols = acc.chunks_exact(self.rows).zip(dst.chunks_exact_mut(self.rows)).zip(sums).zip(&ranges[t0..]);
            for (((row_acc, dst), &sum), &(lo, s)) in cols {
                let correction = a.lw as i64 * sum as i64;
                for (r, (d, &v)) in dst.iter_mut().zip(row_acc).enumerate() {
                    let bias = a.bias.as_ref().map_or(0.0, |b| b[r]);
                    let step = a.row_scales.as_ref().map_or(a.step, |rs| a.step * rs[r]);
                    let dot = s as f64 * (2 * v as i64 - correction) as f64 + lo as f64 * a.row_codes[r] as f64;
                    *d = (step as f64 * dot) as f32 + bias;
                }
            }
        };
        let mut rest = &mut out[..tokens * self.rows];
        let part = |t0: usize, t1: usize| {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut((t1 - t0) * self.rows);
            rest = tail;
            part
        };
        let codes = ActCodes::Ready(&col_codes[..tokens * self.depth]);
        kernels::pack_gemm_then(*isa, &a.packed[0], acts, codes, tokens, a.abits, acc, *threads, part, &epilogue)
    }

    /// The clip of the input quantizer at the current width: the gradient passes inside `[0, clip]`.
    pub fn clip(&self) -> Option<f32> {
        self.active.as_ref().map(|a| a.clip)
    }

    /// The float twin's input: clamped to `[0, clip]` like the quantizer, but not rounded.
    pub(crate) fn clamp_input(&self, x: &[f32]) -> Result<Vec<f32>> {
        let clip = self.active()?.clip;
        Ok(x.iter().map(|&v| v.max(0.0).min(clip)).collect())
    }

    /// Dequantized weights of group `g` at the current width, [rows][depth].
    fn float_group(&self, g: usize) -> Result<&[f32]> {
        let a = self.active()?;
        let all = a.float.get_or_init(|| {
            let depth = self.depth;
            self.codes8
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let e = a.row_scales.as_ref().map_or(a.wscale, |r| a.wscale * r[i / depth]);
                    quant::weight_value(quant::derive_code(c, a.wbits), a.wbits, e)
                })
                .collect()
        });
        let len = self.rows * self.depth;
        Ok(&all[g * len..(g + 1) * len])
    }

    /// The float twin of `gemm_group`: `cols` float columns ([cols][depth]) against the dequantized
    /// weights, written to `out` like `gemm_group`.
    pub(crate) fn float_gemm_group(&self, g: usize, cols: &[f32], out: &mut [f32], out_stride: usize) -> Result<()> {
        let w = self.float_group(g)?;
        let bias = self.active()?.bias.as_deref();
        float::matmul_nt(cols, w, self.depth, bias, out, out_stride, g * self.rows);
        Ok(())
    }

    /// Backward of group `g`: adds to `dcols` ([cols][depth]) the gradient of the columns given
    /// the gradient `grad` of the output (laid out like `gemm_group`'s `out`).
    pub(crate) fn backward_group(&self, g: usize, grad: &[f32], out_stride: usize, dcols: &mut [f32]) -> Result<()> {
        let w = self.float_group(g)?;
        float::matmul_tn_acc(grad, out_stride, g * self.rows, w, self.depth, dcols);
        Ok(())
    }

    /// Bits in use at the current width, for reports: (weight bits, activation bits).
    pub fn current_bits(&self) -> Option<(Bits, Bits)> {
        self.active.as_ref().map(|a| (a.wbits, a.abits))
    }
}
