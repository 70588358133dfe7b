//! The model graph stored as JSON in an `.anybit` file's metadata (docs/FORMAT.md).
//! Plain serde types, so that writers (the exporter, tests) can build them freely; a graph read
//! from a file reaches the model only inside a checked [`super::ModelFile`] (graph_check.rs).

use serde::{Deserialize, Serialize};

use crate::bits::Bits;

pub const FORMAT_NAME: &str = "anybit";
/// The newest version: readers read up to it. Version 2 keeps the fixed 8-bit layers' codes in
/// their own tensor before the planes, so that a prefix of the file can run the any-precision
/// widths; version 3 adds text models (the `text` field, the text ops, shared tensors and
/// embedding tables). Writers write the oldest version that holds the graph
/// ([`version_needed`]), so image models stay readable by version-2 runtimes.
pub const FORMAT_VERSION: u32 = 3;
/// The version that introduced text models.
pub const TEXT_VERSION: u32 = 3;
/// The oldest version readers accept (version 1: every layer's codes in the planes).
pub const MIN_FORMAT_VERSION: u32 = 1;

/// Whether a layer's codes live in the `fixed8` tensor of a file of this version (else in the planes).
pub(super) fn in_fixed_store(version: u32, precision: Precision) -> bool {
    version >= 2 && precision == Precision::Fixed8
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Graph {
    /// Always "anybit".
    pub format: String,
    /// Format version; readers reject versions they do not know.
    pub version: u32,
    pub name: String,
    /// Input tensor shape without the batch dimension, NHWC order: [height, width, channels].
    /// A text model's input is `[max_tokens, 3]`: per token its id, its type and its attention
    /// mask (1 attends, 0 is padding); it runs on any length from 1 to `max_tokens`.
    pub input_shape: Vec<usize>,
    /// A text model's vocabulary and tokenizer settings, so that one file is all a page needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
    /// Optional class names, one per output logit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// The widths this model supports, each with the activation width used at that weight width.
    pub widths: Vec<Width>,
    /// Nodes in topological order. Node `i` reads the outputs named in `inputs`; the graph input
    /// is named "input". The last node's output is the model output.
    pub nodes: Vec<Node>,
    /// What the output means when it is more than one logit per label ([`Task`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// Scores per width measured by the exporter (for the precision policy and the UI). The
    /// first entry is the one the policy weighs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eval: Vec<EvalResult>,
    /// SHA-256 digests of the data, filled in by the writer (the caller's value is replaced).
    /// Optional: files without it load unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digests>,
}

/// SHA-256 digests (64 hex digits) of the data section: `tensors` covers every byte from the
/// end of the header to the first bit plane, `planes` each plane, most significant first. A
/// progressive loader checks each piece before using it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digests {
    pub tensors: String,
    pub planes: Vec<String>,
}

/// What a text model carries besides its weights: the WordPiece vocabulary (ids are indices)
/// and the tokenizer's settings (`crate::text`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub vocab: Vec<String>,
    pub tokenizer: crate::text::TokenizerConfig,
}

/// A run of consecutive rows of an embedding table stored at one bit width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowBits {
    /// Rows in this run.
    pub rows: usize,
    pub bits: Bits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Width {
    /// Weight bits of the any-precision layers.
    pub w: Bits,
    /// Activation bits at the input of the any-precision layers.
    pub a: Bits,
}

impl Width {
    /// A width from plain numbers, each checked to be in 1..=8.
    pub fn new(w: u8, a: u8) -> crate::Result<Width> {
        Ok(Width { w: Bits::new(w)?, a: Bits::new(a)? })
    }
}

/// A task whose output needs decoding beyond "one probability per label".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// Counterfactual detection (SemEval-2020 Task 5, both subtasks) on a text model whose output
    /// is `[tokens, 7]`: at token 0 (`[CLS]`) columns 0..2 are the sentence logits (not
    /// counterfactual, counterfactual); at every token columns 2..7 are the tag logits
    /// `O, B-Ant, I-Ant, B-Con, I-Con` ([`CF_TAGS`]).
    Counterfactual {
        /// Per weight width, the probability of the counterfactual class from which a sentence is
        /// called counterfactual, as pairs `[w, p]` (picked on the dev split); read through
        /// [`Task::threshold`].
        thresholds: Vec<(u8, f32)>,
    },
}

/// Columns of a counterfactual model's output: 2 sentence logits, then the tags.
pub const CF_COLUMNS: usize = 7;
/// The tags of a counterfactual model's columns 2..7, in order.
pub const CF_TAGS: [&str; 5] = ["O", "B-Ant", "I-Ant", "B-Con", "I-Con"];

impl Task {
    /// The decision threshold at weight width `w`: the stored one for `w`, else the nearest wider
    /// width's, else 0.5.
    pub fn threshold(&self, w: Bits) -> f32 {
        let Task::Counterfactual { thresholds } = self;
        thresholds
            .iter()
            .filter(|&&(b, _)| b >= w.get())
            .min_by_key(|&&(b, _)| b)
            .map_or(0.5, |&(_, p)| p)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalResult {
    pub dataset: String,
    /// What `accuracy` holds when it is not top-1 accuracy ("f1", "exact_match", ...); absent
    /// means accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    pub n: usize,
    /// Weight width -> score in [0, 1] (top-1 accuracy unless `metric` says otherwise), as pairs `[w, acc]`. Plain numbers here so that
    /// an out-of-range pair is reported as a bad value (the format's check), not a schema error;
    /// read them through [`EvalResult::by_width`].
    pub accuracy: Vec<(u8, f64)>,
}

impl EvalResult {
    /// The accuracy pairs of a checked graph, keyed by [`Bits`] (pairs outside 1..=8 skipped).
    pub fn by_width(&self) -> Vec<(Bits, f64)> {
        self.accuracy.iter().filter_map(|&(w, acc)| Bits::new(w).ok().map(|b| (b, acc))).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Unique name; also the prefix of this node's tensors ("{name}.w{bits}.scale", ...).
    pub name: String,
    pub inputs: Vec<String>,
    pub op: Op,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Follows the model width (weights at `w`, input activations at `a`).
    Model,
    /// Always 8-bit weights and activations (first and last layers, by convention).
    Fixed8,
}

/// Where a quantized layer's 8-bit weight codes lie inside each bit plane, and how they are used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantWeight {
    /// Logical weight shape. Conv: [out, kh, kw, in/groups]; dense: [out, in].
    pub shape: Vec<usize>,
    /// Index of this tensor's first code within its store: the flat code sequence of the bit
    /// planes (every plane holds the same sequence, one bit per code), or for `fixed8` layers from
    /// version 2 on the `fixed8` tensor of whole codes. A multiple of 8.
    pub code_offset: usize,
    pub precision: Precision,
    /// Whether per-width bias tensors "{node}.w{b}.bias" exist.
    #[serde(default)]
    pub bias: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// 2-D convolution, NHWC, quantized input (PACT clip per width) and weights.
    Conv2d {
        weight: QuantWeight,
        stride: [usize; 2],
        /// [top, left, bottom, right]
        padding: [usize; 4],
        dilation: [usize; 2],
        groups: usize,
    },
    /// Fully connected, quantized like Conv2d; flattens its input.
    Dense { weight: QuantWeight },
    MaxPool { kernel: [usize; 2], stride: [usize; 2], padding: [usize; 4] },
    /// Average over the window, counting only in-bounds positions.
    AvgPool { kernel: [usize; 2], stride: [usize; 2], padding: [usize; 4] },
    GlobalAvgPool,
    Relu,
    Relu6,
    Clamp { min: f32, max: f32 },
    /// Per-channel `x * scale + bias` with one pair per width ("{node}.w{b}.scale", ".bias"):
    /// a folded switchable BatchNorm.
    Affine,
    /// Element-wise sum of its inputs (residual connection).
    Add,
    Flatten,
    Softmax,
    /// Per-token fully connected layer on `[tokens, in]` (or `[in]`): weights follow the model
    /// width with per-output-channel scales (`{node}.w{b}.wscale` is `[out]`), activations are
    /// quantized per token to `a` bits over the token's own range (dynamic, asymmetric), and the
    /// bias `{node}.shared.bias` is shared by all widths. With `smooth`, the input is divided by
    /// per-channel factors `{node}.shared.smooth` (`[in]`, > 0) before it is quantized, the
    /// weights having been multiplied by them (SmoothQuant): outlier channels of the hidden state
    /// then stop widening every token's quantization step.
    Linear {
        weight: QuantWeight,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        smooth: bool,
    },
    /// Normalizes each token over the last dimension, then a per-width affine
    /// (`{node}.w{b}.scale`, `.bias`).
    LayerNorm { eps: f32 },
    /// `x * Phi(x)` with the Gaussian CDF (the erf form BERT uses).
    Gelu,
    /// Token + position + token-type embeddings of the graph input `[tokens, 3]`. The three
    /// tables are one stack of `vocab + positions + types` rows of `hidden` values, each row
    /// stored as `bits`-bit codes `q` standing for `lo + step * q` (`codes.{node}`,
    /// `{node}.lo`, `{node}.step`); `rows` gives the bits of consecutive runs of rows.
    Embed { vocab: usize, positions: usize, types: usize, hidden: usize, rows: Vec<RowBits> },
    /// Multi-head self-attention: inputs `[q, k, v, "input"]`, the last for the padding mask;
    /// softmax(q k^T / sqrt(head size)) v per head, in f32.
    Attention { heads: usize },
    /// Mean over the tokens whose mask is 1: inputs `[x, "input"]`, output `[hidden]`.
    MeanPool,
    /// The first token's vector (`[CLS]`): output `[hidden]`.
    ClsPool,
}

impl Op {
    /// The quantized weight of a `conv2d` or `dense` node.
    pub fn weight(&self) -> Option<&QuantWeight> {
        match self {
            Op::Conv2d { weight, .. } | Op::Dense { weight } | Op::Linear { weight, .. } => Some(weight),
            _ => None,
        }
    }

    pub(super) fn weight_mut(&mut self) -> Option<&mut QuantWeight> {
        match self {
            Op::Conv2d { weight, .. } | Op::Dense { weight } | Op::Linear { weight, .. } => Some(weight),
            _ => None,
        }
    }
}

/// Whether a graph uses anything of version 3 (text models).
pub fn uses_text(g: &Graph) -> bool {
    g.text.is_some()
        || g.task.is_some()
        || g.nodes.iter().any(|n| {
            matches!(
                n.op,
                Op::Linear { .. } | Op::LayerNorm { .. } | Op::Gelu | Op::Embed { .. } | Op::Attention { .. } | Op::MeanPool | Op::ClsPool
            )
        })
}

/// The oldest version that can hold `g`: what writers write.
pub fn version_needed(g: &Graph) -> u32 {
    if uses_text(g) { TEXT_VERSION } else { 2 }
}

impl RowBits {
    /// Bytes of a table of `hidden`-wide rows stored in these runs (rows packed back to back,
    /// least significant bit first), or `None` on overflow.
    pub fn table_bytes(runs: &[RowBits], hidden: usize) -> Option<usize> {
        let bits = runs.iter().try_fold(0usize, |acc, r| acc.checked_add(r.rows.checked_mul(hidden)?.checked_mul(r.bits.count())?))?;
        Some(bits.div_ceil(8))
    }
}
