//! Validation of the JSON graph on its own: every node's parameters, names, inputs and widths,
//! and where each quantized layer's codes lie. Cross-node shape inference (does a conv's input
//! channel count match what reaches it) is the model loader's job.

use std::collections::HashMap;

use super::limits::*;
use super::names::{valid_node_name, INPUT};
use crate::bail;
use crate::error::{ErrorKind, Result};
use super::graph::{in_fixed_store, Graph, Op, QuantWeight, Task, FORMAT_NAME, FORMAT_VERSION, MIN_FORMAT_VERSION};

/// One quantized layer's slice of the flat code sequence.
#[derive(Clone, Copy, Debug)]
struct Layer {
    pub node: usize,
    pub offset: usize,
    pub count: usize,
}

pub(crate) struct CheckedGraph<'g> {
    /// One past the last code of any layer in the planes; they hold `ceil(code_end / 8)` bytes.
    pub code_end: usize,
    /// One past the last code of any layer in the `fixed8` tensor (0 before version 2).
    pub fixed_end: usize,
    pub node_index: HashMap<&'g str, usize>,
    /// Each node's inputs as value indices (0: the graph input, k + 1: node k), resolved here so
    /// that the model wires nodes without looking names up again.
    pub inputs: Vec<Vec<usize>>,
    /// `has_width[b]`: the model supports weight width b.
    pub has_width: [bool; 9],
    /// How many F32 tensors the file must hold (per-width ones and shared ones).
    pub tensor_count: usize,
    /// The embedding nodes' packed tables: (node index, bytes of `codes.{node}`).
    pub tables: Vec<(usize, usize)>,
}

/// Reads only `format` and `version`, ignoring everything else, so that a file from a newer
/// writer is reported as an unsupported version rather than as an unknown field.
#[derive(serde::Deserialize)]
struct Probe {
    format: String,
    version: u32,
}

/// Parses the graph JSON, checking identity and version before the full schema.
pub(crate) fn parse_graph(json: &str) -> Result<Graph> {
    let probe: Probe = serde_json::from_str(json)
        .map_err(|e| crate::error::Error::new(ErrorKind::BadGraph, format!("graph JSON: {e}")))?;
    if probe.format != FORMAT_NAME {
        bail!(ErrorKind::BadMagic, "graph format is {:?}, expected {FORMAT_NAME:?}", probe.format);
    }
    if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&probe.version) {
        bail!(
            ErrorKind::UnsupportedVersion,
            "format version {} is not supported (this runtime reads versions {MIN_FORMAT_VERSION} to {FORMAT_VERSION})",
            probe.version
        );
    }
    let g: Graph = serde_json::from_str(json)
        .map_err(|e| crate::error::Error::new(ErrorKind::BadGraph, format!("graph JSON: {e}")))?;
    // Checked on read, not in check_graph: the writer lays codes out through a version-1 view.
    if g.version < super::graph::TEXT_VERSION && super::graph::uses_text(&g) {
        bail!(
            ErrorKind::BadGraph,
            "a text model (text ops or the text field) needs format version {}, not {}",
            super::graph::TEXT_VERSION,
            g.version
        );
    }
    Ok(g)
}

pub(crate) fn check_graph(g: &Graph) -> Result<CheckedGraph<'_>> {
    if g.format != FORMAT_NAME {
        bail!(ErrorKind::BadMagic, "graph format is {:?}, expected {FORMAT_NAME:?}", g.format);
    }
    if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&g.version) {
        bail!(ErrorKind::UnsupportedVersion, "format version {} is not supported", g.version);
    }
    check_input_shape(g)?;

    let mut has_width = [false; 9];
    if g.widths.is_empty() {
        bail!(ErrorKind::BadGraph, "the model lists no supported widths");
    }
    for w in &g.widths {
        // Both bits are in 1..=8 already: `Bits` refused anything else while the JSON was parsed.
        if has_width[w.w.count()] {
            bail!(ErrorKind::BadGraph, "weight width {} is listed twice", w.w);
        }
        has_width[w.w.count()] = true;
    }
    let n_widths = g.widths.len();

    for e in &g.eval {
        for &(w, acc) in &e.accuracy {
            if !(1..=8).contains(&w) || !(0.0..=1.0).contains(&acc) {
                bail!(
                    ErrorKind::BadValue,
                    "eval {:?}: accuracy ({w}, {acc}) out of range",
                    e.dataset
                );
            }
        }
    }

    if let Some(task) = &g.task {
        check_task(g, task)?;
    }

    if g.nodes.is_empty() {
        bail!(ErrorKind::BadGraph, "the graph has no nodes");
    }
    if g.nodes.len() > MAX_NODES {
        bail!(ErrorKind::LimitExceeded, "{} nodes exceed the limit of {MAX_NODES}", g.nodes.len());
    }

    let mut node_index: HashMap<&str, usize> = HashMap::with_capacity(g.nodes.len());
    let mut inputs = Vec::with_capacity(g.nodes.len());
    let (mut layers, mut fixed) = (Vec::new(), Vec::new());
    let mut tensor_count = 0usize;
    let mut tables = Vec::new();
    for (i, node) in g.nodes.iter().enumerate() {
        let name = node.name.as_str();
        if !valid_node_name(name) {
            bail!(
                ErrorKind::BadGraph,
                "node {i}: name {name:?} must be 1..=128 characters of [A-Za-z0-9_.-/:] and not {INPUT:?}"
            );
        }
        // Inputs are checked before inserting this node, so a node cannot read itself.
        let arity_ok = match node.op {
            Op::Add => (2..=MAX_ADD_INPUTS).contains(&node.inputs.len()),
            Op::Attention { .. } => node.inputs.len() == 4,
            Op::MeanPool => node.inputs.len() == 2,
            _ => node.inputs.len() == 1,
        };
        if !arity_ok {
            bail!(
                ErrorKind::BadGraph,
                "node {name}: wrong number of inputs ({})",
                node.inputs.len()
            );
        }
        let mut values = Vec::with_capacity(node.inputs.len());
        for input in &node.inputs {
            let value = match node_index.get(input.as_str()) {
                Some(&k) => k + 1,
                None if input == INPUT => 0,
                None => bail!(
                    ErrorKind::BadGraph,
                    "node {name}: input {input:?} is neither \"input\" nor an earlier node"
                ),
            };
            values.push(value);
        }
        // The token ids, types and mask exist only in the graph input, so the nodes that read them
        // must be wired to it.
        let reads_mask = match node.op {
            Op::Embed { .. } => Some(0),
            Op::Attention { .. } => Some(3),
            Op::MeanPool => Some(1),
            _ => None,
        };
        if let Some(k) = reads_mask {
            if g.text.is_none() || values[k] != 0 {
                bail!(
                    ErrorKind::BadGraph,
                    "node {name}: input #{k} must be \"input\" of a text model (the token ids, types and mask)"
                );
            }
        }
        inputs.push(values);
        if node_index.insert(name, i).is_some() {
            bail!(ErrorKind::BadGraph, "node name {name:?} is used twice");
        }
        let (per_width, shared) = check_op(name, &node.op)?;
        if let Op::Embed { vocab, positions, rows, hidden, .. } = &node.op {
            let Some(text) = &g.text else { unreachable!("checked with the inputs") };
            if *vocab != text.vocab.len() || *positions < g.input_shape[0] {
                bail!(
                    ErrorKind::BadGraph,
                    "node {name}: {vocab} word rows and {positions} positions, for a vocabulary of {} and inputs of up to {} tokens",
                    text.vocab.len(),
                    g.input_shape[0]
                );
            }
            // check_op bounded the table.
            tables.push((i, super::graph::RowBits::table_bytes(rows, *hidden).unwrap_or(0)));
        }
        if let Some(w) = node.op.weight() {
            let count = weight_count(name, w)?;
            let store = if in_fixed_store(g.version, w.precision) { &mut fixed } else { &mut layers };
            store.push(Layer { node: i, offset: w.code_offset, count });
        }
        tensor_count += per_width * n_widths + shared;
    }

    let code_end = check_code_ranges(g, layers)?;
    let fixed_end = check_code_ranges(g, fixed)?;
    Ok(CheckedGraph { code_end, fixed_end, node_index, inputs, has_width, tensor_count, tables })
}

/// A task's own values; the output shape it needs is checked when the model is built.
fn check_task(g: &Graph, task: &Task) -> Result<()> {
    let Task::Counterfactual { thresholds } = task;
    if g.text.is_none() {
        bail!(ErrorKind::BadGraph, "a counterfactual task needs a text model");
    }
    if thresholds.len() > 8 {
        bail!(ErrorKind::BadValue, "{} counterfactual thresholds; at most one per width", thresholds.len());
    }
    for &(w, p) in thresholds {
        if !(1..=8).contains(&w) || !(p > 0.0 && p < 1.0) {
            bail!(ErrorKind::BadValue, "counterfactual threshold ({w}, {p}) out of range: width 1..=8, probability in (0, 1)");
        }
    }
    Ok(())
}

fn check_input_shape(g: &Graph) -> Result<()> {
    let shape = g.input_shape.as_slice();
    match &g.text {
        None if shape.len() != 3 || shape.contains(&0) => bail!(
            ErrorKind::BadShape,
            "input_shape {shape:?} must be [height, width, channels], nonzero"
        ),
        Some(_) if !matches!(shape, &[n, 3] if (1..=MAX_TOKENS).contains(&n)) => bail!(
            ErrorKind::BadShape,
            "a text model's input_shape {shape:?} must be [max_tokens, 3] with max_tokens in 1..={MAX_TOKENS}"
        ),
        Some(text) if text.vocab.is_empty() || text.vocab.len() > MAX_VOCAB => bail!(
            ErrorKind::LimitExceeded,
            "a vocabulary of {} tokens is outside 1..={MAX_VOCAB}",
            text.vocab.len()
        ),
        _ => {}
    }
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match n {
        Some(n) if n <= MAX_INPUT_ELEMS => Ok(()),
        _ => bail!(
            ErrorKind::LimitExceeded,
            "input_shape {shape:?} exceeds {MAX_INPUT_ELEMS} elements"
        ),
    }
}

/// Checks one op's own parameters; returns how many F32 tensors it has per width and how many
/// shared by all widths.
fn check_op(name: &str, op: &Op) -> Result<(usize, usize)> {
    match op {
        Op::Conv2d { weight, stride, padding, dilation, groups } => {
            let s = &weight.shape;
            if s.len() != 4 || s.contains(&0) {
                bail!(
                    ErrorKind::BadShape,
                    "conv {name}: weight shape {s:?} must be [out, kh, kw, in/groups], nonzero"
                );
            }
            let (out, kh, kw, in_g) = (s[0], s[1], s[2], s[3]);
            if kh > MAX_KERNEL || kw > MAX_KERNEL {
                bail!(
                    ErrorKind::LimitExceeded,
                    "conv {name}: kernel {kh}x{kw} exceeds {MAX_KERNEL}"
                );
            }
            check_window(name, [kh, kw], *stride, *padding, *dilation)?;
            if *groups == 0 || out % groups != 0 {
                bail!(
                    ErrorKind::BadShape,
                    "conv {name}: groups {groups} must divide out channels {out}"
                );
            }
            if in_g.checked_mul(*groups).is_none_or(|c| c > MAX_CHANNELS) || out > MAX_CHANNELS {
                bail!(ErrorKind::LimitExceeded, "conv {name}: channels exceed {MAX_CHANNELS}");
            }
            Ok((2 + weight.bias as usize, 0))
        }
        Op::Dense { weight } => {
            let s = &weight.shape;
            if s.len() != 2 || s.contains(&0) {
                bail!(
                    ErrorKind::BadShape,
                    "dense {name}: weight shape {s:?} must be [out, in], nonzero"
                );
            }
            Ok((2 + weight.bias as usize, 0))
        }
        Op::Linear { weight, smooth } => {
            let s = &weight.shape;
            if s.len() != 2 || s.contains(&0) || s[0] > MAX_CHANNELS || s[1] > MAX_CHANNELS {
                bail!(
                    ErrorKind::BadShape,
                    "linear {name}: weight shape {s:?} must be [out, in], each in 1..={MAX_CHANNELS}"
                );
            }
            Ok((1, weight.bias as usize + *smooth as usize))
        }
        Op::LayerNorm { eps } => {
            if !(eps.is_finite() && *eps > 0.0 && *eps <= 1.0) {
                bail!(ErrorKind::BadValue, "layer_norm {name}: eps {eps} must be in (0, 1]");
            }
            Ok((2, 0))
        }
        Op::Embed { vocab, positions, types, hidden, rows } => {
            let all = [*vocab, *positions, *types, *hidden];
            if all.contains(&0) || *hidden > MAX_CHANNELS || *positions > MAX_TOKENS || *types > MAX_TOKEN_TYPES || *vocab > MAX_VOCAB {
                bail!(
                    ErrorKind::BadShape,
                    "embed {name}: vocab {vocab}, positions {positions}, types {types} and hidden {hidden} must be nonzero \
                     and at most {MAX_VOCAB}, {MAX_TOKENS}, {MAX_TOKEN_TYPES} and {MAX_CHANNELS}"
                );
            }
            let listed = rows.iter().try_fold(0usize, |a, r| a.checked_add(r.rows));
            if listed != Some(vocab + positions + types) || rows.iter().any(|r| r.rows == 0) {
                bail!(
                    ErrorKind::BadShape,
                    "embed {name}: the row runs must be nonempty and cover the {} rows of the three tables",
                    vocab + positions + types
                );
            }
            if super::graph::RowBits::table_bytes(rows, *hidden).is_none_or(|b| b > MAX_CODES) {
                bail!(ErrorKind::LimitExceeded, "embed {name}: the table exceeds {MAX_CODES} bytes");
            }
            Ok((0, 2))
        }
        Op::Attention { heads } => {
            if *heads == 0 || *heads > MAX_CHANNELS {
                bail!(ErrorKind::BadValue, "attention {name}: {heads} heads");
            }
            Ok((0, 0))
        }
        Op::MaxPool { kernel, stride, padding } | Op::AvgPool { kernel, stride, padding } => {
            if kernel[0] > MAX_KERNEL || kernel[1] > MAX_KERNEL {
                bail!(
                    ErrorKind::LimitExceeded,
                    "pool {name}: kernel {kernel:?} exceeds {MAX_KERNEL}"
                );
            }
            check_window(name, *kernel, *stride, *padding, [1, 1])?;
            Ok((0, 0))
        }
        Op::Clamp { min, max } => {
            if !min.is_finite() || !max.is_finite() || min > max {
                bail!(
                    ErrorKind::BadValue,
                    "clamp {name}: bounds [{min}, {max}] must be finite and ordered"
                );
            }
            Ok((0, 0))
        }
        Op::Affine => Ok((2, 0)),
        Op::GlobalAvgPool
        | Op::Relu
        | Op::Relu6
        | Op::Add
        | Op::Flatten
        | Op::Softmax
        | Op::Gelu
        | Op::MeanPool
        | Op::ClsPool => Ok((0, 0)),
    }
}

/// Sliding-window parameters. Padding on each side must be smaller than the dilated window so
/// that no window lies wholly in padding (a max pool would otherwise output -inf).
fn check_window(
    name: &str,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 4],
    dilation: [usize; 2],
) -> Result<()> {
    for axis in 0..2 {
        let (k, s, d) = (kernel[axis], stride[axis], dilation[axis]);
        if k == 0 || s == 0 || d == 0 {
            bail!(ErrorKind::BadShape, "{name}: kernel, stride and dilation must be >= 1");
        }
        if s > MAX_STRIDE || d > MAX_DILATION {
            bail!(
                ErrorKind::LimitExceeded,
                "{name}: stride {s} or dilation {d} exceeds {MAX_STRIDE}"
            );
        }
        // k, d <= 64, so this cannot overflow.
        let extent = d * (k - 1) + 1;
        let (before, after) = (padding[axis], padding[axis + 2]);
        if before >= extent || after >= extent {
            bail!(
                ErrorKind::BadShape,
                "{name}: padding {padding:?} must be smaller than the window extent {extent}"
            );
        }
    }
    Ok(())
}

fn weight_count(name: &str, w: &QuantWeight) -> Result<usize> {
    let count = w.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let Some(count) = count else {
        bail!(ErrorKind::BadShape, "{name}: weight shape {:?} overflows", w.shape);
    };
    if w.code_offset % 8 != 0 {
        bail!(ErrorKind::BadLayout, "{name}: code_offset {} is not a multiple of 8", w.code_offset);
    }
    if w.code_offset.checked_add(count).is_none_or(|end| end > MAX_CODES) {
        bail!(
            ErrorKind::LimitExceeded,
            "{name}: codes [{}, +{count}) exceed the limit of {MAX_CODES}",
            w.code_offset
        );
    }
    Ok(count)
}

/// Layers' code ranges must not overlap; returns the end of the last one.
fn check_code_ranges(g: &Graph, mut sorted: Vec<Layer>) -> Result<usize> {
    sorted.sort_by_key(|l| l.offset);
    let mut end = 0usize;
    let mut prev: Option<usize> = None;
    for l in &sorted {
        if l.offset < end {
            let other = prev.map_or("?", |p| g.nodes[p].name.as_str());
            bail!(
                ErrorKind::BadLayout,
                "codes of {} (from {}) overlap those of {other} (to {end})",
                g.nodes[l.node].name,
                l.offset
            );
        }
        end = l.offset + l.count; // bounded by MAX_CODES in weight_count
        prev = Some(l.node);
    }
    Ok(end)
}
