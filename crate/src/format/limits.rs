//! Limits a reader enforces on top of "the bytes must justify it". They are generous for the
//! models this runtime targets (MNIST CNNs to EfficientNet-Lite) and keep every size computation
//! far from overflow, also with 32-bit `usize` in wasm32.

/// Largest JSON header (the safetensors header, which embeds the graph). A progressive loader
/// fetches [`super::HEADER_PROBE_LEN`] bytes first and at most this many in total.
pub const MAX_HEADER_LEN: usize = 16 << 20;
/// Largest number of weight codes (all quantized layers together).
pub const MAX_CODES: usize = 1 << 30;
pub const MAX_NODES: usize = 1 << 16;
/// Largest kernel side of a convolution or pooling window.
pub const MAX_KERNEL: usize = 64;
pub const MAX_STRIDE: usize = 64;
pub const MAX_DILATION: usize = 64;
/// Largest number of channels into or out of a convolution.
pub const MAX_CHANNELS: usize = 1 << 16;
pub const MAX_ADD_INPUTS: usize = 16;
/// Largest input tensor (height * width * channels).
pub const MAX_INPUT_ELEMS: usize = 1 << 24;
/// Longest token sequence a text model may take (and rows of its position table).
pub const MAX_TOKENS: usize = 8192;
/// Largest vocabulary of a text model.
pub const MAX_VOCAB: usize = 1 << 20;
/// Largest number of token types (segments) of a text model.
pub const MAX_TOKEN_TYPES: usize = 16;
