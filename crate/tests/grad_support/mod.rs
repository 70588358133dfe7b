//! Shared by grad.rs and attack.rs: an f64 reference interpreter of the float twin written from
//! the format's definitions (not from the runtime's layers), finite differences on it, small
//! graphs covering every op, and the foolbox sample fixture.
#![allow(dead_code)]

use std::collections::BTreeMap;

use anybit::format::{self, names, F32Tensor, Graph, Node, Op, Precision, QuantWeight, Width, FORMAT_NAME, FORMAT_VERSION};
use anybit::grad::Loss;
use anybit::quant::{derive_code, weight_value};
use anybit::Bits;

pub const MNIST: &[u8] = include_bytes!("../../../models/mnist.anybit");
pub const FASHION: &[u8] = include_bytes!("../../../models/fashion-mnist.anybit");
const MNIST_IMAGES: &[u8] = include_bytes!("../fixtures/foolbox/mnist-20.idx3");
const MNIST_LABELS: &[u8] = include_bytes!("../fixtures/foolbox/mnist-20.idx1");
const FASHION_IMAGES: &[u8] = include_bytes!("../fixtures/foolbox/fashion-mnist-20.idx3");
const FASHION_LABELS: &[u8] = include_bytes!("../fixtures/foolbox/fashion-mnist-20.idx1");

pub fn bits(n: u8) -> Bits {
    Bits::new(n).unwrap()
}

/// The 20 foolbox samples (test images 0..19) as (pixels in [0, 1], label).
pub fn samples(fashion: bool) -> Vec<(Vec<f32>, usize)> {
    let (img, lab) = if fashion { (FASHION_IMAGES, FASHION_LABELS) } else { (MNIST_IMAGES, MNIST_LABELS) };
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap()) as usize;
    assert_eq!((be(&img[..4]), be(&img[4..8]), be(&img[8..12]), be(&img[12..16])), (0x803, 20, 28, 28));
    assert_eq!((be(&lab[..4]), be(&lab[4..8])), (0x801, 20));
    img[16..]
        .chunks_exact(784)
        .zip(&lab[8..])
        .map(|(px, &l)| (px.iter().map(|&p| p as f32 / 255.0).collect(), l as usize))
        .collect()
}

/// splitmix64, so failures reproduce without a rand dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in [lo, hi).
    pub fn f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn normal(&mut self) -> f64 {
        let u = self.f64(1e-12, 1.0);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.f64(0.0, 1.0)).cos()
    }
}

pub struct Value {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

enum RefOp {
    /// Weights [out][kh][kw][in/groups], dequantized at the layer's width.
    Conv {
        w: Vec<f64>,
        bias: Option<Vec<f64>>,
        clip: f64,
        shape: [usize; 4],
        groups: usize,
        stride: [usize; 2],
        pad: [usize; 4],
        dil: [usize; 2],
    },
    Dense { w: Vec<f64>, bias: Option<Vec<f64>>, clip: f64, out: usize },
    Pool { max: bool, kernel: [usize; 2], stride: [usize; 2], pad: [usize; 4] },
    Gap,
    Clamp { min: f64, max: f64 },
    Affine { scale: Vec<f64>, bias: Vec<f64> },
    Add,
    Flatten,
    Softmax,
}

/// One forward pass: every value, and the pattern of piecewise decisions it took (each gate
/// element inside or not, each max-pool output's winning input). Two points with the same
/// pattern lie on the same smooth piece, so finite differences between them see no kink.
pub struct Run {
    pub values: Vec<Value>,
    pub pattern: Vec<u32>,
    logits: usize,
}

impl Run {
    pub fn logits(&self) -> &[f64] {
        &self.values[self.logits].data
    }
}

/// The float twin of a model at one width, in f64.
pub struct Reference {
    input_shape: Vec<usize>,
    nodes: Vec<(RefOp, Vec<usize>)>,
    logits: usize,
    /// The clip of each quantized node's input, by node index.
    pub clips: Vec<Option<f64>>,
}

impl Reference {
    pub fn new(bytes: &[u8], width: Bits) -> Reference {
        let file = format::read(bytes).unwrap();
        let g = file.graph();
        let f64s = |name: &str, suffix: &str| -> Vec<f64> {
            file.tensor(name, width, suffix).unwrap().data.iter().map(|&v| v as f64).collect()
        };
        let quant = |name: &str, w: &QuantWeight| {
            let b = if w.precision == Precision::Fixed8 { Bits::MAX } else { width };
            let e = file.tensor(name, width, names::WSCALE).unwrap().data[0];
            let codes = file.layer_codes(w).unwrap();
            let values = codes.iter().map(|&c| weight_value(derive_code(c, b), b, e) as f64).collect();
            let bias = w.bias.then(|| f64s(name, names::BIAS));
            (values, bias, f64s(name, names::CLIP)[0])
        };
        let mut nodes = Vec::new();
        let mut clips = Vec::new();
        for (node, inputs) in g.nodes.iter().zip(file.inputs()) {
            let name = node.name.as_str();
            let op = match &node.op {
                Op::Conv2d { weight, stride, padding, dilation, groups } => {
                    let (w, bias, clip) = quant(name, weight);
                    let s = &weight.shape;
                    RefOp::Conv {
                        w,
                        bias,
                        clip,
                        shape: [s[0], s[1], s[2], s[3]],
                        groups: *groups,
                        stride: *stride,
                        pad: *padding,
                        dil: *dilation,
                    }
                }
                Op::Dense { weight } => {
                    let (w, bias, clip) = quant(name, weight);
                    RefOp::Dense { w, bias, clip, out: weight.shape[0] }
                }
                Op::MaxPool { kernel, stride, padding } => RefOp::Pool { max: true, kernel: *kernel, stride: *stride, pad: *padding },
                Op::AvgPool { kernel, stride, padding } => RefOp::Pool { max: false, kernel: *kernel, stride: *stride, pad: *padding },
                Op::GlobalAvgPool => RefOp::Gap,
                Op::Relu => RefOp::Clamp { min: 0.0, max: f64::INFINITY },
                Op::Relu6 => RefOp::Clamp { min: 0.0, max: 6.0 },
                Op::Clamp { min, max } => RefOp::Clamp { min: *min as f64, max: *max as f64 },
                Op::Affine => RefOp::Affine { scale: f64s(name, names::SCALE), bias: f64s(name, names::BIAS) },
                Op::Add => RefOp::Add,
                Op::Flatten => RefOp::Flatten,
                Op::Softmax => RefOp::Softmax,
                other => panic!("the gradient reference interprets image models only, not {other:?}"),
            };
            clips.push(match &op {
                RefOp::Conv { clip, .. } | RefOp::Dense { clip, .. } => Some(*clip),
                _ => None,
            });
            nodes.push((op, inputs.clone()));
        }
        let last = nodes.len();
        let logits = match nodes.last() {
            Some((RefOp::Softmax, ins)) => ins[0],
            _ => last,
        };
        Reference { input_shape: g.input_shape.clone(), nodes, logits, clips }
    }

    pub fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    pub fn run(&self, x: &[f64]) -> Run {
        assert_eq!(x.len(), self.input_len());
        let mut values = vec![Value { shape: self.input_shape.clone(), data: x.to_vec() }];
        let mut pattern = Vec::new();
        for (op, inputs) in &self.nodes {
            let ins: Vec<&Value> = inputs.iter().map(|&v| &values[v]).collect();
            let out = eval(op, &ins, &mut pattern);
            values.push(out);
        }
        Run { values, pattern, logits: self.logits }
    }
}

/// `x` clamped to [lo, hi], recording whether each element was inside (inclusive: where the
/// runtime passes the gradient).
fn clamp_gate(x: &[f64], lo: f64, hi: f64, pattern: &mut Vec<u32>) -> Vec<f64> {
    pattern.extend(x.iter().map(|&v| (v >= lo && v <= hi) as u32));
    x.iter().map(|&v| v.max(lo).min(hi)).collect()
}

fn window(len: usize, lo: usize, hi: usize, k: usize, s: usize, d: usize) -> usize {
    (len + lo + hi - (d * (k - 1) + 1)) / s + 1
}

fn eval(op: &RefOp, ins: &[&Value], pattern: &mut Vec<u32>) -> Value {
    let x = ins[0];
    match op {
        RefOp::Conv { w, bias, clip, shape, groups, stride, pad, dil } => {
            let (h, wd, c) = (x.shape[0], x.shape[1], x.shape[2]);
            let [out, kh, kw, cg] = *shape;
            assert_eq!(c, cg * groups);
            let xc = clamp_gate(&x.data, 0.0, *clip, pattern);
            let ho = window(h, pad[0], pad[2], kh, stride[0], dil[0]);
            let wo = window(wd, pad[1], pad[3], kw, stride[1], dil[1]);
            let og = out / groups;
            let mut y = vec![0.0; ho * wo * out];
            for oy in 0..ho {
                for ox in 0..wo {
                    for o in 0..out {
                        let g = o / og;
                        let mut acc = bias.as_ref().map_or(0.0, |b| b[o]);
                        for ky in 0..kh {
                            let iy = (oy * stride[0] + ky * dil[0]) as isize - pad[0] as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (ox * stride[1] + kx * dil[1]) as isize - pad[1] as isize;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                let xi = &xc[(iy as usize * wd + ix as usize) * c + g * cg..][..cg];
                                let wi = &w[((o * kh + ky) * kw + kx) * cg..][..cg];
                                acc += xi.iter().zip(wi).map(|(a, b)| a * b).sum::<f64>();
                            }
                        }
                        y[(oy * wo + ox) * out + o] = acc;
                    }
                }
            }
            Value { shape: vec![ho, wo, out], data: y }
        }
        RefOp::Dense { w, bias, clip, out } => {
            // Dense reads its input flattened in memory order (H, W, C).
            let xc = clamp_gate(&x.data, 0.0, *clip, pattern);
            let depth = xc.len();
            assert_eq!(w.len(), out * depth);
            let y = (0..*out)
                .map(|o| {
                    bias.as_ref().map_or(0.0, |b| b[o]) + w[o * depth..][..depth].iter().zip(&xc).map(|(a, b)| a * b).sum::<f64>()
                })
                .collect();
            Value { shape: vec![*out], data: y }
        }
        RefOp::Pool { max, kernel, stride, pad } => {
            let (h, wd, c) = (x.shape[0], x.shape[1], x.shape[2]);
            let ho = window(h, pad[0], pad[2], kernel[0], stride[0], 1);
            let wo = window(wd, pad[1], pad[3], kernel[1], stride[1], 1);
            let mut y = vec![0.0; ho * wo * c];
            for oy in 0..ho {
                for ox in 0..wo {
                    // Only in-bounds positions take part: padding is neither a candidate maximum
                    // nor counted in an average.
                    let ys = (oy * stride[0]) as isize - pad[0] as isize;
                    let xs = (ox * stride[1]) as isize - pad[1] as isize;
                    let iys: Vec<usize> = (ys..ys + kernel[0] as isize).filter(|&v| v >= 0 && v < h as isize).map(|v| v as usize).collect();
                    let ixs: Vec<usize> = (xs..xs + kernel[1] as isize).filter(|&v| v >= 0 && v < wd as isize).map(|v| v as usize).collect();
                    for ch in 0..c {
                        let mut best: Option<(f64, usize)> = None;
                        let mut sum = 0.0;
                        for &iy in &iys {
                            for &ix in &ixs {
                                let i = (iy * wd + ix) * c + ch;
                                let v = x.data[i];
                                sum += v;
                                if best.is_none_or(|(b, _)| v > b) {
                                    best = Some((v, i));
                                }
                            }
                        }
                        let n = (iys.len() * ixs.len()) as f64;
                        y[(oy * wo + ox) * c + ch] = if *max {
                            let (v, i) = best.expect("a window holds an input");
                            pattern.push(i as u32);
                            v
                        } else {
                            sum / n
                        };
                    }
                }
            }
            Value { shape: vec![ho, wo, c], data: y }
        }
        RefOp::Gap => {
            let c = x.shape[2];
            let n = (x.shape[0] * x.shape[1]) as f64;
            let mut y = vec![0.0; c];
            for px in x.data.chunks_exact(c) {
                y.iter_mut().zip(px).for_each(|(a, b)| *a += b);
            }
            Value { shape: vec![1, 1, c], data: y.into_iter().map(|v| v / n).collect() }
        }
        RefOp::Clamp { min, max } => Value { shape: x.shape.clone(), data: clamp_gate(&x.data, *min, *max, pattern) },
        RefOp::Affine { scale, bias } => {
            let c = scale.len();
            let data = x.data.iter().enumerate().map(|(i, v)| v * scale[i % c] + bias[i % c]).collect();
            Value { shape: x.shape.clone(), data }
        }
        RefOp::Add => {
            let mut data = x.data.clone();
            for other in &ins[1..] {
                assert_eq!(other.shape, x.shape);
                data.iter_mut().zip(&other.data).for_each(|(a, b)| *a += b);
            }
            Value { shape: x.shape.clone(), data }
        }
        RefOp::Flatten => Value { shape: vec![x.data.len()], data: x.data.clone() },
        RefOp::Softmax => {
            let n = *x.shape.last().unwrap();
            let mut data = x.data.clone();
            for row in data.chunks_exact_mut(n) {
                let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
                row.iter_mut().for_each(|v| *v = (*v - m).exp() / s);
            }
            Value { shape: x.shape.clone(), data }
        }
    }
}

/// A loss of `anybit::grad::Loss` recomputed in f64 from its definition; its kinks (the margin's
/// runner-up class and cap) go into `pattern`.
pub fn loss_f64(loss: Loss, z: &[f64], pattern: &mut Vec<u32>) -> f64 {
    match loss {
        Loss::CrossEntropy { class, away } => {
            // lse(z) - z[class] = ln(1 + sum_{j != class} exp(z_j - z_class)), written so that a
            // confident model's tiny loss keeps its relative precision (lse - z[class] would
            // leave only rounding error for the finite differences to see).
            let rest: f64 = (0..z.len()).filter(|&j| j != class).map(|j| (z[j] - z[class]).exp()).sum();
            let ce = rest.ln_1p();
            if away {
                ce
            } else {
                -ce
            }
        }
        Loss::Difference { to, from } => z[to] - z[from],
        Loss::Margin { class, away, kappa } => {
            let other = (0..z.len()).filter(|&i| i != class).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap();
            let m = if away { z[other] - z[class] } else { z[class] - z[other] };
            pattern.push(other as u32);
            pattern.push((m < kappa as f64) as u32);
            m.min(kappa as f64)
        }
    }
}

/// Central differences of each loss along each direction. A step whose ends `x + h d` and
/// `x - h d` take other piecewise decisions than `x` crosses a kink: it is retried at h / 10 and
/// h / 100 (a near-tie of two max-pool candidates is passed by a smaller step), and if all three
/// cross, `Err(direction index)`: the caller moves the point.
pub fn central_differences(r: &Reference, x: &[f64], dirs: &[Vec<f64>], losses: &[Loss], h: f64) -> Result<Vec<Vec<f64>>, usize> {
    let at = |p: &[f64]| {
        let run = r.run(p);
        let mut pattern = run.pattern.clone();
        let values: Vec<f64> = losses.iter().map(|&l| loss_f64(l, run.logits(), &mut pattern)).collect();
        (values, pattern)
    };
    let (_, p0) = at(x);
    let mut out = vec![Vec::with_capacity(dirs.len()); losses.len()];
    'dirs: for (k, d) in dirs.iter().enumerate() {
        for step in [h, h / 10.0, h / 100.0] {
            let plus: Vec<f64> = x.iter().zip(d).map(|(a, b)| a + step * b).collect();
            let minus: Vec<f64> = x.iter().zip(d).map(|(a, b)| a - step * b).collect();
            let ((fp, pp), (fm, pm)) = (at(&plus), at(&minus));
            if pp == p0 && pm == p0 {
                for (l, (a, b)) in fp.iter().zip(&fm).enumerate() {
                    out[l].push((a - b) / (2.0 * step));
                }
                continue 'dirs;
            }
        }
        return Err(k);
    }
    Ok(out)
}

/// `|a - b| / |b|` over vectors (the FD values `b` are the reference).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let diff = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let norm = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(1e-12)
}

pub fn unit(n: usize, i: usize) -> Vec<f64> {
    let mut v = vec![0.0; n];
    v[i] = 1.0;
    v
}

// ---- small graphs -------------------------------------------------------------------------

fn node(name: &str, inputs: &[&str], op: Op) -> Node {
    Node { name: name.into(), inputs: inputs.iter().map(|s| s.to_string()).collect(), op }
}

/// A conv node; its codes go at `*off`, which moves on to the next multiple of 8.
pub fn conv(
    off: &mut usize,
    shape: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 4],
    dilation: [usize; 2],
    groups: usize,
    precision: Precision,
) -> Op {
    let weight = QuantWeight { shape: shape.to_vec(), code_offset: *off, precision, bias: true };
    *off = (*off + shape.iter().product::<usize>()).next_multiple_of(8);
    Op::Conv2d { weight, stride, padding, dilation, groups }
}

pub fn dense(off: &mut usize, out: usize, depth: usize, precision: Precision, bias: bool) -> Op {
    let weight = QuantWeight { shape: vec![out, depth], code_offset: *off, precision, bias };
    *off = (*off + out * depth).next_multiple_of(8);
    Op::Dense { weight }
}

pub const WIDTHS: [u8; 4] = [8, 4, 2, 1];

fn graph(name: &str, input_shape: Vec<usize>, nodes: Vec<Node>) -> Graph {
    Graph {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        name: name.into(),
        input_shape,
        text: None,
        labels: None,
        widths: WIDTHS.iter().map(|&w| Width::new(w, w).unwrap()).collect(),
        nodes,
        task: None,
        eval: vec![],
        sha256: None,
    }
}

/// Writes `g` with random codes and per-width tensors: weight scales of about 1.5 / sqrt(depth)
/// keep activations of order one through the layers, clips in [0.5, 3] leave both sides of every
/// quantizer's range in use.
pub fn write(g: &Graph, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut end = 0;
    for n in &g.nodes {
        if let Some(w) = n.op.weight() {
            end = end.max(w.code_offset + w.shape.iter().product::<usize>());
        }
    }
    let codes: Vec<u8> = (0..end).map(|_| rng.next() as u8).collect();
    let mut t = BTreeMap::new();
    let mut channels: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &g.nodes {
        if let Some(w) = n.op.weight() {
            channels.insert(&n.name, w.shape[0]);
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        for w in &g.widths {
            let name = |s: &str| format::width_tensor(&n.name, w.w, s);
            let mut put = |s: &str, data: Vec<f32>| {
                t.insert(name(s), F32Tensor { shape: vec![data.len()], data });
            };
            match &n.op {
                Op::Conv2d { weight, .. } | Op::Dense { weight } => {
                    let depth: usize = weight.shape[1..].iter().product();
                    put(names::WSCALE, vec![(rng.f64(1.0, 2.0) / (depth as f64).sqrt()) as f32]);
                    put(names::CLIP, vec![rng.f64(0.5, 3.0) as f32]);
                    if weight.bias {
                        put(names::BIAS, (0..weight.shape[0]).map(|_| rng.f64(-0.3, 0.6) as f32).collect());
                    }
                }
                Op::Affine => {
                    // The channels of the node it follows (every affine here follows a conv).
                    let c = channels[g.nodes[i - 1].name.as_str()];
                    put(names::SCALE, (0..c).map(|_| rng.f64(0.5, 1.5) as f32).collect());
                    put(names::BIAS, (0..c).map(|_| rng.f64(-0.2, 0.5) as f32).collect());
                }
                _ => {}
            }
        }
    }
    format::write(g, &codes, &t).unwrap()
}

/// Small graphs that together run every op and every conv option (asymmetric padding, stride 2,
/// dilation 2, groups, odd sizes, fixed 8-bit and model-width layers), as (name, file).
pub fn op_graphs() -> Vec<(&'static str, Vec<u8>)> {
    use Precision::{Fixed8, Model};
    let mut out = Vec::new();

    // Strided, dilated, grouped convs with asymmetric padding; max and average pooling with
    // padding; relu6, clamp, flatten, dense and a final softmax.
    let mut off = 0;
    let g = graph(
        "convs",
        vec![7, 9, 4],
        vec![
            node("c1", &["input"], conv(&mut off, [6, 3, 3, 2], [2, 1], [1, 0, 2, 1], [1, 2], 2, Model)),
            node("bn1", &["c1"], Op::Affine),
            node("r6", &["bn1"], Op::Relu6),
            node("c2", &["r6"], conv(&mut off, [5, 2, 3, 6], [1, 2], [1, 1, 0, 2], [2, 1], 1, Fixed8)),
            node("cl", &["c2"], Op::Clamp { min: -0.4, max: 1.7 }),
            node("mp", &["cl"], Op::MaxPool { kernel: [3, 2], stride: [2, 1], padding: [1, 0, 1, 1] }),
            node("ap", &["mp"], Op::AvgPool { kernel: [2, 3], stride: [1, 2], padding: [1, 1, 0, 1] }),
            node("fl", &["ap"], Op::Flatten),
            // c1 [4, 6, 6], c2 [3, 4, 5], mp [2, 4, 5], ap [2, 2, 5]: 20 inputs.
            node("fc", &["fl"], dense(&mut off, 4, 20, Model, true)),
            node("prob", &["fc"], Op::Softmax),
        ],
    );
    out.push(("convs", write(&g, 1)));

    // A residual block: a depthwise conv (groups = channels, dilation 2), a three-way add, a
    // relu, global average pooling, and a dense layer reading a [1, 1, c] image directly.
    let mut off = 0;
    let g = graph(
        "residual",
        vec![6, 5, 3],
        vec![
            node("stem", &["input"], conv(&mut off, [4, 3, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1, Fixed8)),
            node("bn", &["stem"], Op::Affine),
            node("relu", &["bn"], Op::Relu),
            node("dw", &["relu"], conv(&mut off, [4, 3, 3, 1], [1, 1], [2, 2, 2, 2], [2, 2], 4, Model)),
            node("pw", &["relu"], conv(&mut off, [4, 1, 1, 4], [1, 1], [0; 4], [1, 1], 1, Model)),
            node("sum", &["relu", "dw", "pw"], Op::Add),
            node("relu2", &["sum"], Op::Relu),
            node("gap", &["relu2"], Op::GlobalAvgPool),
            node("fc", &["gap"], dense(&mut off, 3, 4, Fixed8, false)),
        ],
    );
    out.push(("residual", write(&g, 2)));

    // Dense on an image without a flatten node (it flattens H, W, C itself), then a second
    // dense behind a clamp; ends without a softmax.
    let mut off = 0;
    let g = graph(
        "dense",
        vec![3, 5, 2],
        vec![
            node("c", &["input"], conv(&mut off, [3, 3, 2, 2], [2, 2], [0, 1, 0, 0], [1, 1], 1, Model)),
            // c: [1, 3, 3], 9 inputs.
            node("fc1", &["c"], dense(&mut off, 7, 9, Model, true)),
            node("cl", &["fc1"], Op::Clamp { min: -1.0, max: 1.0 }),
            node("fc2", &["cl"], dense(&mut off, 5, 7, Model, true)),
        ],
    );
    out.push(("dense", write(&g, 3)));
    out
}
