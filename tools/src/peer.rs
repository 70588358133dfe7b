//! The same graph for the peer runtimes of the whole-model benchmark (bench/models.mjs).
//!
//! `anybit peer-export` writes an image model at one width as the float computation its quantized
//! layers stand for: weights dequantized from the codes exactly as the runtime's float twin does
//! (`quant::derive_code` then `quant::weight_value`), each quantized layer's PACT clip as a `clip`
//! node in front of it, and each `affine` folded into the conv or dense before it. A folder:
//!
//! - `graph.json`: `{model, bits, input: {shape: [h, w, c]}, nodes: [...], output, weights}`, NHWC;
//!   ops `conv2d` (weight `[out, kh, kw, in/groups]`, bias `[out]`, stride, padding
//!   `[top, left, bottom, right]`, dilation, groups), `dense` (weight `[out, in]` over the
//!   NHWC-flattened input, bias), `clip` (min, max; max null for ReLU), `max_pool` / `avg_pool`
//!   (kernel, stride, padding; the average counts in-bounds positions only), `global_avg_pool`,
//!   `add`, `flatten`, `softmax`, `affine` (scale, bias; only where it cannot fold). A tensor is
//!   `{offset, shape}`: little-endian f32 at that byte offset of `weights.bin`.
//! - `reference.json`: `{inputs, float_outputs, quantized_outputs, labels?}`: the inputs (real
//!   test images with `--images`, else seeded uniform values in [0, 1]) and anybit's outputs on
//!   them, from the float twin (what the peers compute: they must match it to float rounding) and
//!   from the quantized model at this width.
//!
//! scripts/peer_formats.py turns the folder into ONNX (fp32 and int8 QDQ) and the TF.js layout.
//!
//! `anybit bench-model` writes the benchmark's models that are not shipped: a ResNet-20 (CIFAR
//! shape) and the single 3x3 conv 64->64 at 28x28 of the kernel benchmark, with seeded random
//! weights (only their speed is measured).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anybit::format::{self, names, F32Tensor, Graph, Node, Op, Precision, QuantWeight, Width};
use anybit::{quant, Bits, Model};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::rng::Rng;

#[derive(Debug, Args)]
pub struct PeerExportArgs {
    /// The `.anybit` file (an image model).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The weight width whose weights, clips and affines are exported.
    #[arg(long, default_value = "8", value_parser = crate::cli::parse_bits)]
    pub bits: Bits,
    /// Output folder (created): graph.json, weights.bin, reference.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Reference inputs: the first --count images of this IDX file (e.g. fixtures/mnist-t100-images.idx3),
    /// pixels scaled to [0, 1] [default: seeded uniform inputs in [0, 1]].
    #[arg(long, value_name = "IDX3")]
    pub images: Option<PathBuf>,
    /// Number of reference inputs.
    #[arg(long, default_value_t = 8)]
    pub count: usize,
}

#[derive(Debug, Args)]
pub struct BenchModelArgs {
    #[arg(long, value_enum)]
    pub arch: BenchArch,
    /// The `.anybit` file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BenchArch {
    /// ResNet-20 for 32x32x3 inputs: conv 16, three stages of three basic blocks (16, 32, 64
    /// channels; 1x1 projection shortcuts where the shape changes), global average pool, dense 10.
    Resnet20,
    /// One 3x3 conv 64->64 on a 28x28x64 input (padding 1): the kernel benchmark's shape.
    Conv3x3,
}

/// A float graph being written: node JSON and the weight bytes they point into.
struct Float {
    nodes: Vec<Value>,
    weights: Vec<u8>,
}

impl Float {
    fn tensor(&mut self, data: &[f32], shape: &[usize]) -> Value {
        let offset = self.weights.len();
        self.weights.extend(data.iter().flat_map(|v| v.to_le_bytes()));
        json!({ "offset": offset, "shape": shape })
    }

    /// A conv or dense float node for `node`'s op, reading `input`, with weights `w` and `bias`.
    fn layer(&mut self, node: &Node, input: &str, w: &[f32], bias: &[f32]) -> Result<Value> {
        let mut v = match &node.op {
            Op::Conv2d { weight, stride, padding, dilation, groups } => {
                let (wt, bt) = (self.tensor(w, &weight.shape), self.tensor(bias, &[bias.len()]));
                json!({ "op": "conv2d", "weight": wt, "bias": bt, "stride": stride, "padding": padding, "dilation": dilation, "groups": groups })
            }
            Op::Dense { weight } => {
                let (wt, bt) = (self.tensor(w, &weight.shape), self.tensor(bias, &[bias.len()]));
                json!({ "op": "dense", "weight": wt, "bias": bt })
            }
            _ => bail!("{} is not a conv or dense node", node.name),
        };
        v["name"] = json!(node.name);
        v["inputs"] = json!([input]);
        Ok(v)
    }
}

/// The dequantized weights of a conv or dense node at width `b`, and its bias (zeros if none).
fn float_weights(file: &format::ModelFile, node: &str, w: &QuantWeight, b: Bits) -> Result<(Vec<f32>, Vec<f32>)> {
    let wbits = if w.precision == Precision::Fixed8 { Bits::MAX } else { b };
    let e = file.tensor(node, b, names::WSCALE)?.data[0];
    let codes = file.layer_codes(w)?;
    let weights = codes.iter().map(|&c| quant::weight_value(quant::derive_code(c, wbits), wbits, e)).collect();
    let bias = if w.bias { file.tensor(node, b, names::BIAS)?.data.clone() } else { vec![0.0; w.shape[0]] };
    Ok((weights, bias))
}

/// The float graph of `file` at width `b` (see the module doc).
fn float_graph(file: &format::ModelFile, b: Bits) -> Result<Float> {
    let graph = file.graph();
    if graph.text.is_some() {
        bail!("{} is a text model: the text encoder has its own peer benchmark (bench/text.mjs)", graph.name);
    }
    let consumers = |name: &str| graph.nodes.iter().filter(|n| n.inputs.iter().any(|i| i == name)).count();
    let mut f = Float { nodes: Vec::new(), weights: Vec::new() };
    // A conv or dense whose only reader is the next node, an affine: (index, weights, bias, rows).
    // The folded node takes the affine's name, so the affine's readers find it.
    let mut pending: Option<(usize, Vec<f32>, Vec<f32>, usize)> = None;
    for (i, node) in graph.nodes.iter().enumerate() {
        let ins = &node.inputs;
        let name = &node.name;
        let op = match &node.op {
            Op::Conv2d { weight, .. } | Op::Dense { weight } => {
                let clip = file.tensor(name, b, names::CLIP)?.data[0];
                let clip_name = format!("{name}.clip");
                f.nodes.push(json!({ "name": clip_name, "inputs": ins, "op": "clip", "min": 0.0, "max": clip }));
                let (w, bias) = float_weights(file, name, weight, b)?;
                let out = weight.shape[0];
                let next = graph.nodes.get(i + 1);
                if next.is_some_and(|n| n.op == Op::Affine && n.inputs == [name.clone()]) && consumers(name) == 1 {
                    pending = Some((i, w, bias, out));
                    continue;
                }
                let layer = f.layer(node, &clip_name, &w, &bias)?;
                f.nodes.push(layer);
                continue;
            }
            Op::Affine => {
                let scale = &file.tensor(name, b, names::SCALE)?.data;
                let shift = &file.tensor(name, b, names::BIAS)?.data;
                if let Some((j, mut w, mut bias, out)) = pending.take() {
                    let src = &graph.nodes[j];
                    let per = w.len() / out;
                    for o in 0..out {
                        w[o * per..(o + 1) * per].iter_mut().for_each(|v| *v *= scale[o]);
                        bias[o] = bias[o] * scale[o] + shift[o];
                    }
                    let clip_name = format!("{}.clip", src.name);
                    let mut layer = f.layer(src, &clip_name, &w, &bias)?;
                    layer["name"] = json!(name);
                    f.nodes.push(layer);
                    continue;
                }
                let s = f.tensor(scale, &[scale.len()]);
                let t = f.tensor(shift, &[shift.len()]);
                json!({ "op": "affine", "scale": s, "bias": t })
            }
            Op::MaxPool { kernel, stride, padding } => json!({ "op": "max_pool", "kernel": kernel, "stride": stride, "padding": padding }),
            Op::AvgPool { kernel, stride, padding } => json!({ "op": "avg_pool", "kernel": kernel, "stride": stride, "padding": padding }),
            Op::GlobalAvgPool => json!({ "op": "global_avg_pool" }),
            Op::Relu => json!({ "op": "clip", "min": 0.0, "max": null }),
            Op::Relu6 => json!({ "op": "clip", "min": 0.0, "max": 6.0 }),
            Op::Clamp { min, max } => json!({ "op": "clip", "min": min, "max": max }),
            Op::Add => json!({ "op": "add" }),
            Op::Flatten => json!({ "op": "flatten" }),
            Op::Softmax => json!({ "op": "softmax" }),
            other => bail!("node {name}: {other:?} has no peer export"),
        };
        let mut v = op;
        v["name"] = json!(name);
        v["inputs"] = json!(ins);
        f.nodes.push(v);
    }
    Ok(f)
}

/// `anybit peer-export`.
pub fn peer_export(a: &PeerExportArgs) -> Result<()> {
    let bytes = std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let file = format::read(&bytes).with_context(|| format!("reading {}", a.model.display()))?;
    let graph = file.graph();
    if !graph.widths.iter().any(|w| w.w == a.bits) {
        bail!("{} has no width {} (it has {})", a.model.display(), a.bits, graph.widths.iter().map(|w| w.w.to_string()).collect::<Vec<_>>().join(","));
    }
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    let f = float_graph(&file, a.bits)?;
    let output = f.nodes.last().and_then(|n| n["name"].as_str()).context("the graph has no nodes")?.to_string();

    let shape = graph.input_shape.clone();
    let pixels: usize = shape.iter().product();
    let inputs: Vec<Vec<f32>> = match &a.images {
        Some(p) => {
            let raw = crate::data::read_maybe_gz(p)?;
            let (dims, data) = crate::data::parse_idx_u8(&raw, 3, &p.display().to_string())?;
            if dims[1] * dims[2] != pixels {
                bail!("{}: images of {}x{} do not fit the model's input {:?}", p.display(), dims[1], dims[2], shape);
            }
            if dims[0] < a.count {
                bail!("{}: {} images, --count asks for {}", p.display(), dims[0], a.count);
            }
            data.chunks_exact(pixels).take(a.count).map(|im| im.iter().map(|&v| v as f32 / 255.0).collect()).collect()
        }
        None => {
            let mut rng = Rng::new(0xbe7c);
            (0..a.count).map(|_| (0..pixels).map(|_| rng.uniform() as f32).collect()).collect()
        }
    };

    let mut model = Model::from_bytes(&bytes)?;
    model.set_width(a.bits)?;
    let mut float_outputs = Vec::new();
    let mut quantized_outputs = Vec::new();
    for x in &inputs {
        let trace = model.trace(x, true)?;
        float_outputs.push(trace.output(graph.nodes.len() - 1).data().to_vec());
        quantized_outputs.push(model.run(x)?);
    }

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let g = json!({
        "model": graph.name, "bits": a.bits.get(), "input": { "shape": shape },
        "nodes": f.nodes, "output": output, "weights": "weights.bin",
    });
    let reference = json!({
        "inputs": inputs, "float_outputs": float_outputs, "quantized_outputs": quantized_outputs, "labels": graph.labels,
    });
    std::fs::write(a.out.join("graph.json"), serde_json::to_string_pretty(&g)?)?;
    std::fs::write(a.out.join("weights.bin"), &f.weights)?;
    std::fs::write(a.out.join("reference.json"), serde_json::to_string(&reference)?)?;
    let agree = float_outputs.iter().zip(&quantized_outputs).filter(|(f, q)| argmax(f) == argmax(q)).count();
    println!(
        "wrote {}: {} float nodes, {} weight bytes, {} reference inputs (float twin and {}-bit runtime agree on the top class for {agree})",
        a.out.display(),
        g["nodes"].as_array().map_or(0, Vec::len),
        f.weights.len(),
        inputs.len(),
        a.bits
    );
    Ok(())
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

/// Builds a random-weight image graph layer by layer.
struct Builder {
    rng: Rng,
    nodes: Vec<Node>,
    codes: Vec<u8>,
    tensors: BTreeMap<String, F32Tensor>,
    widths: Vec<Width>,
}

impl Builder {
    fn new(seed: u64) -> Result<Builder> {
        let widths = (1..=8).map(|b| Width::new(b, b)).collect::<anybit::Result<Vec<_>>>()?;
        Ok(Builder { rng: Rng::new(seed), nodes: Vec::new(), codes: Vec::new(), tensors: BTreeMap::new(), widths })
    }

    fn per_width(&mut self, node: &str, suffix: &str, values: &[f32]) {
        for w in &self.widths {
            self.tensors.insert(names::width_tensor(node, w.w, suffix), F32Tensor { shape: vec![values.len()], data: values.to_vec() });
        }
    }

    fn push(&mut self, name: &str, inputs: &[&str], op: Op) -> String {
        self.nodes.push(Node { name: name.into(), inputs: inputs.iter().map(|s| s.to_string()).collect(), op });
        name.into()
    }

    /// Codes spread over the whole 8-bit range, scale He-like: E = sqrt(6 / fan_in) gives weights
    /// of variance 2 / fan_in (uniform on [-E, E]), so activations keep their scale through depth.
    fn weight(&mut self, name: &str, shape: Vec<usize>, precision: Precision) -> QuantWeight {
        // Fixed-8 codes live in their own store from version 2 on; the writer rewrites offsets.
        let n: usize = shape.iter().product();
        let code_offset = self.codes.len();
        for _ in 0..n {
            let c = (self.rng.uniform() * 256.0) as u32;
            self.codes.push(c.min(255) as u8);
        }
        self.codes.resize(self.codes.len().next_multiple_of(8), 128);
        let fan_in = n / shape[0];
        self.per_width(name, names::WSCALE, &[(6.0 / fan_in as f32).sqrt()]);
        // A clip of 1: inputs are images in [0, 1], and He-scaled layers keep unit-scale
        // activations, so even 1-bit codes are not all zero (with 3, a 1-bit 3x3 conv output was).
        self.per_width(name, names::CLIP, &[1.0]);
        QuantWeight { shape, code_offset, precision, bias: false }
    }

    fn conv(&mut self, name: &str, input: &str, cin: usize, cout: usize, k: usize, stride: usize, precision: Precision) -> String {
        let weight = self.weight(name, vec![cout, k, k, cin], precision);
        let p = k / 2;
        self.push(name, &[input], Op::Conv2d { weight, stride: [stride; 2], padding: [p; 4], dilation: [1, 1], groups: 1 })
    }

    fn affine(&mut self, name: &str, input: &str, channels: usize) -> String {
        self.per_width(name, names::SCALE, &vec![1.0; channels]);
        self.per_width(name, names::BIAS, &vec![0.0; channels]);
        self.push(name, &[input], Op::Affine)
    }

    fn write(self, name: &str, input_shape: Vec<usize>) -> Result<Vec<u8>> {
        let graph = Graph {
            format: format::FORMAT_NAME.into(),
            version: format::FORMAT_VERSION,
            name: name.into(),
            input_shape,
            text: None,
            labels: None,
            widths: self.widths,
            nodes: self.nodes,
            task: None,
            eval: Vec::new(),
            sha256: None,
        };
        Ok(format::write(&graph, &self.codes, &self.tensors)?)
    }
}

fn resnet20(seed: u64) -> Result<Vec<u8>> {
    let mut b = Builder::new(seed)?;
    let mut x = b.conv("stem", "input", 3, 16, 3, 1, Precision::Fixed8);
    x = b.affine("stem.bn", &x, 16);
    x = b.push("stem.relu", &[&x], Op::Relu);
    let mut cin = 16;
    for (stage, cout) in [16usize, 32, 64].into_iter().enumerate() {
        for block in 0..3 {
            let p = format!("s{}b{}", stage + 1, block + 1);
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let c1 = b.conv(&format!("{p}.conv1"), &x, cin, cout, 3, stride, Precision::Model);
            let a1 = b.affine(&format!("{p}.bn1"), &c1, cout);
            let r1 = b.push(&format!("{p}.relu1"), &[&a1], Op::Relu);
            let c2 = b.conv(&format!("{p}.conv2"), &r1, cout, cout, 3, 1, Precision::Model);
            let a2 = b.affine(&format!("{p}.bn2"), &c2, cout);
            let short = if stride != 1 || cin != cout {
                let s = b.conv(&format!("{p}.proj"), &x, cin, cout, 1, stride, Precision::Model);
                b.affine(&format!("{p}.proj.bn"), &s, cout)
            } else {
                x.clone()
            };
            let sum = b.push(&format!("{p}.add"), &[&a2, &short], Op::Add);
            x = b.push(&format!("{p}.relu"), &[&sum], Op::Relu);
            cin = cout;
        }
    }
    let g = b.push("gap", &[&x], Op::GlobalAvgPool);
    let weight = b.weight("fc", vec![10, 64], Precision::Fixed8);
    b.push("fc", &[&g], Op::Dense { weight });
    b.write("resnet20-random", vec![32, 32, 3])
}

fn conv3x3(seed: u64) -> Result<Vec<u8>> {
    let mut b = Builder::new(seed)?;
    b.conv("conv", "input", 64, 64, 3, 1, Precision::Model);
    b.write("conv3x3-64-28x28-random", vec![28, 28, 64])
}

/// `anybit bench-model`.
pub fn bench_model(a: &BenchModelArgs) -> Result<()> {
    let bytes = match a.arch {
        BenchArch::Resnet20 => resnet20(a.seed)?,
        BenchArch::Conv3x3 => conv3x3(a.seed)?,
    };
    let model = Model::from_bytes(&bytes)?;
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {} ({} bytes, {:.1} MMAC per pass, seed {})", a.out.display(), bytes.len(), model.macs() as f64 / 1e6, a.seed);
    Ok(())
}
