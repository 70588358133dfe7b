//! Layers: plain structs built from named weights, each implementing [`Layer`].
//!
//! A layer's forward pass takes its inputs by reference and writes a new tensor; its backward
//! pass takes the same inputs again and the gradient of its output, and returns the gradient of
//! each input (input gradients for attacks: weights get none). Quantized layers ([`Conv2d`],
//! [`Dense`]) quantize their own input with a per-width PACT clip, run an integer kernel on the
//! codes, and dequantize; everything between them is f32.
//!
//! Gradient semantics (docs/ATTACKS.md): the forward pass is the quantized one; an activation
//! quantizer passes the gradient unchanged where its input lies in `[0, clip]` and blocks it
//! outside (the straight-through estimator), a clamp does the same for its own range, and the
//! backward products use the dequantized weights of the current width.

mod conv;
mod dense;
mod elementwise;
mod float;
mod linear;
mod norm;
mod pool;
mod quantized;
pub mod tokens;

pub use conv::Conv2d;
pub use dense::Dense;
pub use elementwise::{erf, gelu, softmax_in_place, Add, Affine, Clamp, Flatten, Gelu, Softmax};
pub use linear::Linear;
pub use norm::{normalize, LayerNorm};
pub use pool::{GlobalAvgPool, Pool, PoolKind};
pub use quantized::{ActQuant, QuantWeights, WidthParams};
pub use tokens::{Attention, ClsPool, Embed, MeanPool};

use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::format::Width;
use crate::kernels::{DirectActs, Isa, PackedActs, WindowActs};
use crate::tensor::Tensor;

/// A per-channel `y * scale + bias` over the last dimension (a folded BatchNorm, [`Affine`]) that
/// the layer before it applies in its own epilogue, with the same arithmetic (so the same values)
/// and without a pass of its own over the tensor.
#[derive(Clone, Copy, Debug)]
pub struct ChannelAffine<'a> {
    pub scale: &'a [f32],
    pub bias: &'a [f32],
}

impl<'a> ChannelAffine<'a> {
    /// Applies the affine to one pixel's channels (`px.len()` = the channel count; a group's
    /// channels with [`ChannelAffine::part`]).
    #[inline]
    pub fn apply(&self, px: &mut [f32]) {
        for ((v, s), b) in px.iter_mut().zip(self.scale).zip(self.bias) {
            *v = *v * s + b;
        }
    }
    /// The channels `offset..offset + n`.
    pub fn part(self, offset: usize, n: usize) -> ChannelAffine<'a> {
        ChannelAffine { scale: &self.scale[offset..offset + n], bias: &self.bias[offset..offset + n] }
    }
    pub fn channels(&self) -> usize {
        self.scale.len()
    }
}

/// Scratch space and execution settings shared by all layers of a model. Buffers grow to the
/// largest layer once and are reused, so steady-state inference does not allocate scratch.
pub struct Context {
    pub isa: Isa,
    pub threads: usize,
    /// Run quantized layers as their float twin: the dequantized weights of the current width
    /// on the clamped but unrounded input. The twin is differentiable everywhere the quantized
    /// pass has a straight-through gradient, so finite differences on it check backward passes.
    pub twin: bool,
    pub(crate) input_codes: Vec<u8>,
    pub(crate) col_codes: Vec<u8>,
    pub(crate) acts: PackedActs,
    pub(crate) acc: Vec<i32>,
    pub(crate) window: WindowActs,
    pub(crate) direct: DirectActs,
    /// Whether stride-1 convolutions skip the im2col where they can: on the Lut scheme the
    /// window path (`kernels::Window`), shallow ones on Dot16 the direct path
    /// (`kernels::DirectActs`); false runs them through im2col like every other convolution
    /// (tests compare the two).
    pub window_convs: bool,
}

impl Context {
    pub fn new(isa: Isa, threads: usize) -> Self {
        Context {
            isa,
            threads: threads.max(1),
            twin: false,
            input_codes: Vec::new(),
            col_codes: Vec::new(),
            acts: PackedActs::new(),
            acc: Vec::new(),
            window: WindowActs::default(),
            direct: DirectActs::default(),
            window_convs: true,
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new(Isa::best(), 1)
    }
}

pub trait Layer: Send + Sync {
    /// The output shape for these input shapes, or a `ShapeMismatch` error saying what is wrong.
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>>;
    fn forward(&self, inputs: &[&Tensor], ctx: &mut Context) -> Result<Tensor>;
    /// `forward` when the pass no longer needs the first input (`first`; `rest` are the others):
    /// a layer whose output has its first input's shape may write the output into that buffer
    /// and return it, so that an elementwise layer neither allocates nor copies. The default
    /// lends it to `forward`. A layer that writes into the buffer says so in [`Layer::in_place`].
    fn forward_owned(&self, first: Tensor, rest: &[&Tensor], ctx: &mut Context) -> Result<Tensor> {
        let mut inputs = Vec::with_capacity(rest.len() + 1);
        inputs.push(&first);
        inputs.extend_from_slice(rest);
        self.forward(&inputs, ctx)
    }
    /// This layer's per-channel affine at the current width, if it is one ([`Affine`]).
    fn channel_affine(&self) -> Option<ChannelAffine<'_>> {
        None
    }
    /// `forward` followed by `affine` (the next layer's [`Layer::channel_affine`]) on the
    /// output, in this layer's own pass; `None` where the layer cannot (the caller then runs the
    /// two separately).
    fn forward_affine(&self, _inputs: &[&Tensor], _affine: ChannelAffine<'_>, _ctx: &mut Context) -> Option<Result<Tensor>> {
        None
    }
    /// Whether `forward_owned` returns its first input's buffer as the output: then the input
    /// and output are never alive together (what `Model::memory_bytes` counts).
    fn in_place(&self) -> bool {
        false
    }
    /// The gradient of each input given the same inputs as `forward` and the gradient of the
    /// output. `flip` lists elements of a gated input (see [`Layer::gate`]) whose gate is inverted
    /// (ADV-ReLU); it is empty for the plain gradient.
    fn backward(&self, inputs: &[&Tensor], grad: &Tensor, flip: &[u32], ctx: &mut Context) -> Result<Vec<Tensor>>;
    /// The range `[lo, hi]` inside which this layer passes the gradient of its (only) input: a
    /// clamp's range or an activation quantizer's `[0, clip]`. `None` for layers without a gate.
    fn gate(&self) -> Option<(f32, f32)> {
        None
    }
    /// Select the parameters of width `index` (an index into the model's width list).
    fn set_width(&mut self, _index: usize, _width: Width) -> Result<()> {
        Ok(())
    }
    /// Integer multiply-accumulates of one forward pass (0 for layers without a kernel).
    fn macs(&self, _inputs: &[&[usize]]) -> u64 {
        0
    }
    /// The integer GEMMs one forward pass runs at `width` (what the precision policy costs).
    fn gemms(&self, _inputs: &[&[usize]], _width: Width) -> Vec<GemmShape> {
        Vec::new()
    }
    /// Heap bytes of the layer's parameters while it runs at `width` (what the precision
    /// policy's memory cap costs).
    fn param_bytes(&self, _width: Width) -> usize {
        0
    }
}

/// `count` integer GEMMs of `rows x depth` weight codes against `cols` activation columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct GemmShape {
    pub rows: usize,
    pub depth: usize,
    pub cols: usize,
    pub wbits: Bits,
    pub abits: Bits,
    pub count: usize,
    /// A convolution that runs on the window path (no im2col: `kernels::Window`), its geometry
    /// and the scheme of its pack: its columns are then `window.columns()`, not `cols`.
    #[serde(skip)]
    pub window: Option<(crate::kernels::Window, crate::kernels::Scheme)>,
}

impl GemmShape {
    pub fn macs(&self) -> u64 {
        (self.rows * self.depth * self.cols * self.count) as u64
    }
}

/// Gates `grad` by the input `x`: zero where `x` is outside `[lo, hi]`, except that elements listed
/// in `flip` take the opposite decision.
pub(crate) fn gate_grad(x: &[f32], (lo, hi): (f32, f32), flip: &[u32], grad: &mut [f32]) -> Result<()> {
    let inside = |v: f32| v >= lo && v <= hi;
    let mut flipped = Vec::with_capacity(flip.len());
    for &i in flip {
        match (x.get(i as usize), grad.get(i as usize)) {
            (Some(&v), Some(&g)) => flipped.push((i as usize, if inside(v) { 0.0 } else { g })),
            _ => crate::bail!(ErrorKind::InvalidArgument, "gate flip #{i} is outside the {} inputs", x.len()),
        }
    }
    for (g, &v) in grad.iter_mut().zip(x) {
        if !inside(v) {
            *g = 0.0;
        }
    }
    for (i, g) in flipped {
        grad[i] = g;
    }
    Ok(())
}

/// Checks that a layer without a gate got no flips.
pub(crate) fn no_flips(flip: &[u32], layer: &str) -> Result<()> {
    if !flip.is_empty() {
        crate::bail!(ErrorKind::InvalidArgument, "{layer} has no gate to flip");
    }
    Ok(())
}

/// The backward pass of the text layers: attacks and their gradients run on image models; text
/// models are fine-tuned by the trainer, which has its own autodiff.
pub(crate) fn no_backward<T>(layer: &str) -> Result<T> {
    crate::bail!(ErrorKind::InvalidArgument, "{layer}: text layers have no backward pass in the runtime")
}

/// Checks the number of inputs and returns the only one.
/// `forward_owned`'s check that a one-input layer got no others.
pub(crate) fn no_rest(rest: &[&Tensor], layer: &str) -> Result<()> {
    if rest.is_empty() {
        return Ok(());
    }
    crate::bail!(ErrorKind::ShapeMismatch, "{layer} takes exactly one input, got {}", rest.len() + 1)
}

pub(crate) fn single<'a, T: ?Sized>(inputs: &[&'a T], layer: &str) -> Result<&'a T> {
    match inputs {
        [x] => Ok(x),
        _ => crate::bail!(
            ErrorKind::ShapeMismatch,
            "{layer} takes exactly one input, got {}",
            inputs.len()
        ),
    }
}

/// Checks that a shape is an image [height, width, channels] with nonzero sizes.
pub(crate) fn image_dims(shape: &[usize], layer: &str) -> Result<(usize, usize, usize)> {
    match shape {
        &[h, w, c] if h > 0 && w > 0 && c > 0 => Ok((h, w, c)),
        _ => crate::bail!(
            ErrorKind::ShapeMismatch,
            "{layer} expects an image [height, width, channels], got {shape:?}"
        ),
    }
}

/// Output length of a sliding window, or an error when the window does not fit.
pub(crate) fn window_out(
    len: usize,
    pad_lo: usize,
    pad_hi: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    layer: &str,
) -> Result<usize> {
    let span = dilation.checked_mul(kernel.saturating_sub(1)).and_then(|s| s.checked_add(1));
    let padded = len.checked_add(pad_lo).and_then(|l| l.checked_add(pad_hi));
    match (span, padded) {
        (Some(span), Some(padded)) if stride > 0 && kernel > 0 && padded >= span => {
            Ok((padded - span) / stride + 1)
        }
        _ => crate::bail!(
            ErrorKind::ShapeMismatch,
            "{layer}: a window of {kernel} (dilation {dilation}, stride {stride}) does not fit \
             an input of {len} padded by {pad_lo}+{pad_hi}"
        ),
    }
}
