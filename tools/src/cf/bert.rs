//! The BERT encoder as the fine-tuner sees it: candle ops that each have a backward pass (candle
//! 0.11's fused LayerNorm and softmax have none, so they would cut the graph without an error and
//! leave every weight below them untrained), weights quantized the way the runtime will store
//! them, and one LayerNorm affine per width.
//!
//! Quantization matches `anybit import --no-smooth` exactly for the weights: each projection row's
//! 8-bit codes on the mid-rise grid of its largest magnitude, truncated to the width, times the
//! least-squares scale of that width (`anybit::quant`), with a straight-through gradient. The
//! embedding tables are frozen at the values the file will store (word rows at `embed_bits`,
//! position and type rows at 8 bits), so training sees what the runtime computes. Per-token 8-bit
//! activation quantization is left to the runtime: at 8 bits its error is far below the weights'.

use std::collections::HashMap;

use anybit::{quant, Bits};
use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use rayon::prelude::*;

use crate::import::{quantize_row, Weights};

#[derive(Clone, Debug)]
pub struct Config {
    pub hidden: usize,
    pub heads: usize,
    pub ff: usize,
    pub layers: usize,
    pub eps: f64,
    pub vocab: usize,
    pub positions: usize,
    pub types: usize,
}

/// Outputs: 2 sentence logits (read at `[CLS]`), then 5 tag logits per token.
pub const OUT: usize = anybit::format::CF_COLUMNS;

/// The head's tensor prefix in a fine-tuned folder.
pub const HEAD: &str = "cf_head";

/// A projection `[out, in]` with its bias; `fixed` ones always run at 8 bits (the head).
pub struct QLinear {
    pub name: String,
    /// The tensor prefix in a BERT folder ("encoder.layer.0.attention.self.query").
    pub src: String,
    pub w: Var,
    pub b: Var,
    pub fixed: bool,
}

fn quantized_rows(w: &[f32], depth: usize, bits: Bits) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    out.par_chunks_mut(depth).zip(w.par_chunks(depth)).for_each(|(o, row)| {
        let codes = quant::row_codes8(row);
        let s = quant::fit_scale(row, &codes, bits);
        for (x, &c) in o.iter_mut().zip(&codes) {
            *x = quant::weight_value(quant::derive_code(c, bits), bits, s);
        }
    });
    out
}

impl QLinear {
    /// The weight this width uses, with a straight-through gradient to the latent weight.
    fn weight(&self, bits: Bits) -> Result<Tensor> {
        let bits = if self.fixed { Bits::MAX } else { bits };
        let w = self.w.as_tensor();
        let (out, depth) = w.dims2()?;
        let q = quantized_rows(&crate::ops::data(w)?, depth, bits);
        let q = Tensor::from_vec(q, (out, depth), w.device())?;
        Ok(w.add(&(q - w)?.detach())?)
    }

    /// `x [.., in] -> [.., out]`.
    pub fn forward(&self, x: &Tensor, bits: Bits) -> Result<Tensor> {
        let w = self.weight(bits)?;
        let dims = x.dims().to_vec();
        let depth = dims[dims.len() - 1];
        let rows = x.elem_count() / depth;
        let y = x.reshape((rows, depth))?.matmul(&w.t()?)?.broadcast_add(self.b.as_tensor())?;
        let mut out_dims = dims;
        *out_dims.last_mut().unwrap() = w.dim(0)?;
        Ok(y.reshape(out_dims)?)
    }
}

/// A LayerNorm with one affine per width (index `bits - 1`).
pub struct WidthNorm {
    pub name: String,
    pub src: String,
    pub gamma: Vec<Var>,
    pub beta: Vec<Var>,
    pub eps: f64,
}

impl WidthNorm {
    pub fn forward(&self, x: &Tensor, bits: Bits) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        let i = bits.count() - 1;
        Ok(xn.broadcast_mul(self.gamma[i].as_tensor())?.broadcast_add(self.beta[i].as_tensor())?)
    }
}

pub struct Block {
    pub q: QLinear,
    pub k: QLinear,
    pub v: QLinear,
    pub o: QLinear,
    pub ln_attn: WidthNorm,
    pub up: QLinear,
    pub down: QLinear,
    pub ln_ffn: WidthNorm,
}

/// The frozen embedding tables as the file stores them, dequantized.
pub struct Embeddings {
    pub words: Vec<f32>,
    pub positions: Vec<f32>,
    pub types: Vec<f32>,
}

pub struct Encoder {
    pub cfg: Config,
    pub embed: Embeddings,
    pub ln_embed: WidthNorm,
    pub blocks: Vec<Block>,
    pub head: QLinear,
    pub device: Device,
}

/// A padded batch: `[B, T]` ids and types, mask 1 for real tokens.
pub struct Batch {
    pub b: usize,
    pub t: usize,
    pub ids: Vec<u32>,
    pub types: Vec<u32>,
    pub mask: Vec<f32>,
}

fn dequantized(table: &[f32], hidden: usize, rows: usize, bits: Bits) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * hidden);
    let mut codes = Vec::with_capacity(hidden);
    for row in table.chunks_exact(hidden).take(rows) {
        codes.clear();
        let (lo, step) = quantize_row(row, bits, &mut codes);
        out.extend(codes.iter().map(|&c| lo + step * c as f32));
    }
    out
}

impl Encoder {
    /// The encoder of a BERT folder's weights, with a fresh head (small random weights from
    /// `seed`) unless the weights carry `cf_head.*`, and per-width LayerNorms from the width
    /// tensors when present (a fine-tuned folder) else copies of the pretrained one.
    pub fn new(cfg: Config, w: &Weights, max_tokens: usize, embed_bits: Bits, seed: u64) -> Result<Encoder> {
        let device = Device::Cpu;
        let h = cfg.hidden;
        let var = |data: &[f32], shape: &[usize]| Var::from_tensor(&Tensor::from_slice(data, shape, &device)?).map_err(anyhow::Error::from);
        let lin = |name: &str, src: &str, out: usize, depth: usize, fixed: bool| -> Result<QLinear> {
            Ok(QLinear {
                name: name.into(),
                src: src.into(),
                w: var(w.get(&format!("{src}.weight"), &[out, depth])?, &[out, depth])?,
                b: var(w.get(&format!("{src}.bias"), &[out])?, &[out])?,
                fixed,
            })
        };
        let norm = |name: &str, src: &str| -> Result<WidthNorm> {
            let (mut gamma, mut beta) = (Vec::new(), Vec::new());
            for b in 1..=8u8 {
                let (g, be) = match (w.try_get(&format!("{src}.w{b}.weight"), &[h]), w.try_get(&format!("{src}.w{b}.bias"), &[h])) {
                    (Some(g), Some(be)) => (g, be),
                    _ => (w.get(&format!("{src}.weight"), &[h])?, w.get(&format!("{src}.bias"), &[h])?),
                };
                gamma.push(var(g, &[h])?);
                beta.push(var(be, &[h])?);
            }
            Ok(WidthNorm { name: name.into(), src: src.into(), gamma, beta, eps: cfg.eps })
        };
        let words = w.get("embeddings.word_embeddings.weight", &[cfg.vocab, h])?;
        let positions = w.get("embeddings.position_embeddings.weight", &[cfg.positions, h])?;
        let types = w.get("embeddings.token_type_embeddings.weight", &[cfg.types, h])?;
        ensure!(max_tokens <= cfg.positions, "max tokens {max_tokens} exceed the {} positions", cfg.positions);
        let embed = Embeddings {
            words: dequantized(words, h, cfg.vocab, embed_bits),
            positions: dequantized(positions, h, max_tokens, Bits::MAX),
            types: dequantized(types, h, cfg.types, Bits::MAX),
        };
        let ln_embed = norm("embed.ln", "embeddings.LayerNorm")?;
        let mut blocks = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let p = format!("encoder.layer.{l}");
            let n = |s: &str| format!("l{l}.{s}");
            blocks.push(Block {
                q: lin(&n("q"), &format!("{p}.attention.self.query"), h, h, false)?,
                k: lin(&n("k"), &format!("{p}.attention.self.key"), h, h, false)?,
                v: lin(&n("v"), &format!("{p}.attention.self.value"), h, h, false)?,
                o: lin(&n("attn.out"), &format!("{p}.attention.output.dense"), h, h, false)?,
                ln_attn: norm(&n("attn.ln"), &format!("{p}.attention.output.LayerNorm"))?,
                up: lin(&n("ffn.in"), &format!("{p}.intermediate.dense"), cfg.ff, h, false)?,
                down: lin(&n("ffn.out"), &format!("{p}.output.dense"), h, cfg.ff, false)?,
                ln_ffn: norm(&n("ffn.ln"), &format!("{p}.output.LayerNorm"))?,
            });
        }
        let head = match (w.try_get(&format!("{HEAD}.weight"), &[OUT, h]), w.try_get(&format!("{HEAD}.bias"), &[OUT])) {
            (Some(hw), Some(hb)) => QLinear { name: "head".into(), src: HEAD.into(), w: var(hw, &[OUT, h])?, b: var(hb, &[OUT])?, fixed: true },
            _ => {
                let mut rng = crate::rng::Rng::new(seed);
                let init: Vec<f32> = (0..OUT * h).map(|_| 0.02 * rng.normal() as f32).collect();
                QLinear { name: "head".into(), src: HEAD.into(), w: var(&init, &[OUT, h])?, b: var(&[0.0; OUT], &[OUT])?, fixed: true }
            }
        };
        Ok(Encoder { cfg, embed, ln_embed, blocks, head, device })
    }

    /// Summed embeddings `[B, T, H]` (a constant: the tables are frozen).
    fn embeddings(&self, batch: &Batch) -> Result<Tensor> {
        let h = self.cfg.hidden;
        let mut x = vec![0f32; batch.b * batch.t * h];
        x.par_chunks_mut(h).enumerate().for_each(|(i, out)| {
            let (id, ty, pos) = (batch.ids[i] as usize, batch.types[i] as usize, i % batch.t);
            let rows = [&self.embed.words[id * h..][..h], &self.embed.positions[pos * h..][..h], &self.embed.types[ty * h..][..h]];
            for r in rows {
                out.iter_mut().zip(r).for_each(|(o, v)| *o += v);
            }
        });
        Ok(Tensor::from_vec(x, (batch.b, batch.t, h), &self.device)?)
    }

    /// Logits `[B, T, 7]` at weight width `bits`.
    pub fn forward(&self, batch: &Batch, bits: Bits) -> Result<Tensor> {
        ensure!(batch.ids.iter().all(|&i| (i as usize) < self.cfg.vocab), "token id outside the vocabulary");
        ensure!(batch.types.iter().all(|&t| (t as usize) < self.cfg.types), "token type outside the table");
        ensure!(batch.t <= self.embed.positions.len() / self.cfg.hidden, "batch longer than the position table");
        let (b, t, h, heads) = (batch.b, batch.t, self.cfg.hidden, self.cfg.heads);
        let d = h / heads;
        let mut x = self.ln_embed.forward(&self.embeddings(batch)?, bits)?;
        // Padding keys get -1e4 before the softmax (their weight underflows to 0 in f32).
        let bias: Vec<f32> = batch.mask.iter().map(|&m| (1.0 - m) * -1e4).collect();
        let bias = Tensor::from_vec(bias, (b, 1, 1, t), &self.device)?;
        let scale = 1.0 / (d as f64).sqrt();
        for blk in &self.blocks {
            let split = |y: Tensor| -> Result<Tensor> { Ok(y.reshape((b, t, heads, d))?.transpose(1, 2)?.contiguous()?) };
            let q = split(blk.q.forward(&x, bits)?)?;
            let k = split(blk.k.forward(&x, bits)?)?;
            let v = split(blk.v.forward(&x, bits)?)?;
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&bias)?;
            let max = scores.max_keepdim(D::Minus1)?.detach();
            let e = scores.broadcast_sub(&max)?.exp()?;
            let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
            let ctx = p.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b, t, h))?;
            let a = blk.o.forward(&ctx, bits)?;
            x = blk.ln_attn.forward(&(a + &x)?, bits)?;
            let f = blk.down.forward(&blk.up.forward(&x, bits)?.gelu_erf()?, bits)?;
            x = blk.ln_ffn.forward(&(f + &x)?, bits)?;
        }
        self.head.forward(&x, bits)
    }

    pub fn linears(&self) -> Vec<&QLinear> {
        let mut out = Vec::new();
        for blk in &self.blocks {
            out.extend([&blk.q, &blk.k, &blk.v, &blk.o, &blk.up, &blk.down]);
        }
        out.push(&self.head);
        out
    }

    pub fn norms(&self) -> Vec<&WidthNorm> {
        let mut out = vec![&self.ln_embed];
        for blk in &self.blocks {
            out.extend([&blk.ln_attn, &blk.ln_ffn]);
        }
        out
    }

    /// Every trainable tensor by a stable name (for the optimizer and checkpoints).
    pub fn vars(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for l in self.linears() {
            out.push((format!("{}.weight", l.name), l.w.clone()));
            out.push((format!("{}.bias", l.name), l.b.clone()));
        }
        for n in self.norms() {
            for (i, (g, b)) in n.gamma.iter().zip(&n.beta).enumerate() {
                out.push((format!("{}.w{}.weight", n.name, i + 1), g.clone()));
                out.push((format!("{}.w{}.bias", n.name, i + 1), b.clone()));
            }
        }
        out
    }

    /// Loads values saved by [`Encoder::vars`] (a checkpoint).
    pub fn load_vars(&self, saved: &HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in self.vars() {
            let t = saved.get(&name).with_context(|| format!("the checkpoint lacks {name}"))?;
            ensure!(t.dims() == var.dims(), "checkpoint tensor {name} has shape {:?}, expected {:?}", t.dims(), var.dims());
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }
}
