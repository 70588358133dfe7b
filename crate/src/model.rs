//! A model: the graph's nodes as layers, a selected width, and the code to run them.
//!
//! The 8-bit codes stay in memory for the life of the model; `set_width` re-derives the
//! packed weights of every quantized layer from them, so switching needs neither the file nor
//! calibration data.

use std::borrow::Cow;

use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::format::names::{BIAS, CLIP, LO, SCALE, SMOOTH, STEP, WSCALE};
use crate::format::{self, Graph, Layout, ModelFile, Op, QuantWeight, Width};
use crate::kernels::{best_scheme, Isa, PackedSize};
use crate::layers::{
    ActQuant, Add, Affine, Attention, Clamp, ClsPool, Context, Conv2d, Dense, Embed, Flatten, Gelu, GemmShape,
    GlobalAvgPool, Layer, LayerNorm, Linear, MeanPool, Pool, PoolKind, QuantWeights, Softmax, WidthParams,
};
use crate::layers::tokens::FIELDS;
use crate::tensor::{numel, Tensor};

/// Largest intermediate tensor a model may declare, in elements (1 GiB of f32). A file that
/// needs more is refused at load instead of failing on allocation while running. Intermediate
/// shapes are known only once the layers infer them, hence here and not in format/limits.rs.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 28;

struct Node {
    name: String,
    /// Indices into the value table: 0 is the model input, i + 1 the output of node i.
    inputs: Vec<usize>,
    layer: Box<dyn Layer>,
    /// The value can be freed after the node at this index has run.
    output_shape: Vec<usize>,
    last_use: usize,
}

pub struct Model {
    graph: Graph,
    nodes: Vec<Node>,
    width_index: usize,
    /// Bit planes the codes were built from (8 for a whole file): widths up to this one run.
    planes: u8,
    /// Where the file's pieces lie: what a width costs to download, and what to fetch to extend.
    layout: Layout,
    ctx: Context,
    /// The last node that reads the graph input (text models read its mask in every layer).
    input_last_use: usize,
}

/// What a build of the runtime can do, for reports ("what actually runs").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BuildInfo {
    pub isa: &'static str,
    pub threads_feature: bool,
}

impl Model {
    /// Parses, validates and builds a model, selecting its highest width.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        Model::from_file(format::read(bytes)?)
    }

    /// Builds a model from a prefix of a file holding at least `min_planes` bit planes
    /// (`format::prefix_len`); it runs the widths those planes serve, at its highest one.
    pub fn from_prefix(bytes: &[u8], min_planes: u8) -> Result<Model> {
        Model::from_file(format::read_prefix(bytes, min_planes)?)
    }

    /// `file` is checked (names, wiring, widths, parameters, per-width tensors: `format`), so
    /// only what needs the layers themselves can fail here.
    pub fn from_file(file: ModelFile) -> Result<Model> {
        let graph = file.graph().clone();
        let mut shapes: Vec<Vec<usize>> = vec![graph.input_shape.clone()];
        let mut nodes = Vec::with_capacity(graph.nodes.len());
        for (i, (node, inputs)) in graph.nodes.iter().zip(file.inputs()).enumerate() {
            let layer = build_layer(&graph, node, &file)?;
            // Whether shapes chain (a conv's input channels, an add's operands) and how large each
            // intermediate gets follows only from running every layer's shape rule from the input
            // on, so it is checked here rather than by `format`, which checks each node alone.
            let in_shapes: Vec<&[usize]> = inputs.iter().map(|&v| shapes[v].as_slice()).collect();
            let output_shape = layer.output_shape(&in_shapes)?;
            check_size(&output_shape, &node.name)?;
            shapes.push(output_shape.clone());
            nodes.push(Node { name: node.name.clone(), inputs: inputs.clone(), layer, output_shape, last_use: i });
        }
        // A value lives until the last node that reads it; the final output lives to the end.
        for i in 0..nodes.len() {
            for v in nodes[i].inputs.clone() {
                if v > 0 {
                    nodes[v - 1].last_use = nodes[v - 1].last_use.max(i);
                }
            }
        }
        let last = nodes.len() - 1;
        if let Some(format::Task::Counterfactual { .. }) = &graph.task {
            let want = [graph.input_shape[0], format::CF_COLUMNS];
            if nodes[last].output_shape != want {
                crate::bail!(
                    ErrorKind::BadShape,
                    "a counterfactual model must output {want:?} ([tokens, sentence logits + tags]), not {:?}",
                    nodes[last].output_shape
                );
            }
        }
        nodes[last].last_use = usize::MAX;
        let input_last_use = nodes.iter().rposition(|n| n.inputs.contains(&0)).unwrap_or(0);
        let planes = file.planes_present();
        let layout = file.layout().clone();
        let mut model = Model { graph, nodes, width_index: 0, planes, layout, ctx: Context::default(), input_last_use };
        // A valid prefix may hold fewer planes than even the narrowest width needs: which widths
        // can run is the model's question, not the file's.
        let Some(top) = model.loaded_widths().into_iter().max() else {
            crate::bail!(
                ErrorKind::Truncated,
                "{planes} bit planes are loaded; the narrowest width of this model needs {}",
                model.graph.widths.iter().map(|w| w.w).min().unwrap_or(Bits::MAX)
            );
        };
        model.set_width(top)?;
        Ok(model)
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    pub fn widths(&self) -> &[Width] {
        &self.graph.widths
    }
    /// Bit planes loaded: 8 for a whole file, fewer for a prefix (progressive loading).
    pub fn planes_loaded(&self) -> u8 {
        self.planes
    }
    /// The file's layout, from the header the model was read from.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    /// The widths the loaded planes serve (all of `widths()` for a whole file).
    pub fn loaded_widths(&self) -> Vec<Bits> {
        self.graph.widths.iter().map(|w| w.w).filter(|&w| crate::quant::planes_needed(w) <= self.planes).collect()
    }
    /// Current weight width.
    pub fn width(&self) -> Bits {
        self.graph.widths[self.width_index].w
    }
    pub fn input_shape(&self) -> &[usize] {
        &self.graph.input_shape
    }
    pub fn output_shape(&self) -> &[usize] {
        &self.nodes[self.nodes.len() - 1].output_shape
    }
    pub fn labels(&self) -> Option<&[String]> {
        self.graph.labels.as_deref()
    }
    pub fn build_info() -> BuildInfo {
        BuildInfo { isa: Isa::best().name(), threads_feature: cfg!(feature = "threads") }
    }
    pub fn isa(&self) -> Isa {
        self.ctx.isa
    }
    /// Run the kernels of another instruction set available in this build (for comparisons).
    pub fn set_isa(&mut self, isa: Isa) -> Result<()> {
        if !Isa::available().contains(&isa) {
            crate::bail!(ErrorKind::InvalidArgument, "{} kernels are not in this build", isa.name());
        }
        self.ctx.isa = isa;
        Ok(())
    }
    pub fn threads(&self) -> usize {
        self.ctx.threads
    }
    /// Threads the kernels may use (1 = the calling thread only). Has effect only in builds with
    /// the `threads` feature.
    pub fn set_threads(&mut self, n: usize) {
        self.ctx.threads = n.max(1);
    }

    /// Switch to weight width `w` (one of `widths()`): re-derives the packed weights in memory.
    pub fn set_width(&mut self, w: Bits) -> Result<()> {
        let Some(index) = self.graph.widths.iter().position(|x| x.w == w) else {
            crate::bail!(ErrorKind::UnsupportedWidth, "this model supports widths {:?}, not {w}", self.width_list());
        };
        if crate::quant::planes_needed(w) > self.planes {
            crate::bail!(
                ErrorKind::Truncated,
                "width {w} needs {} bit planes; {} are loaded (load more of the file to switch up)",
                crate::quant::planes_needed(w),
                self.planes
            );
        }
        let width = self.graph.widths[index];
        for node in &mut self.nodes {
            node.layer.set_width(index, width)?;
        }
        self.width_index = index;
        Ok(())
    }

    /// Integer multiply-accumulates of one forward pass.
    pub fn macs(&self) -> u64 {
        let mut total = 0;
        self.walk_shapes(|_, node, ins| total += node.layer.macs(ins));
        total
    }

    /// Calls `f(i, node, input shapes)` for every node in order: the shape walk that costing a
    /// pass (MACs, GEMMs, memory) needs, with nothing run.
    fn walk_shapes<'a>(&'a self, mut f: impl FnMut(usize, &'a Node, &[&'a [usize]])) {
        let mut shapes: Vec<&[usize]> = vec![&self.graph.input_shape];
        for (i, node) in self.nodes.iter().enumerate() {
            let ins: Vec<&[usize]> = node.inputs.iter().map(|&v| shapes[v]).collect();
            f(i, node, &ins);
            shapes.push(&node.output_shape);
        }
    }

    /// Whether value `v` (0: the input, k: node k-1's output) is dead once node `i` has run.
    /// The first input of node `i` when it dies there and is not also one of its other inputs:
    /// a running pass hands it over to the node (`Layer::forward_owned`).
    fn handed_over(&self, i: usize) -> Option<usize> {
        match self.nodes[i].inputs.split_first() {
            Some((&v, rest)) if self.dead_after(v, i) && !rest.contains(&v) => Some(v),
            _ => None,
        }
    }

    /// Whether node `i + 1` is a per-channel affine ([`Layer::channel_affine`]) that reads node
    /// `i`'s output alone, which nothing else reads: node `i` may apply it in its own epilogue
    /// ([`Layer::forward_affine`]; a profile then shows the affine at 0 ms).
    fn folds_next(&self, i: usize) -> bool {
        match self.nodes.get(i + 1) {
            Some(next) => next.inputs == [i + 1] && self.dead_after(i + 1, i + 1) && next.layer.channel_affine().is_some(),
            None => false,
        }
    }

    fn dead_after(&self, v: usize, i: usize) -> bool {
        if v == 0 {
            i >= self.input_last_use
        } else {
            self.nodes[v - 1].last_use <= i
        }
    }

    fn width_of(&self, w: Bits) -> Result<Width> {
        match self.graph.widths.iter().find(|x| x.w == w) {
            Some(&width) => Ok(width),
            None => crate::bail!(ErrorKind::UnsupportedWidth, "this model supports widths {:?}, not {w}", self.width_list()),
        }
    }

    /// The weight widths as plain numbers, for messages.
    fn width_list(&self) -> Vec<u8> {
        self.graph.widths.iter().map(|x| x.w.get()).collect()
    }

    /// Heap bytes this model holds while it runs at width `w`, without switching: every layer's
    /// parameters at `w` (the 8-bit codes kept for switching plus the weights packed for `w`),
    /// the activations alive at the peak of a forward pass, and the kernels' scratch buffers at
    /// their largest (they grow to the biggest layer and are reused). Allocator rounding and
    /// `Vec` growth slack come on top (crate/tests/memory.rs: within 3% of the bytes a counting
    /// allocator sees at the peak of a pass, for the shipped models).
    pub fn memory_bytes(&self, w: Bits) -> Result<usize> {
        let width = self.width_of(w)?;
        let params: usize = self.nodes.iter().map(|n| n.layer.param_bytes(width)).sum();
        // Activations: the input copy and each node's output live until their last use; a node's
        // inputs and output are alive together while it runs.
        let size = |shape: &[usize]| numel(shape).unwrap_or(0) * 4;
        let mut live = size(&self.graph.input_shape);
        let mut sizes = vec![live];
        let mut peak = live;
        let (mut input_codes, mut col_codes, mut acc, mut col_sums, mut window) = (0, 0, 0, 0, 0);
        let (mut i16s, mut words, mut bytes) = (0, 0, 0);
        self.walk_shapes(|i, node, ins| {
            for g in node.layer.gemms(ins, width) {
                if let Some((win, scheme)) = g.window {
                    // Quantized and packed in one pass: no input codes, no im2col.
                    window = window.max(win.acts_bytes(g.abits, scheme));
                    acc = acc.max(win.columns() * g.rows * 4);
                    continue;
                }
                input_codes = input_codes.max(ins.first().and_then(|s| numel(s)).unwrap_or(0));
                if g.cols > 1 {
                    col_codes = col_codes.max(g.cols * g.depth);
                }
                acc = acc.max(g.cols * g.rows * 4);
                col_sums = col_sums.max(g.cols * 4);
                let a = PackedSize::acts(g.cols, g.depth, g.abits, best_scheme(g.wbits, g.abits, g.depth));
                i16s = i16s.max(a.i16s * 2);
                words = words.max(a.words * 8);
                bytes = bytes.max(a.bytes);
            }
            // An in-place layer's output takes over its first input's buffer.
            if let Some(v) = self.handed_over(i).filter(|_| node.layer.in_place()) {
                live -= std::mem::take(&mut sizes[v]);
            }
            live += size(&node.output_shape);
            sizes.push(size(&node.output_shape));
            peak = peak.max(live);
            for &v in &node.inputs {
                if self.dead_after(v, i) {
                    live -= std::mem::take(&mut sizes[v]);
                }
            }
        });
        Ok(params + peak + input_codes + col_codes + acc + col_sums + i16s + words + bytes + window)
    }

    /// The integer GEMMs one forward pass runs at width `w`, in node order.
    pub fn gemms(&self, w: Bits) -> Result<Vec<GemmShape>> {
        let width = self.width_of(w)?;
        let mut out = Vec::new();
        self.walk_shapes(|_, node, ins| out.extend(node.layer.gemms(ins, width)));
        Ok(out)
    }

    /// Runs one sample (NHWC, `input_shape()` elements) and returns the last node's output. An
    /// owned input becomes the first value as it is; a borrowed one is copied.
    pub fn run<'a>(&mut self, input: impl Into<Cow<'a, [f32]>>) -> Result<Vec<f32>> {
        let mut values = self.forward(input.into(), false)?;
        let out = values.pop().flatten().expect("the last node's output is kept");
        Ok(out.into_data())
    }

    /// Runs one sample and keeps every value for backward passes. With `twin`, quantized layers
    /// run as their float twin (`layers::Context::twin`).
    pub fn trace<'a>(&mut self, input: impl Into<Cow<'a, [f32]>>, twin: bool) -> Result<Trace> {
        self.ctx.twin = twin;
        let values = self.forward(input.into(), true);
        self.ctx.twin = false;
        let values: Vec<Tensor> = values?.into_iter().map(|v| v.expect("a trace keeps every value")).collect();
        // Attacks work on logits: a final softmax is differentiated by the loss, not the model.
        let last = self.nodes.len();
        let logits = if self.graph.nodes[last - 1].op == Op::Softmax { self.nodes[last - 1].inputs[0] } else { last };
        Ok(Trace { values, logits, twin })
    }

    /// The input gradient for the gradient `grad_logits` of a loss on `trace.logits()`. `flips`
    /// is empty, or holds for every node the input elements whose gate is inverted (ADV-ReLU,
    /// `crate::grad`). The trace must come from this model at its current width.
    pub fn backward(&mut self, trace: &Trace, grad_logits: &[f32], flips: &[Vec<u32>]) -> Result<Vec<f32>> {
        if trace.values.len() != self.nodes.len() + 1 || trace.values[0].shape() != self.graph.input_shape.as_slice() {
            crate::bail!(ErrorKind::InvalidArgument, "the trace was not made by this model");
        }
        let logits = &trace.values[trace.logits];
        if grad_logits.len() != logits.len() {
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "the loss gradient has {} values; the logits have {}",
                grad_logits.len(),
                logits.len()
            );
        }
        if !flips.is_empty() && flips.len() != self.nodes.len() {
            crate::bail!(ErrorKind::InvalidArgument, "gate flips for {} nodes; the model has {}", flips.len(), self.nodes.len());
        }
        let mut grads: Vec<Option<Tensor>> = vec![None; trace.values.len()];
        grads[trace.logits] = Some(Tensor::new(logits.shape().to_vec(), grad_logits.to_vec())?);
        self.ctx.twin = trace.twin;
        for i in (0..trace.logits).rev() {
            let Some(grad) = grads[i + 1].take() else { continue };
            let node = &self.nodes[i];
            let ins: Vec<&Tensor> = node.inputs.iter().map(|&v| &trace.values[v]).collect();
            let flip = flips.get(i).map_or(&[][..], |f| f.as_slice());
            let dins = node.layer.backward(&ins, &grad, flip, &mut self.ctx).map_err(|e| {
                crate::error::Error::new(e.kind(), format!("{}: {}", node.name, e.message()))
            });
            let dins = match dins {
                Ok(d) => d,
                Err(e) => {
                    self.ctx.twin = false;
                    return Err(e);
                }
            };
            for (&v, d) in node.inputs.iter().zip(dins) {
                match &mut grads[v] {
                    Some(acc) => acc.data_mut().iter_mut().zip(d.data()).for_each(|(a, &b)| *a += b),
                    slot => *slot = Some(d),
                }
            }
        }
        self.ctx.twin = false;
        Ok(grads[0].take().map_or_else(|| vec![0.0; trace.values[0].len()], Tensor::into_data))
    }

    /// The gates of a traced pass (clamps and activation quantizers) on the path to the logits:
    /// for each, its node, its pre-activations in `trace` and the range where it passes gradient.
    pub fn gates<'t>(&self, trace: &'t Trace) -> Vec<Gate<'t>> {
        let mut out = Vec::new();
        for (i, node) in self.nodes.iter().enumerate().take(trace.logits) {
            if let (Some(range), [v]) = (node.layer.gate(), node.inputs.as_slice()) {
                out.push(Gate { node: i, pre: trace.values[*v].data(), range });
            }
        }
        out
    }

    /// Checks the input and runs every node; `keep` keeps every value (a trace), otherwise each
    /// is freed after its last use and only the last node's output is left.
    fn forward(&mut self, input: Cow<'_, [f32]>, keep: bool) -> Result<Vec<Option<Tensor>>> {
        Ok(self.forward_timed(input, keep, None)?.0)
    }

    /// `forward`, also timing each node by `now` (ms) when given: the one node loop that running,
    /// tracing and profiling share.
    #[allow(clippy::type_complexity)]
    fn forward_timed(
        &mut self,
        input: Cow<'_, [f32]>,
        keep: bool,
        now: Option<&dyn Fn() -> f64>,
    ) -> Result<(Vec<Option<Tensor>>, Vec<(String, f64)>)> {
        let mut times = Vec::new();
        // Helpers asleep since the last pass wake while the first layers run on this thread.
        let _threads = crate::kernels::PassThreads::new(self.ctx.threads);
        let shape = self.input_shape_for(input.len())?;
        // A branch-free scan first (it vectorizes; `position`, which stops early, does not), the
        // search only when it fails.
        if !input.iter().fold(true, |ok, v| ok & v.is_finite()) {
            let i = input.iter().position(|v| !v.is_finite()).unwrap_or(0);
            crate::bail!(ErrorKind::BadValue, "input value #{i} is {}", input[i]);
        }
        let mut values: Vec<Option<Tensor>> = Vec::with_capacity(self.nodes.len() + 1);
        values.push(Some(Tensor::new(shape, input.into_owned())?));
        // Whether the node about to run was applied by the one before, in its epilogue.
        let mut folded = false;
        for (i, node) in self.nodes.iter().enumerate() {
            if std::mem::take(&mut folded) {
                // Its output is the previous node's, which nothing else reads.
                let v = values[i].take();
                values.push(v);
                if now.is_some() {
                    times.push((node.name.clone(), 0.0));
                }
                continue;
            }
            // A first input that dies here (and is not also a later input of this node) is handed
            // over to a layer that works in place.
            let owned = match self.handed_over(i) {
                Some(v) if !keep && node.layer.in_place() => values[v].take(),
                _ => None,
            };
            let affine = if !keep && owned.is_none() && self.folds_next(i) { self.nodes[i + 1].layer.channel_affine() } else { None };
            let skip = usize::from(owned.is_some());
            let ins: Vec<&Tensor> = node.inputs[skip..]
                .iter()
                .map(|&v| values[v].as_ref().expect("value freed before its last use"))
                .collect();
            let t0 = now.map(|f| f());
            let out = match (owned, affine) {
                (Some(first), _) => node.layer.forward_owned(first, &ins, &mut self.ctx),
                (None, Some(f)) => match node.layer.forward_affine(&ins, f, &mut self.ctx) {
                    Some(out) => {
                        folded = true;
                        out
                    }
                    None => node.layer.forward(&ins, &mut self.ctx),
                },
                (None, None) => node.layer.forward(&ins, &mut self.ctx),
            }
            .map_err(|e| crate::error::Error::new(e.kind(), format!("{}: {}", node.name, e.message())))?;
            if let (Some(f), Some(t0)) = (now, t0) {
                times.push((node.name.clone(), f() - t0));
            }
            values.push(Some(out));
            if !keep {
                for &v in &node.inputs {
                    if self.dead_after(v, i) {
                        values[v] = None;
                    }
                }
            }
        }
        Ok((values, times))
    }
}

impl Model {
    /// Whether this is a text model (its input is tokens; `graph().text` holds the vocabulary).
    pub fn is_text(&self) -> bool {
        self.graph.text.is_some()
    }

    /// The shape of an input of `len` values: the model's `input_shape`, or for a text model
    /// `[tokens, 3]` for any 1 <= tokens <= its maximum.
    fn input_shape_for(&self, len: usize) -> Result<Vec<usize>> {
        let shape = &self.graph.input_shape;
        if self.is_text() {
            let tokens = len / FIELDS;
            if len % FIELDS == 0 && (1..=shape[0]).contains(&tokens) {
                return Ok(vec![tokens, FIELDS]);
            }
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "input has {len} values; the model takes 1 to {} tokens of (id, type, mask)",
                shape[0]
            );
        }
        let expected = numel(shape).unwrap_or(0);
        if len != expected {
            crate::bail!(ErrorKind::ShapeMismatch, "input has {len} values; the model expects {shape:?} = {expected}");
        }
        Ok(shape.clone())
    }

    /// Runs a text model on token ids with their types and mask (1 attends, 0 is padding; all
    /// of one length), returning the last node's output with its shape.
    pub fn run_tokens(&mut self, ids: &[u32], types: &[u32], mask: &[u8]) -> Result<Tensor> {
        if !self.is_text() {
            crate::bail!(ErrorKind::InvalidArgument, "this model takes images, not tokens");
        }
        if types.len() != ids.len() || mask.len() != ids.len() {
            crate::bail!(
                ErrorKind::ShapeMismatch,
                "{} ids, {} types and {} mask values: one each per token",
                ids.len(),
                types.len(),
                mask.len()
            );
        }
        let input: Vec<f32> = (0..ids.len()).flat_map(|t| [ids[t] as f32, types[t] as f32, mask[t] as f32]).collect();
        let mut values = self.forward(input.into(), false)?;
        Ok(values.pop().flatten().expect("the last node's output is kept"))
    }

    /// Runs one input and returns, for every node in order, its name and the time it took by
    /// `now` (ms): where a pass spends its time, for benchmarks and layer work.
    pub fn profile(&mut self, input: &[f32], now: &dyn Fn() -> f64) -> Result<Vec<(String, f64)>> {
        Ok(self.forward_timed(input.into(), false, Some(now))?.1)
    }

    /// A valid input of the model's largest shape, for timing (calibration): a constant image,
    /// or tokens of id 0 (every vocabulary has one), type 0, attending.
    pub fn sample_input(&self) -> Vec<f32> {
        if self.is_text() {
            return (0..self.graph.input_shape[0]).flat_map(|_| [0.0, 0.0, 1.0]).collect();
        }
        vec![0.5; numel(&self.graph.input_shape).unwrap_or(0)]
    }
}

/// Every value of one forward pass (the input, then each node's output), for backward passes.
pub struct Trace {
    values: Vec<Tensor>,
    /// The value the attacks' losses read: the last node's output, or a final softmax's input.
    logits: usize,
    twin: bool,
}

impl Trace {
    pub fn input(&self) -> &[f32] {
        self.values[0].data()
    }
    /// The output of node `i` (in graph order).
    pub fn output(&self, i: usize) -> &Tensor {
        &self.values[i + 1]
    }
    pub fn logits(&self) -> &[f32] {
        self.values[self.logits].data()
    }
}

/// A gate of a traced pass: node `node` passes gradient where its input `pre` lies in `range`.
pub struct Gate<'t> {
    pub node: usize,
    pub pre: &'t [f32],
    pub range: (f32, f32),
}

fn check_size(shape: &[usize], what: &str) -> Result<()> {
    match numel(shape) {
        Some(n) if n > 0 && n <= MAX_TENSOR_ELEMENTS => Ok(()),
        _ => crate::bail!(
            ErrorKind::LimitExceeded,
            "{what}: shape {shape:?} is empty or larger than {MAX_TENSOR_ELEMENTS} elements"
        ),
    }
}

fn quant_weights(
    graph: &Graph,
    name: &str,
    w: &QuantWeight,
    groups: usize,
    file: &ModelFile,
) -> Result<QuantWeights> {
    // A valid prefix of a version-1 file lacks low bits of these codes; the file cannot know
    // whether its reader needs them, the model does.
    if !file.fixed_codes_whole(w) {
        crate::bail!(
            ErrorKind::Truncated,
            "{name}: a version-1 file keeps fixed 8-bit codes in all 8 bit planes and {} are present; load the whole file",
            file.planes_present()
        );
    }
    let codes = file.layer_codes(w)?;
    let out = w.shape[0];
    let depth = codes.len() / out;
    let mut params = Vec::with_capacity(graph.widths.len());
    for width in &graph.widths {
        let b = width.w;
        // `format` gave wscale and clip the shape [1].
        let scalar = |suffix: &str| Ok::<_, crate::Error>(file.tensor(name, b, suffix)?.data[0]);
        let bias = if w.bias { Some(file.tensor(name, b, BIAS)?.data.clone()) } else { None };
        params.push(WidthParams { wscale: scalar(WSCALE)?, clip: scalar(CLIP)?, bias, row_scales: None });
    }
    QuantWeights::new(name, codes.to_vec(), groups, out / groups, depth, w.precision, params)
}

/// A `linear` node's weights: per-channel scales per width, one bias for all widths, and
/// activations quantized per token.
fn linear_weights(graph: &Graph, name: &str, w: &QuantWeight, file: &ModelFile) -> Result<QuantWeights> {
    let codes = file.layer_codes(w)?;
    let (out, depth) = (w.shape[0], w.shape[1]);
    let bias = if w.bias { Some(file.shared_tensor(name, BIAS)?.data.clone()) } else { None };
    let mut params = Vec::with_capacity(graph.widths.len());
    for width in &graph.widths {
        let scales = file.tensor(name, width.w, WSCALE)?.data.clone();
        params.push(WidthParams { wscale: 1.0, clip: 1.0, bias: bias.clone(), row_scales: Some(scales) });
    }
    Ok(QuantWeights::new(name, codes.to_vec(), 1, out, depth, w.precision, params)?.with_acts(ActQuant::Dynamic))
}

/// Per-width (scale, bias) pairs of an `affine` or `layer_norm` node.
fn affine_params(graph: &Graph, name: &str, file: &ModelFile) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
    let mut params = Vec::with_capacity(graph.widths.len());
    for width in &graph.widths {
        let get = |suffix: &str| Ok::<_, crate::Error>(file.tensor(name, width.w, suffix)?.data.clone());
        params.push((get(SCALE)?, get(BIAS)?));
    }
    Ok(params)
}

fn build_layer(graph: &Graph, node: &format::Node, file: &ModelFile) -> Result<Box<dyn Layer>> {
    let name = node.name.clone();
    Ok(match &node.op {
        Op::Conv2d { weight, stride, padding, dilation, groups } => {
            // [out, kh, kw, in/groups], as `format` checked.
            let (kh, kw, cin) = (weight.shape[1], weight.shape[2], weight.shape[3]);
            let q = quant_weights(graph, &name, weight, *groups, file)?;
            Box::new(Conv2d::new(q, [kh, kw], *stride, *padding, *dilation, cin)?)
        }
        Op::Dense { weight } => Box::new(Dense::new(quant_weights(graph, &name, weight, 1, file)?)?),
        Op::MaxPool { kernel, stride, padding } | Op::AvgPool { kernel, stride, padding } => {
            let kind = if matches!(node.op, Op::MaxPool { .. }) { PoolKind::Max } else { PoolKind::Avg };
            Box::new(Pool { name, kind, kernel: *kernel, stride: *stride, padding: *padding })
        }
        Op::GlobalAvgPool => Box::new(GlobalAvgPool { name }),
        Op::Relu => Box::new(Clamp { name, min: 0.0, max: f32::INFINITY }),
        Op::Relu6 => Box::new(Clamp { name, min: 0.0, max: 6.0 }),
        Op::Clamp { min, max } => Box::new(Clamp { name, min: *min, max: *max }),
        Op::Affine => Box::new(Affine::new(&name, affine_params(graph, &name, file)?)?),
        Op::Add => Box::new(Add { name }),
        Op::Flatten => Box::new(Flatten { name }),
        Op::Softmax => Box::new(Softmax { name }),
        Op::Linear { weight, smooth } => {
            let smooth = if *smooth { Some(file.shared_tensor(&name, SMOOTH)?.data.clone()) } else { None };
            Box::new(Linear::new(linear_weights(graph, &name, weight, file)?, smooth)?)
        }
        Op::LayerNorm { eps } => Box::new(LayerNorm::new(&name, *eps, affine_params(graph, &name, file)?)?),
        Op::Gelu => Box::new(Gelu { name }),
        Op::Embed { vocab, positions, types, hidden, rows } => {
            let table = file.table(&name)?.to_vec();
            let lo = file.shared_tensor(&name, LO)?.data.clone();
            let step = file.shared_tensor(&name, STEP)?.data.clone();
            Box::new(Embed::new(&name, *vocab, *positions, *types, *hidden, rows, table, lo, step)?)
        }
        Op::Attention { heads } => Box::new(Attention { name, heads: *heads }),
        Op::MeanPool => Box::new(MeanPool { name }),
        Op::ClsPool => Box::new(ClsPool { name }),
    })
}
