//! For text_layers.rs: a small random BERT-layout model built by the test itself (the same node
//! names and wiring as `anybit import`), and an f64 reference interpreter of text graphs written
//! from the format's definitions (docs/FORMAT.md, format/graph.rs), not from the runtime's layers.
//! The reference decodes the packed embedding table bit by bit, normalizes in f64, uses its own
//! erf, and in its quantized mode repeats the runtime's per-token 8-bit activation rounding in
//! f32, so that the integer path can be held to a tight tolerance.
#![allow(dead_code)]

use std::collections::BTreeMap;

use anybit::format::names::{self, BIAS, INPUT, LO, SCALE, SMOOTH, STEP, WSCALE};
use anybit::format::{self, F32Tensor, Graph, ModelFile, Node, Op, Precision, QuantWeight, RowBits, Text, Width};
use anybit::quant::{derive_code, weight_value};
use anybit::text::TokenizerConfig;
use anybit::Bits;

use crate::common::Rng;

pub const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
pub const PAD: u32 = 0;
pub const CLS: u32 = 2;
pub const SEP: u32 = 3;
pub const VOCAB: usize = 50;
pub const HIDDEN: usize = 16;
pub const HEADS: usize = 4;
pub const FF: usize = 32;
pub const LAYERS: usize = 2;
pub const POSITIONS: usize = 160;
pub const TYPES: usize = 2;
pub const EPS: f32 = 1e-12;
/// Runs of the embedding table (rows, bits): 8-bit specials, 5- and 3-bit words, a 3-bit run that
/// crosses from the words into the positions, 8- and 6-bit positions, 1-bit types, and codes of
/// 3, 5 and 6 bits that straddle bytes.
pub const RUNS: [(usize, u8); 6] = [(5, 8), (25, 5), (30, 3), (140, 8), (10, 6), (2, 1)];

pub fn bits(n: u8) -> Bits {
    Bits::new(n).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Mean,
    Cls,
}

/// What the builder wrote, so that a reader's result can be compared with it.
pub struct Built {
    pub bytes: Vec<u8>,
    pub graph: Graph,
    /// The flat code sequence given to the writer (each linear at its `code_offset`).
    pub codes: Vec<u8>,
    pub tensors: BTreeMap<String, F32Tensor>,
    pub tables: BTreeMap<String, Vec<u8>>,
}

/// Codes packed least significant bit first, back to back: bit `i` of the code at bit position
/// `pos` is bit `(pos + i) % 8` of byte `(pos + i) / 8` (docs/FORMAT.md, `embed`).
pub fn pack_lsb_first(codes: &[(u8, u8)]) -> Vec<u8> {
    let total: usize = codes.iter().map(|&(_, b)| b as usize).sum();
    let mut out = vec![0u8; total.div_ceil(8)];
    let mut pos = 0;
    for &(c, b) in codes {
        assert!(b == 8 || c >> b == 0, "code {c} does not fit {b} bits");
        for i in 0..b as usize {
            if (c >> i) & 1 == 1 {
                out[(pos + i) / 8] |= 1 << ((pos + i) % 8);
            }
        }
        pos += b as usize;
    }
    out
}

/// One row of an embedding table: `hidden` values decoded from `table` at bit position `pos`.
pub fn decode_row(table: &[u8], pos: usize, hidden: usize, bits: usize, lo: f32, step: f32) -> Vec<f64> {
    (0..hidden)
        .map(|j| {
            let mut q = 0u32;
            for i in 0..bits {
                let p = pos + j * bits + i;
                q |= (((table[p / 8] >> (p % 8)) & 1) as u32) << i;
            }
            lo as f64 + step as f64 * q as f64
        })
        .collect()
}

/// A random embedding table of `runs` (rows, bits) rows of `hidden`: (packed table, lo, step,
/// the codes row by row). Row 1 has step 0 (a constant row, which the format allows).
pub fn random_table(rng: &mut Rng, runs: &[(usize, u8)], hidden: usize) -> (Vec<u8>, Vec<f32>, Vec<f32>, Vec<Vec<u8>>) {
    let (mut lo, mut step, mut rows, mut flat) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &(n, b) in runs {
        let top = ((1u32 << b) - 1) as f32;
        for _ in 0..n {
            let codes: Vec<u8> = (0..hidden).map(|_| (rng.next() % (1u64 << b)) as u8).collect();
            flat.extend(codes.iter().map(|&c| (c, b)));
            rows.push(codes);
            lo.push(rng.f32(-1.0, -0.2));
            step.push(if rows.len() == 2 { 0.0 } else { rng.f32(0.4, 2.0) / top });
        }
    }
    (pack_lsb_first(&flat), lo, step, rows)
}

fn tensor(data: Vec<f32>) -> F32Tensor {
    F32Tensor { shape: vec![data.len()], data }
}

struct Builder<'r> {
    rng: &'r mut Rng,
    widths: Vec<Bits>,
    nodes: Vec<Node>,
    codes: Vec<u8>,
    tensors: BTreeMap<String, F32Tensor>,
}

impl Builder<'_> {
    fn node(&mut self, name: &str, inputs: &[&str], op: Op) -> String {
        self.nodes.push(Node { name: name.into(), inputs: inputs.iter().map(|s| s.to_string()).collect(), op });
        name.into()
    }

    /// Random 8-bit codes; per width a row scale around `e` (each width its own, as a fitted
    /// import or a jointly trained model has), and a bias when `bias`.
    fn linear(&mut self, name: &str, input: &str, out: usize, depth: usize, e: f32, bias: bool, smooth: bool) -> String {
        self.codes.resize(self.codes.len().div_ceil(8) * 8, 0);
        let offset = self.codes.len();
        let codes = self.rng.bytes(out * depth);
        self.codes.extend_from_slice(&codes);
        let base: Vec<f32> = (0..out).map(|_| e * self.rng.f32(0.7, 1.3)).collect();
        for &b in &self.widths.clone() {
            let scales = base.iter().map(|&s| s * self.rng.f32(0.8, 1.2)).collect();
            self.tensors.insert(names::width_tensor(name, b, WSCALE), tensor(scales));
        }
        if bias {
            let v = self.rng.floats(out, -0.3, 0.3);
            self.tensors.insert(names::shared_tensor(name, BIAS), tensor(v));
        }
        if smooth {
            let v = self.rng.floats(depth, 0.5, 2.0);
            self.tensors.insert(names::shared_tensor(name, SMOOTH), tensor(v));
        }
        let weight = QuantWeight { shape: vec![out, depth], code_offset: offset, precision: Precision::Model, bias };
        self.node(name, &[input], Op::Linear { weight, smooth })
    }

    fn layer_norm(&mut self, name: &str, input: &str) -> String {
        for &b in &self.widths.clone() {
            let scale = self.rng.floats(HIDDEN, 0.6, 1.4);
            let bias = self.rng.floats(HIDDEN, -0.2, 0.2);
            self.tensors.insert(names::width_tensor(name, b, SCALE), tensor(scale));
            self.tensors.insert(names::width_tensor(name, b, BIAS), tensor(bias));
        }
        self.node(name, &[input], Op::LayerNorm { eps: EPS })
    }
}

pub fn vocab() -> Vec<String> {
    let mut v: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    v.extend((v.len()..VOCAB).map(|i| format!("w{i}")));
    v
}

/// The random model: embeddings and their LayerNorm, `LAYERS` encoder layers wired as
/// `anybit import` wires them (one attention output projection without a bias, and some
/// projections with SmoothQuant factors, to cover those cases too), then the pooling; widths
/// 8..1, each with 8-bit activations.
pub fn build(pool: Pool, seed: u64) -> Built {
    let mut rng = Rng(seed);
    let widths: Vec<Bits> = Bits::all_desc().collect();
    let mut b = Builder { rng: &mut rng, widths: widths.clone(), nodes: Vec::new(), codes: Vec::new(), tensors: BTreeMap::new() };

    let (table, lo, step, _) = random_table(b.rng, &RUNS, HIDDEN);
    b.tensors.insert(names::shared_tensor("embed", LO), tensor(lo));
    b.tensors.insert(names::shared_tensor("embed", STEP), tensor(step));
    let rows = RUNS.iter().map(|&(rows, n)| RowBits { rows, bits: bits(n) }).collect();
    let op = Op::Embed { vocab: VOCAB, positions: POSITIONS, types: TYPES, hidden: HIDDEN, rows };
    let mut x = b.node("embed", &[INPUT], op);
    x = b.layer_norm("embed.ln", &x);
    // Row scales that keep hidden states near unit variance: |w| is uniform on [0, E], so a
    // projection of depth d has variance about d E^2 / 3.
    let e_h = (3.0 / HIDDEN as f32).sqrt();
    let e_ff = (3.0 / FF as f32).sqrt();
    for l in 0..LAYERS {
        // Layer 0 smooths the inputs of its Q, K, V and feed-forward projections, layer 1 only
        // the output projection's.
        let sm = l == 0;
        let q = b.linear(&format!("l{l}.q"), &x, HIDDEN, HIDDEN, e_h, true, sm);
        let k = b.linear(&format!("l{l}.k"), &x, HIDDEN, HIDDEN, e_h, true, sm);
        let v = b.linear(&format!("l{l}.v"), &x, HIDDEN, HIDDEN, e_h, true, sm);
        let att = b.node(&format!("l{l}.attn"), &[&q, &k, &v, INPUT], Op::Attention { heads: HEADS });
        let o = b.linear(&format!("l{l}.attn.out"), &att, HIDDEN, HIDDEN, e_h, l != 1, !sm);
        let add = b.node(&format!("l{l}.attn.add"), &[&o, &x], Op::Add);
        let mid = b.layer_norm(&format!("l{l}.attn.ln"), &add);
        let up = b.linear(&format!("l{l}.ffn.in"), &mid, FF, HIDDEN, e_h, true, sm);
        let act = b.node(&format!("l{l}.ffn.gelu"), &[&up], Op::Gelu);
        let down = b.linear(&format!("l{l}.ffn.out"), &act, HIDDEN, FF, e_ff, true, false);
        let add = b.node(&format!("l{l}.ffn.add"), &[&down, &mid], Op::Add);
        x = b.layer_norm(&format!("l{l}.ffn.ln"), &add);
    }
    match pool {
        Pool::Mean => b.node("pool", &[&x, INPUT], Op::MeanPool),
        Pool::Cls => b.node("pool", &[&x], Op::ClsPool),
    };
    let graph = Graph {
        format: format::FORMAT_NAME.into(),
        version: format::FORMAT_VERSION,
        name: format!("random-bert-{pool:?}").to_lowercase(),
        input_shape: vec![POSITIONS, 3],
        text: Some(Text { vocab: vocab(), tokenizer: TokenizerConfig::bert_uncased(POSITIONS) }),
        labels: None,
        widths: widths.iter().map(|&w| Width { w, a: Bits::MAX }).collect(),
        nodes: b.nodes,
        task: None,
        eval: Vec::new(),
        sha256: None,
    };
    let tables = BTreeMap::from([("embed".to_string(), table)]);
    let bytes = format::write_with_tables(&graph, &b.codes, &b.tensors, &tables).unwrap();
    Built { bytes, graph, codes: b.codes, tensors: b.tensors, tables }
}

/// One text input: per token (id, type, mask).
#[derive(Clone, Debug)]
pub struct Tokens {
    pub ids: Vec<u32>,
    pub types: Vec<u32>,
    pub mask: Vec<u8>,
}

impl Tokens {
    /// `[CLS] words.. [SEP]` (a lone `[CLS]` for one token) of `n` tokens whose last `pad` are
    /// `[PAD]` with mask 0; types 0 for the first half, 1 after.
    pub fn sentence(rng: &mut Rng, n: usize, pad: usize) -> Tokens {
        assert!(pad <= n);
        let real = n - pad;
        let ids = (0..n)
            .map(|t| match t {
                0 => CLS,
                t if t >= real => PAD,
                t if t + 1 == real => SEP,
                _ => (rng.next() % VOCAB as u64) as u32,
            })
            .collect();
        let types = (0..n).map(|t| (t >= real.div_ceil(2) && t < real) as u32).collect();
        let mask = (0..n).map(|t| (t < real) as u8).collect();
        Tokens { ids, types, mask }
    }

    /// Random ids and types, and a mask with holes anywhere (the first token included).
    pub fn scattered(rng: &mut Rng, n: usize) -> Tokens {
        let ids = (0..n).map(|_| (rng.next() % VOCAB as u64) as u32).collect();
        let types = (0..n).map(|_| (rng.next() % TYPES as u64) as u32).collect();
        let mask = (0..n).map(|_| (rng.next() % 3 != 0) as u8).collect();
        Tokens { ids, types, mask }
    }

    pub fn all_padding(n: usize) -> Tokens {
        Tokens { ids: vec![PAD; n], types: vec![0; n], mask: vec![0; n] }
    }

    /// The model input `[tokens, 3]`, flattened.
    pub fn input(&self) -> Vec<f32> {
        (0..self.ids.len()).flat_map(|t| [self.ids[t] as f32, self.types[t] as f32, self.mask[t] as f32]).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// f64 reference

/// erf by its Maclaurin series: 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1)). Accurate to about
/// 1e-14 for |x| <= 3 (the largest term there is below 200).
pub fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let (mut term, mut sum) = (x, x);
    for n in 1..200 {
        term *= -x2 / n as f64;
        let t = term / (2 * n + 1) as f64;
        sum += t;
        if t.abs() < 1e-18 * sum.abs() {
            break;
        }
    }
    sum * std::f64::consts::FRAC_2_SQRT_PI
}

/// erfc for x > 0 by Laplace's continued fraction
/// `exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))`, evaluated from a fixed depth
/// backwards; it converges faster the larger x is (to 1e-16 by x = 2 at this depth).
pub fn erfc_cf(x: f64) -> f64 {
    assert!(x > 0.0);
    let mut t = x;
    for k in (1..=400).rev() {
        t = x + (k as f64 / 2.0) / t;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / t
}

/// erf to about 1e-14 everywhere: the series near 0, where 1 - erfc would lose digits, and the
/// continued fraction beyond 3, where the series would cancel.
pub fn erf(x: f64) -> f64 {
    if x.abs() < 3.0 {
        erf_series(x)
    } else {
        x.signum() * (1.0 - erfc_cf(x.abs()))
    }
}

pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// What the reference models of a Linear layer's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acts {
    /// The float twin: the input as it is.
    Float,
    /// The quantized pass: each token rounded to `bits` over its own range.
    Dynamic,
}

/// One token's input as the integer path sees it: the values rounded to f32 (what the runtime
/// holds), then `lo = min`, `s = (hi - lo) / L` (0 for a constant token), the code
/// `clamp(floor((x - lo) / s + 0.5), 0, L)` with the division as a product by `1 / s`, all in
/// f32 as `QuantWeights::gemm_dynamic` computes them, and back as `lo + s * code` in f64.
/// With `smooth`, each value is first multiplied by the reciprocal of its channel's factor, in
/// f32 as `Linear::forward` does.
pub fn dynamic_token(x: &[f64], abits: Bits, smooth: Option<&[f32]>) -> Vec<f64> {
    let la = ((1u32 << abits.get()) - 1) as f32;
    let xs: Vec<f32> = match smooth {
        None => x.iter().map(|&v| v as f32).collect(),
        Some(s) => x.iter().zip(s).map(|(&v, &s)| v as f32 * (1.0 / s)).collect(),
    };
    let lo = xs.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let s = if hi > lo { (hi - lo) / la } else { 0.0 };
    let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
    xs.iter()
        .map(|&v| {
            let code = ((v - lo) * inv + 0.5).floor().clamp(0.0, la);
            lo as f64 + s as f64 * code as f64
        })
        .collect()
}

/// `y[t] = W (x[t] / smooth) + bias` for `x`: [tokens][depth], `w`: [out][depth].
pub fn linear(x: &[f64], w: &[f64], bias: Option<&[f64]>, smooth: Option<&[f32]>, depth: usize, acts: Acts, abits: Bits) -> Vec<f64> {
    let out = w.len() / depth;
    let mut y = Vec::with_capacity(x.len() / depth * out);
    for tok in x.chunks_exact(depth) {
        let xq = match (acts, smooth) {
            (Acts::Float, None) => tok.to_vec(),
            (Acts::Float, Some(s)) => tok.iter().zip(s).map(|(&v, &s)| v / s as f64).collect(),
            (Acts::Dynamic, _) => dynamic_token(tok, abits, smooth),
        };
        for (r, row) in w.chunks_exact(depth).enumerate() {
            let dot: f64 = row.iter().zip(&xq).map(|(a, b)| a * b).sum();
            y.push(dot + bias.map_or(0.0, |b| b[r]));
        }
    }
    y
}

/// The weights of a linear row by row at width `b`: code `derive_code(c8, b)` standing for
/// `weight_value(code, b, E_row)`.
pub fn dequantize(codes8: &[u8], depth: usize, b: Bits, row_scales: &[f32]) -> Vec<f64> {
    codes8.iter().enumerate().map(|(i, &c)| weight_value(derive_code(c, b), b, row_scales[i / depth]) as f64).collect()
}

/// Each `hidden`-wide row normalized with its biased variance, then `* scale + bias`.
pub fn layer_norm(x: &[f64], scale: &[f64], bias: &[f64], eps: f64) -> Vec<f64> {
    let h = scale.len();
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks_exact(h) {
        let mean = row.iter().sum::<f64>() / h as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / h as f64;
        let inv = 1.0 / (var + eps).sqrt();
        y.extend(row.iter().enumerate().map(|(j, v)| (v - mean) * inv * scale[j] + bias[j]));
    }
    y
}

/// softmax(q k^T / sqrt(dh)) v per head, over the keys whose mask is 1; when none is, every key
/// with the same weight (BERT adds the most negative f32 to every masked score, which swamps the
/// scores themselves).
pub fn attention(q: &[f64], k: &[f64], v: &[f64], mask: &[bool], heads: usize) -> Vec<f64> {
    let n = mask.len();
    let hidden = q.len() / n;
    let dh = hidden / heads;
    let none = !mask.iter().any(|&m| m);
    let mut out = vec![0f64; n * hidden];
    for h in 0..heads {
        for i in 0..n {
            let scores: Vec<Option<f64>> = (0..n)
                .map(|j| {
                    if none {
                        return Some(0.0);
                    }
                    mask[j].then(|| (0..dh).map(|d| q[i * hidden + h * dh + d] * k[j * hidden + h * dh + d]).sum::<f64>() / (dh as f64).sqrt())
                })
                .collect();
            let max = scores.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| s.map_or(0.0, |s| (s - max).exp())).collect();
            let total: f64 = e.iter().sum();
            for (j, &ej) in e.iter().enumerate() {
                for d in 0..dh {
                    out[i * hidden + h * dh + d] += ej / total * v[j * hidden + h * dh + d];
                }
            }
        }
    }
    out
}

pub fn mean_pool(x: &[f64], mask: &[bool]) -> Vec<f64> {
    let h = x.len() / mask.len();
    let count = mask.iter().filter(|&&m| m).count();
    let mut sum = vec![0f64; h];
    for (row, &m) in x.chunks_exact(h).zip(mask) {
        if m {
            sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
    }
    if count > 0 {
        sum.iter_mut().for_each(|s| *s /= count as f64);
    }
    sum
}

/// A text model's graph at one width, interpreted in f64 from a read file.
pub struct Reference<'f> {
    file: &'f ModelFile,
    width: Width,
}

impl<'f> Reference<'f> {
    pub fn new(file: &'f ModelFile, w: Bits) -> Reference<'f> {
        let width = *file.graph().widths.iter().find(|x| x.w == w).unwrap();
        Reference { file, width }
    }

    fn f64s(t: &F32Tensor) -> Vec<f64> {
        t.data.iter().map(|&v| v as f64).collect()
    }

    /// The last node's output for `tokens`.
    pub fn run(&self, tokens: &Tokens, acts: Acts) -> Vec<f64> {
        self.run_nodes(tokens, acts, None).pop().unwrap()
    }

    /// Every node's output for `tokens`. With `forced`, each node reads the runtime's values of
    /// its inputs from that trace instead of the reference's own: what each node does alone.
    pub fn run_nodes(&self, tokens: &Tokens, acts: Acts, forced: Option<&anybit::model::Trace>) -> Vec<Vec<f64>> {
        let file = self.file;
        let w = self.width.w;
        let n = tokens.ids.len();
        let mask: Vec<bool> = tokens.mask.iter().map(|&m| m == 1).collect();
        let mut values: Vec<Vec<f64>> = vec![tokens.input().iter().map(|&v| v as f64).collect()];
        let runtime = |v: usize| -> Vec<f64> { forced.unwrap().output(v - 1).data().iter().map(|&x| x as f64).collect() };
        for (node, inputs) in file.graph().nodes.iter().zip(file.inputs()) {
            let name = node.name.as_str();
            let read: Vec<Vec<f64>> = inputs.iter().map(|&v| if forced.is_some() && v > 0 { runtime(v) } else { values[v].clone() }).collect();
            let x = |k: usize| &read[k];
            let out = match &node.op {
                Op::Embed { vocab, positions, hidden, rows, .. } => {
                    let table = file.table(name).unwrap();
                    let lo = &file.shared_tensor(name, LO).unwrap().data;
                    let step = &file.shared_tensor(name, STEP).unwrap().data;
                    // Bit position and bits of every row.
                    let mut at = Vec::new();
                    let mut pos = 0;
                    for r in rows {
                        for _ in 0..r.rows {
                            at.push((pos, r.bits.count()));
                            pos += hidden * r.bits.count();
                        }
                    }
                    let row = |i: usize| decode_row(table, at[i].0, *hidden, at[i].1, lo[i], step[i]);
                    let mut out = Vec::with_capacity(n * hidden);
                    for t in 0..n {
                        let (a, b, c) = (row(tokens.ids[t] as usize), row(vocab + t), row(vocab + positions + tokens.types[t] as usize));
                        out.extend((0..*hidden).map(|j| a[j] + b[j] + c[j]));
                    }
                    out
                }
                Op::LayerNorm { eps } => {
                    let scale = Self::f64s(file.tensor(name, w, SCALE).unwrap());
                    let bias = Self::f64s(file.tensor(name, w, BIAS).unwrap());
                    layer_norm(x(0), &scale, &bias, *eps as f64)
                }
                Op::Linear { weight, smooth } => {
                    let depth = weight.shape[1];
                    let scales = &file.tensor(name, w, WSCALE).unwrap().data;
                    let wv = dequantize(file.layer_codes(weight).unwrap(), depth, w, scales);
                    let bias = weight.bias.then(|| Self::f64s(file.shared_tensor(name, BIAS).unwrap()));
                    let smooth = smooth.then(|| file.shared_tensor(name, SMOOTH).unwrap().data.as_slice());
                    linear(x(0), &wv, bias.as_deref(), smooth, depth, acts, self.width.a)
                }
                Op::Attention { heads } => attention(x(0), x(1), x(2), &mask, *heads),
                Op::Add => {
                    let mut s = x(0).clone();
                    for k in 1..inputs.len() {
                        s.iter_mut().zip(x(k)).for_each(|(a, b)| *a += b);
                    }
                    s
                }
                Op::Gelu => x(0).iter().map(|&v| gelu(v)).collect(),
                Op::MeanPool => mean_pool(x(0), &mask),
                Op::ClsPool => {
                    let h = x(0).len() / n;
                    x(0)[..h].to_vec()
                }
                op => panic!("the text reference has no {op:?}"),
            };
            values.push(out);
        }
        values.remove(0);
        values
    }
}

/// `|got - want| <= rel * max(1, max |want|)` everywhere, with the worst element in the message.
pub fn assert_close(got: &[f32], want: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
    let (i, err) = got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).abs()).enumerate().fold((0, 0f64), |a, b| if b.1 > a.1 { b } else { a });
    assert!(
        got.iter().all(|g| g.is_finite()) && err <= rel * scale,
        "{what}: worst [{i}] got {}, want {} (error {err:.3e} > {rel:e} x {scale:.3})",
        got[i],
        want[i]
    );
}
