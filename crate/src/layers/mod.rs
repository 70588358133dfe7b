//! Layers: plain structs built from named weights, each implementing [`Layer`].
//!
//! A layer's forward pass takes its inputs by reference and writes a new tensor, so a later
//! backward pass (input gradients for attacks) can be added as another trait method without
//! changing the forward code: every input a backward pass needs is still alive in the model.
//! Quantized layers ([`Conv2d`], [`Dense`]) quantize their own input with a per-width PACT clip,
//! run an integer kernel on the codes, and dequantize; everything between them is f32.

mod conv;
mod dense;
mod elementwise;
mod pool;
mod quantized;

pub use conv::Conv2d;
pub use dense::Dense;
pub use elementwise::{Add, Affine, Clamp, Flatten, Softmax};
pub use pool::{GlobalAvgPool, Pool, PoolKind};
pub use quantized::{QuantWeights, WidthParams};

use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::format::Width;
use crate::kernels::{Isa, PackedActs};
use crate::tensor::Tensor;

/// Scratch space and execution settings shared by all layers of a model. Buffers grow to the
/// largest layer once and are reused, so steady-state inference does not allocate scratch.
pub struct Context {
    pub isa: Isa,
    pub threads: usize,
    pub(crate) input_codes: Vec<u8>,
    pub(crate) col_codes: Vec<u8>,
    pub(crate) acts: PackedActs,
    pub(crate) acc: Vec<i32>,
}

impl Context {
    pub fn new(isa: Isa, threads: usize) -> Self {
        Context {
            isa,
            threads: threads.max(1),
            input_codes: Vec::new(),
            col_codes: Vec::new(),
            acts: PackedActs::new(),
            acc: Vec::new(),
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
}

impl GemmShape {
    pub fn macs(&self) -> u64 {
        (self.rows * self.depth * self.cols * self.count) as u64
    }
}

/// Checks the number of inputs and returns the only one.
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
