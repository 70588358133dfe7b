//! anybit: run neural networks at any weight precision from 8 bits down to 1 bit.
//!
//! Layers of the crate, bottom up (docs/ARCHITECTURE.md has the one-page tour):
//! - [`bits`]: [`Bits`], a width in 1..=8, checked once where it enters.
//! - [`quant`]: the nested weight quantizer and PACT activation codes (shared with the trainer).
//! - [`timing`]: measurement on a host-supplied clock, for [`mod@bench`] and [`policy`].
//! - [`kernels`]: integer GEMM on bit-packed codes, one file per packing scheme (Dot16, BitSerial,
//!   Lut, Dot8) and per instruction set (generic, SIMD128, relaxed SIMD); [`mod@bench`] measures them.
//! - [`mod@format`]: the `.anybit` file (safetensors + JSON [`format::Graph`]), bit-plane-major weights.
//! - [`tensor`], [`layers`]: f32 NHWC tensors and the layers built on the kernels.
//! - [`model`]: a graph of layers with a switchable width.
//! - [`grad`]: input gradients of losses on the logits through the quantized pass (straight-through
//!   at activation quantizers and clamps), and the ADV-ReLU correction; [`attack`]: seven attacks
//!   built on them as resumable runs (docs/ATTACKS.md).
//! - [`policy`]: per-width latency predicted from an on-device calibration; width choice for a budget.
//! - [`text`]: BERT WordPiece tokenization, id-for-id and offset-for-offset with Hugging Face
//!   `tokenizers`, for text models.
//! - [`image`]: RGBA images (a canvas's pixels) turned into model inputs.
//! - [`session`]: a loaded model as an API serves it: whole or progressive loading, width and
//!   threads, calibrate/decide, run results with probabilities and top classes.
//! - `wasm` (wasm32 only): the JavaScript API, converting between JS values and [`session`].

pub mod attack;
pub mod bench;
pub mod bits;
pub mod error;
pub mod format;
pub mod grad;
pub mod image;
pub mod kernels;
pub mod layers;
pub mod model;
pub mod policy;
pub mod quant;
pub mod session;
pub mod tensor;
pub mod text;
pub mod timing;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use bits::Bits;
pub use error::{Error, ErrorKind, Result};
pub use model::Model;
pub use tensor::Tensor;
