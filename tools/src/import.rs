//! `anybit import`: a pretrained BERT-layout encoder (a Hugging Face folder: `config.json`,
//! `model.safetensors`, `vocab.txt`, and `tokenizer.json` / sentence-transformers settings where
//! present) turned into one `.anybit` file that serves every width 8..1 and carries its
//! vocabulary and tokenizer settings.
//!
//! What is quantized how (docs/TEXT.md):
//! - The six projections of every layer (Q, K, V, attention output, both feed-forward ones) are
//!   `linear` nodes in the bit planes: each row's 8-bit codes on the mid-rise grid of its largest
//!   magnitude, and for every width the least-squares scale of the row's truncated codes
//!   (`quant::fit_scale`). No retraining: this is the baseline a fine-tuned model improves on.
//! - The embedding tables (words, positions, token types) are one `embed` table outside the
//!   planes, each row as uniform codes over its own clipped range (the clip that minimises the
//!   row's squared error). Word rows take `embed_bits` (a third of the weights: the file-size
//!   lever); position and type rows 8 bits.
//! - The input of every projection is quantized per token at 8 bits. Hidden states have a few
//!   channels far larger than the rest, which would stretch every token's step; SmoothQuant's
//!   per-channel factors `s_j = max|x_j|^0.5 / max|w_j|^0.5` move that range into the weights
//!   (`x_j / s_j`, `w_ij * s_j`), with `max|x_j|` measured by running the unsmoothed file's
//!   float twin on random token sequences (the outlier channels belong to the model, not the text).
//! - LayerNorms and biases stay f32.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anybit::format::{self, names, EvalResult, F32Tensor, Graph, Node, Op, Precision, QuantWeight, RowBits, Task, Text, Width};
use anybit::text::TokenizerConfig;
use anybit::{quant, Bits};
use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

/// How the encoder's token vectors become the model output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Pooling {
    /// Mean over the attended tokens (sentence-transformers' default).
    Mean,
    /// The `[CLS]` token's vector.
    Cls,
}

#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub dir: PathBuf,
    pub name: Option<String>,
    /// Longest input in tokens (with `[CLS]`/`[SEP]`) [default: the folder's own setting].
    pub max_tokens: Option<usize>,
    pub embed_bits: Bits,
    pub pooling: Pooling,
    pub widths: Vec<Bits>,
    /// Smooth the projections' inputs (SmoothQuant, calibrated on random token sequences).
    pub smooth: bool,
    /// Stored in the graph as they are (a fine-tuner's task and its measured scores).
    pub task: Option<Task>,
    pub eval: Vec<EvalResult>,
}

/// What an import made, for the report.
pub struct Imported {
    pub bytes: Vec<u8>,
    pub graph: Graph,
    pub params: usize,
    pub max_tokens: usize,
    /// Bytes of the embedding table, and of one bit plane.
    pub table_bytes: usize,
    pub plane_bytes: usize,
}

#[derive(Deserialize)]
struct BertConfig {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    vocab_size: usize,
    layer_norm_eps: f32,
    #[serde(default = "gelu")]
    hidden_act: String,
}

fn gelu() -> String {
    "gelu".into()
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The weights of a safetensors file by name, as f32 (with or without the `bert.` prefix).
pub struct Weights {
    map: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Weights {
    pub fn load(path: &Path) -> Result<Weights> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
        let mut map = BTreeMap::new();
        for (name, view) in st.tensors() {
            let data: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                // Half-precision copies (what travels when a folder must be small) widen exactly.
                safetensors::Dtype::F16 | safetensors::Dtype::BF16 => {
                    use candle_core::safetensors::Load;
                    let t = view.load(&candle_core::Device::Cpu).map_err(|e| anyhow::anyhow!("{}: {name}: {e}", path.display()))?;
                    t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?
                }
                _ => continue, // e.g. the int64 `position_ids` buffer
            };
            map.insert(name.strip_prefix("bert.").unwrap_or(&name).to_string(), (view.shape().to_vec(), data));
        }
        Ok(Weights { map })
    }

    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        let Some((s, data)) = self.map.get(name) else { bail!("the weights have no tensor {name:?}") };
        ensure!(s == shape, "tensor {name:?} has shape {s:?}, expected {shape:?}");
        Ok(data)
    }

    /// A tensor that may be absent (a fine-tuned folder's extras); present with another shape is
    /// absent too, and `get` then says why.
    pub fn try_get(&self, name: &str, shape: &[usize]) -> Option<&[f32]> {
        self.map.get(name).filter(|(s, _)| s == shape).map(|(_, d)| d.as_slice())
    }

    /// Every tensor by name (shape, values).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &(Vec<usize>, Vec<f32>))> {
        self.map.iter()
    }
}

/// The tokenizer settings and vocabulary of the folder.
pub fn tokenizer(dir: &Path, max_tokens: usize) -> Result<(Vec<String>, TokenizerConfig)> {
    let vocab_path = dir.join("vocab.txt");
    let text = std::fs::read_to_string(&vocab_path).with_context(|| format!("reading {}", vocab_path.display()))?;
    // As Hugging Face reads it: one token per line, trailing whitespace trimmed.
    let vocab: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    let mut cfg = TokenizerConfig::bert_uncased(max_tokens);
    let tj = dir.join("tokenizer.json");
    if tj.exists() {
        let t = read_json(&tj)?;
        let norm = &t["normalizer"];
        ensure!(norm["type"] == "BertNormalizer", "{}: normalizer {} is not a BertNormalizer", tj.display(), norm["type"]);
        ensure!(t["pre_tokenizer"]["type"] == "BertPreTokenizer", "{}: pre-tokenizer {} is not BertPreTokenizer", tj.display(), t["pre_tokenizer"]["type"]);
        let model = &t["model"];
        ensure!(model["type"] == "WordPiece", "{}: model {} is not WordPiece", tj.display(), model["type"]);
        let flag = |v: &serde_json::Value, d: bool| v.as_bool().unwrap_or(d);
        cfg.lowercase = flag(&norm["lowercase"], true);
        cfg.strip_accents = flag(&norm["strip_accents"], cfg.lowercase);
        cfg.clean_text = flag(&norm["clean_text"], true);
        cfg.handle_chinese_chars = flag(&norm["handle_chinese_chars"], true);
        if let Some(u) = model["unk_token"].as_str() {
            cfg.unk_token = u.into();
        }
        if let Some(p) = model["continuing_subword_prefix"].as_str() {
            cfg.continuing_subword_prefix = p.into();
        }
        if let Some(m) = model["max_input_chars_per_word"].as_u64() {
            cfg.max_input_chars_per_word = m as usize;
        }
        // The vocabulary inside tokenizer.json is the one its ids come from: it must agree.
        if let Some(map) = model["vocab"].as_object() {
            for (tok, id) in map {
                let ok = id.as_u64().and_then(|i| vocab.get(i as usize)).is_some_and(|v| v == tok);
                ensure!(ok, "{} and vocab.txt disagree on token {tok:?}", tj.display());
            }
            ensure!(map.len() == vocab.len(), "{} has {} tokens, vocab.txt {}", tj.display(), map.len(), vocab.len());
        }
    } else {
        let tc = dir.join("tokenizer_config.json");
        if tc.exists() {
            let lower = read_json(&tc)?["do_lower_case"].as_bool().unwrap_or(true);
            cfg.lowercase = lower;
            cfg.strip_accents = lower;
        }
    }
    // Check the settings and vocabulary the way the runtime will.
    anybit::text::Tokenizer::new(vocab.clone(), cfg.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((vocab, cfg))
}

/// The folder's own longest input: sentence-transformers' `max_seq_length`, else the tokenizer's
/// truncation length, else the position table's size.
fn default_max_tokens(dir: &Path, positions: usize) -> Result<usize> {
    let st = dir.join("sentence_bert_config.json");
    if st.exists() {
        if let Some(n) = read_json(&st)?["max_seq_length"].as_u64() {
            return Ok(n as usize);
        }
    }
    let tj = dir.join("tokenizer.json");
    if tj.exists() {
        if let Some(n) = read_json(&tj)?["truncation"]["max_length"].as_u64() {
            return Ok(n as usize);
        }
    }
    Ok(positions)
}

/// One embedding row as `bits`-bit codes over a clipped range: returns (lo, step) and appends the
/// codes. The clip (a fraction of the row's range) minimises the squared error, as outliers would
/// otherwise stretch the step of every other value.
pub fn quantize_row(row: &[f32], bits: Bits, codes: &mut Vec<u8>) -> (f32, f32) {
    let top = bits.levels() as f32;
    let (mn, mx) = row.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let code = |v: f32, lo: f32, step: f32| if step > 0.0 { ((v - lo) / step).round().clamp(0.0, top) } else { 0.0 };
    let mut best = (f64::INFINITY, mn, 0.0);
    for k in 0..=10 {
        let r = 1.0 - 0.05 * k as f32;
        let (lo, hi) = (mn * r, mx * r);
        let step = (hi - lo) / top;
        let err: f64 = row.iter().map(|&v| ((lo + step * code(v, lo, step) - v) as f64).powi(2)).sum();
        if err < best.0 {
            best = (err, lo, step);
        }
    }
    let (_, lo, step) = best;
    codes.extend(row.iter().map(|&v| code(v, lo, step) as u8));
    (lo, step)
}

/// Codes packed least significant bit first, back to back (docs/FORMAT.md, `embed`).
fn pack_bits(codes: &[(u8, Bits)]) -> Vec<u8> {
    let total: usize = codes.iter().map(|(_, b)| b.count()).sum();
    let mut out = vec![0u8; total.div_ceil(8)];
    let mut pos = 0;
    for &(c, b) in codes {
        for i in 0..b.count() {
            if c >> i & 1 == 1 {
                out[(pos + i) / 8] |= 1 << ((pos + i) % 8);
            }
        }
        pos += b.count();
    }
    out
}

/// Builds the graph, codes, tensors and table while the layers are added.
struct Builder {
    widths: Vec<Bits>,
    smooth: BTreeMap<String, Vec<f32>>,
    nodes: Vec<Node>,
    codes: Vec<u8>,
    tensors: BTreeMap<String, F32Tensor>,
    params: usize,
}

fn tensor(data: Vec<f32>) -> F32Tensor {
    F32Tensor { shape: vec![data.len()], data }
}

impl Builder {
    fn node(&mut self, name: &str, inputs: &[&str], op: Op) -> String {
        self.nodes.push(Node { name: name.into(), inputs: inputs.iter().map(|s| s.to_string()).collect(), op });
        name.into()
    }

    /// A `linear` node from a `[out, in]` weight and its bias, its input smoothed by
    /// `self.smooth[name]` if present.
    fn linear(&mut self, name: &str, input: &str, w: &[f32], bias: &[f32], out: usize, depth: usize, precision: Precision) -> String {
        let smooth = self.smooth.get(name).cloned();
        let scaled: Vec<f32>;
        let w = match &smooth {
            Some(s) => {
                scaled = w.chunks_exact(depth).flat_map(|row| row.iter().zip(s).map(|(v, f)| v * f)).collect();
                &scaled[..]
            }
            None => w,
        };
        self.codes.resize(self.codes.len().div_ceil(8) * 8, 0);
        let offset = self.codes.len();
        let mut scales: Vec<Vec<f32>> = vec![Vec::with_capacity(out); self.widths.len()];
        for row in w.chunks_exact(depth) {
            let start = self.codes.len();
            self.codes.extend(quant::row_codes8(row));
            for (s, &b) in scales.iter_mut().zip(&self.widths) {
                // A fixed-8 layer runs its 8-bit codes at every width.
                let b = if precision == Precision::Fixed8 { Bits::MAX } else { b };
                s.push(quant::fit_scale(row, &self.codes[start..], b));
            }
        }
        for (s, &b) in scales.into_iter().zip(&self.widths) {
            self.tensors.insert(names::width_tensor(name, b, names::WSCALE), tensor(s));
        }
        self.tensors.insert(names::shared_tensor(name, names::BIAS), tensor(bias.to_vec()));
        self.params += w.len() + bias.len();
        let weight = QuantWeight { shape: vec![out, depth], code_offset: offset, precision, bias: true };
        if let Some(s) = smooth {
            self.tensors.insert(names::shared_tensor(name, names::SMOOTH), tensor(s));
        }
        self.node(name, &[input], Op::Linear { weight, smooth: self.smooth.contains_key(name) })
    }

    /// A `layer_norm` node from the folder's `{src}.weight`/`.bias`, or per width from
    /// `{src}.w{b}.weight`/`.bias` where a fine-tuner stored them.
    fn layer_norm(&mut self, name: &str, input: &str, w: &Weights, src: &str, h: usize, eps: f32) -> Result<String> {
        for &b in &self.widths {
            let (gamma, beta) = match (w.try_get(&format!("{src}.w{b}.weight"), &[h]), w.try_get(&format!("{src}.w{b}.bias"), &[h])) {
                (Some(g), Some(be)) => (g, be),
                _ => (w.get(&format!("{src}.weight"), &[h])?, w.get(&format!("{src}.bias"), &[h])?),
            };
            self.tensors.insert(names::width_tensor(name, b, names::SCALE), tensor(gamma.to_vec()));
            self.tensors.insert(names::width_tensor(name, b, names::BIAS), tensor(beta.to_vec()));
        }
        self.params += 2 * h;
        Ok(self.node(name, &[input], Op::LayerNorm { eps }))
    }
}

pub fn import(opts: &ImportOptions) -> Result<Imported> {
    ensure!(opts.widths.contains(&Bits::MAX), "the widths must include 8 (every width derives from the 8-bit codes)");
    let plain = build(opts, BTreeMap::new())?;
    if !opts.smooth {
        return Ok(plain);
    }
    let smooth = smoothing(&plain)?;
    build(opts, smooth)
}

/// Sequences the smoothing is calibrated on: `[CLS]`, random word pieces, `[SEP]`, of several
/// lengths, from a fixed seed.
fn calibration_inputs(text: &Text, max_tokens: usize) -> Vec<Vec<f32>> {
    let id = |t: &str| text.vocab.iter().position(|v| v == t).unwrap_or(0) as f32;
    let (cls, sep) = (id(&text.tokenizer.cls_token), id(&text.tokenizer.sep_token));
    // Skip the reserved rows ([PAD], [unused..], specials) at the start of BERT vocabularies.
    let first = text.vocab.iter().position(|v| v.chars().all(char::is_alphabetic)).unwrap_or(0);
    let mut rng = crate::rng::Rng::new(0x5eed);
    [8usize, 16, 24, 32, 48, 64, 96, 128]
        .iter()
        .map(|&n| n.min(max_tokens))
        .map(|n| {
            let mut ids = vec![cls];
            ids.extend((2..n).map(|_| (first + rng.below(text.vocab.len() - first)) as f32));
            ids.push(sep);
            ids.iter().flat_map(|&i| [i, 0.0, 1.0]).collect()
        })
        .collect()
}

/// SmoothQuant factors for every `linear` node of an unsmoothed import, from the largest
/// magnitude each input channel reaches in the float twin at 8 bits.
fn smoothing(plain: &Imported) -> Result<BTreeMap<String, Vec<f32>>> {
    let mut model = anybit::Model::from_bytes(&plain.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = format::read(&plain.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = plain.graph.text.as_ref().expect("an import is a text model");
    let index = |name: &str| plain.graph.nodes.iter().position(|n| n.name == name);
    let mut xmax: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for input in calibration_inputs(text, plain.max_tokens) {
        let trace = model.trace(&input, true).map_err(|e| anyhow::anyhow!("{e}"))?;
        for node in &plain.graph.nodes {
            let Op::Linear { weight, .. } = &node.op else { continue };
            let Some(src) = index(&node.inputs[0]) else { continue };
            let depth = weight.shape[1];
            let m = xmax.entry(node.name.clone()).or_insert_with(|| vec![0.0; depth]);
            for tok in trace.output(src).data().chunks_exact(depth) {
                m.iter_mut().zip(tok).for_each(|(a, &v)| *a = a.max(v.abs()));
            }
        }
    }
    let mut out = BTreeMap::new();
    for node in &plain.graph.nodes {
        let Op::Linear { weight, .. } = &node.op else { continue };
        let Some(xm) = xmax.get(&node.name) else { continue };
        let codes = file.layer_codes(weight).map_err(|e| anyhow::anyhow!("{e}"))?;
        // The weight magnitudes of each input column, from the 8-bit codes and row scales.
        let scales = &file.tensor(&node.name, Bits::MAX, names::WSCALE).map_err(|e| anyhow::anyhow!("{e}"))?.data;
        let depth = weight.shape[1];
        let mut wmax = vec![0f32; depth];
        for (row, &e) in codes.chunks_exact(depth).zip(scales) {
            for (m, &c) in wmax.iter_mut().zip(row) {
                *m = m.max(quant::weight_value(c, Bits::MAX, e).abs());
            }
        }
        // SmoothQuant's alpha 0.5 (balancing the two ranges) measured best of 0.3, 0.5 and 0.7.
        let s = xm.iter().zip(&wmax).map(|(&x, &w)| if x > 0.0 && w > 0.0 { (x / w).sqrt() } else { 1.0 }).collect();
        out.insert(node.name.clone(), s);
    }
    Ok(out)
}

fn build(opts: &ImportOptions, smooth: BTreeMap<String, Vec<f32>>) -> Result<Imported> {
    let dir = &opts.dir;
    let cfg: BertConfig = serde_json::from_value(read_json(&dir.join("config.json"))?)
        .with_context(|| format!("{}: not a BERT config", dir.join("config.json").display()))?;
    ensure!(cfg.hidden_act == "gelu", "activation {:?} is not supported (only BERT's erf gelu)", cfg.hidden_act);
    let (h, heads, ff) = (cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size);
    ensure!(heads > 0 && h % heads == 0, "hidden size {h} is not a multiple of {heads} heads");
    let max_tokens = match opts.max_tokens {
        Some(n) => n,
        None => default_max_tokens(dir, cfg.max_position_embeddings)?,
    };
    ensure!(
        (2..=cfg.max_position_embeddings).contains(&max_tokens),
        "max tokens {max_tokens} must be in 2..={} (the position table)",
        cfg.max_position_embeddings
    );
    let (vocab, tok) = tokenizer(dir, max_tokens)?;
    ensure!(vocab.len() == cfg.vocab_size, "vocab.txt has {} tokens, config.json says {}", vocab.len(), cfg.vocab_size);
    let w = Weights::load(&dir.join("model.safetensors"))?;

    let mut b = Builder { widths: opts.widths.clone(), smooth, nodes: Vec::new(), codes: Vec::new(), tensors: BTreeMap::new(), params: 0 };

    // Embeddings: words, then the positions the model can reach, then types, as one table.
    let words = w.get("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
    let positions = w.get("embeddings.position_embeddings.weight", &[cfg.max_position_embeddings, h])?;
    let types = w.get("embeddings.token_type_embeddings.weight", &[cfg.type_vocab_size, h])?;
    let mut codes = Vec::new();
    let (mut lo, mut step) = (Vec::new(), Vec::new());
    let mut row_codes: Vec<(u8, Bits)> = Vec::new();
    let eight = Bits::MAX;
    let tables: [(&[f32], usize, Bits); 3] =
        [(words, cfg.vocab_size, opts.embed_bits), (&positions[..max_tokens * h], max_tokens, eight), (types, cfg.type_vocab_size, eight)];
    let mut runs = Vec::new();
    for (table, rows, bits) in tables {
        for row in table.chunks_exact(h).take(rows) {
            codes.clear();
            let (l, s) = quantize_row(row, bits, &mut codes);
            lo.push(l);
            step.push(s);
            row_codes.extend(codes.iter().map(|&c| (c, bits)));
        }
        runs.push(RowBits { rows, bits });
    }
    b.params += words.len() + max_tokens * h + types.len();
    let table = pack_bits(&row_codes);
    let table_bytes = table.len();
    b.tensors.insert(names::shared_tensor("embed", names::LO), tensor(lo));
    b.tensors.insert(names::shared_tensor("embed", names::STEP), tensor(step));
    let op = Op::Embed { vocab: cfg.vocab_size, positions: max_tokens, types: cfg.type_vocab_size, hidden: h, rows: runs };
    let mut x = b.node("embed", &[names::INPUT], op);
    x = b.layer_norm("embed.ln", &x, &w, "embeddings.LayerNorm", h, cfg.layer_norm_eps)?;

    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        let lin = |b: &mut Builder, name: &str, input: &str, src: &str, out: usize, depth: usize| -> Result<String> {
            let wt = w.get(&format!("{p}.{src}.weight"), &[out, depth])?;
            let bias = w.get(&format!("{p}.{src}.bias"), &[out])?;
            Ok(b.linear(&format!("l{l}.{name}"), input, wt, bias, out, depth, Precision::Model))
        };
        let q = lin(&mut b, "q", &x, "attention.self.query", h, h)?;
        let k = lin(&mut b, "k", &x, "attention.self.key", h, h)?;
        let v = lin(&mut b, "v", &x, "attention.self.value", h, h)?;
        let att = b.node(&format!("l{l}.attn"), &[&q, &k, &v, names::INPUT], Op::Attention { heads });
        let o = lin(&mut b, "attn.out", &att, "attention.output.dense", h, h)?;
        let add = b.node(&format!("l{l}.attn.add"), &[&o, &x], Op::Add);
        let mid = b.layer_norm(&format!("l{l}.attn.ln"), &add, &w, &format!("{p}.attention.output.LayerNorm"), h, cfg.layer_norm_eps)?;
        let up = lin(&mut b, "ffn.in", &mid, "intermediate.dense", ff, h)?;
        let act = b.node(&format!("l{l}.ffn.gelu"), &[&up], Op::Gelu);
        let down = lin(&mut b, "ffn.out", &act, "output.dense", h, ff)?;
        let add = b.node(&format!("l{l}.ffn.add"), &[&down, &mid], Op::Add);
        x = b.layer_norm(&format!("l{l}.ffn.ln"), &add, &w, &format!("{p}.output.LayerNorm"), h, cfg.layer_norm_eps)?;
    }
    // A fine-tuned counterfactual folder carries its head: sentence and tag logits per token,
    // at 8 bits whatever the width (the head is small and every width reads it).
    let out = format::CF_COLUMNS;
    match (w.try_get("cf_head.weight", &[out, h]), w.try_get("cf_head.bias", &[out])) {
        (Some(hw), Some(hb)) => {
            ensure!(opts.task.is_some(), "the folder carries a counterfactual head (cf_head.*) but no task was given");
            b.linear("head", &x, hw, hb, out, h, Precision::Fixed8);
        }
        _ => {
            ensure!(opts.task.is_none(), "a task needs a head: the folder has no cf_head.weight [{out}, {h}]");
            match opts.pooling {
                Pooling::Mean => b.node("pool", &[&x, names::INPUT], Op::MeanPool),
                Pooling::Cls => b.node("pool", &[&x], Op::ClsPool),
            };
        }
    }

    let name = opts.name.clone().unwrap_or_else(|| {
        dir.file_name().map_or_else(|| "encoder".into(), |n| n.to_string_lossy().into_owned())
    });
    let graph = Graph {
        format: format::FORMAT_NAME.into(),
        version: format::FORMAT_VERSION,
        name,
        input_shape: vec![max_tokens, 3],
        text: Some(Text { vocab, tokenizer: tok }),
        labels: None,
        widths: opts.widths.iter().map(|&w| Width { w, a: Bits::MAX }).collect(),
        nodes: b.nodes,
        task: opts.task.clone(),
        eval: opts.eval.clone(),
        sha256: None,
    };
    let plane_bytes = b.codes.len().div_ceil(8);
    let tables = BTreeMap::from([("embed".to_string(), table)]);
    let bytes = format::write_with_tables(&graph, &b.codes, &b.tensors, &tables).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Imported { bytes, graph, params: b.params, max_tokens, table_bytes, plane_bytes })
}
