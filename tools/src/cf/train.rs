//! `anybit cf-train`: fine-tunes a BERT folder (MiniLM-L6) for both subtasks at once, one shared
//! encoder and one head (sentence logits at `[CLS]`, BIO tags per token), and writes one
//! `.anybit` file that serves every width.
//!
//! Joint training: every step runs the widest width (8) on the labels and one lower width on the
//! labels mixed with the 8-bit pass's detached softmax (distillation), one optimizer step for the
//! sum. The lower width is 2 a third of the time (the narrowest width drifts furthest from the
//! 8-bit weights, so it needs the most steps), else one of 3..=7; two passes per step rather
//! than one per width is what lets a MiniLM fine-tune fit this project's CPU budget. Each width has its own LayerNorm affines (the per-width normalisation of the
//! image models); width 1 is not trained and borrows width 2's. `--dedicated` trains 8 bits only.
//!
//! Runs are checkpointed (`--max-minutes` stops cleanly, a second call resumes from the same
//! step with the same batch order) and the final file's eval table comes from the runtime itself
//! (`cf::eval`), with the decision threshold picked per width on the dev split.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anybit::format::{EvalResult, Task};
use anybit::text::Tokenizer;
use anybit::Bits;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

use super::bert::{Batch, Config, Encoder, HEAD, OUT};
use super::data::{self, CharSpan, Sentence1, Sentence2, Splits};
use super::eval::{self, ThresholdSource, WidthScores};
use super::metrics;
use crate::adam::Adam;
use crate::import::{self, ImportOptions, Pooling, Weights};
use crate::rng::Rng;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CfConfig {
    /// The pretrained BERT folder.
    pub model: PathBuf,
    /// Folder with subtask1_train.csv and subtask2_train.csv.
    pub data: PathBuf,
    /// Joint widths (sandwich) or 8 bits only.
    pub joint: bool,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub head_lr: f32,
    pub weight_decay: f32,
    /// Share of the steps with a linear warm-up (then linear decay to 0).
    pub warmup: f32,
    /// Weight of the 8-bit pass's softmax in the narrower widths' targets.
    pub distill: f32,
    pub seed: u64,
    pub max_tokens: usize,
    pub embed_bits: Bits,
}

/// The state file's entry holding (step, total steps).
const STEP_KEY: &str = "meta.step";

/// Tag ids as the head's tag columns: O, B-Ant, I-Ant, B-Con, I-Con.
const O: u8 = 0;

/// One training sentence: its token ids and what it teaches.
#[derive(Clone)]
pub enum Target {
    Sentence(bool),
    Tags(Vec<u8>),
}

#[derive(Clone)]
pub struct Example {
    pub ids: Vec<u32>,
    pub target: Target,
}

/// BIO tags of the tokens (half-open char offsets, `(0, 0)` for specials) under the spans: a
/// token is in a span when it shares a character with it.
pub fn bio_tags(offsets: &[(usize, usize)], ant: CharSpan, con: Option<CharSpan>) -> Vec<u8> {
    let inside = |(s, e): (usize, usize), span: CharSpan| e > s && s <= span.end && e > span.start;
    let mut tags = vec![O; offsets.len()];
    let (mut seen_ant, mut seen_con) = (false, false);
    for (i, &off) in offsets.iter().enumerate() {
        if inside(off, ant) {
            tags[i] = if seen_ant { 2 } else { 1 };
            seen_ant = true;
        } else if con.is_some_and(|c| inside(off, c)) {
            tags[i] = if seen_con { 4 } else { 3 };
            seen_con = true;
        }
    }
    tags
}

pub fn examples(tok: &Tokenizer, max_tokens: usize, s1: &[Sentence1], s2: &[Sentence2]) -> Vec<Example> {
    let mut out = Vec::with_capacity(s1.len() + s2.len());
    for s in s1 {
        let e = tok.encode_with_max(&s.text, max_tokens);
        out.push(Example { ids: e.ids, target: Target::Sentence(s.label) });
    }
    for s in s2 {
        let e = tok.encode_with_max(&s.text, max_tokens);
        let tags = bio_tags(&e.offsets, s.antecedent, s.consequent);
        out.push(Example { ids: e.ids, target: Target::Tags(tags) });
    }
    out
}

/// Batches of similar length (less padding): shuffle, sort within windows of 50 batches, shuffle
/// the batches. Deterministic in (seed, epoch) so that a resumed run sees the same order.
pub fn epoch_batches(n_examples: usize, lens: &[usize], batch: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut rng = Rng::new(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut idx: Vec<usize> = (0..n_examples).collect();
    rng.shuffle(&mut idx);
    let mut batches = Vec::new();
    for window in idx.chunks(batch * 50) {
        let mut w = window.to_vec();
        w.sort_by_key(|&i| lens[i]);
        batches.extend(w.chunks(batch).map(|c| c.to_vec()));
    }
    rng.shuffle(&mut batches);
    batches
}

fn pad_batch(ex: &[&Example]) -> Batch {
    let t = ex.iter().map(|e| e.ids.len()).max().unwrap_or(1);
    let b = ex.len();
    let (mut ids, mut mask) = (vec![0u32; b * t], vec![0f32; b * t]);
    for (r, e) in ex.iter().enumerate() {
        ids[r * t..r * t + e.ids.len()].copy_from_slice(&e.ids);
        mask[r * t..r * t + e.ids.len()].iter_mut().for_each(|m| *m = 1.0);
    }
    Batch { b, t, ids, types: vec![0; b * t], mask }
}

/// `x - logsumexp(x)` over the last axis, from ops that all have a backward pass.
fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

/// One-hot targets of a padded batch: sentence `[B, 2]` (zero rows for tag examples) and tags
/// `[B, T, 5]` (zero rows for padding and sentence examples), with their row counts.
fn targets(ex: &[&Example], t: usize) -> (Vec<f32>, usize, Vec<f32>, usize) {
    let b = ex.len();
    let (mut sent, mut tags) = (vec![0f32; b * 2], vec![0f32; b * t * 5]);
    let (mut n_sent, mut n_tags) = (0, 0);
    for (r, e) in ex.iter().enumerate() {
        match &e.target {
            Target::Sentence(label) => {
                sent[r * 2 + *label as usize] = 1.0;
                n_sent += 1;
            }
            Target::Tags(tg) => {
                for (i, &g) in tg.iter().enumerate() {
                    tags[(r * t + i) * 5 + g as usize] = 1.0;
                }
                n_tags += tg.len();
            }
        }
    }
    (sent, n_sent, tags, n_tags)
}

/// The two heads' views of logits `[B, T, 7]`: sentence `[B, 2]` at `[CLS]`, tags `[B, T, 5]`.
fn heads(logits: &Tensor) -> Result<(Tensor, Tensor)> {
    let sent = logits.narrow(1, 0, 1)?.narrow(2, 0, 2)?.squeeze(1)?;
    let tags = logits.narrow(2, 2, OUT - 2)?;
    Ok((sent, tags))
}

/// Cross-entropy against soft targets (rows of zeros count nothing), summed over rows / `n`.
fn soft_ce(logits: &Tensor, target: &Tensor, n: usize) -> Result<Tensor> {
    if n == 0 {
        return Ok(Tensor::zeros((), candle_core::DType::F32, logits.device())?);
    }
    Ok(((log_softmax(logits)? * target)?.sum_all()? * (-1.0 / n as f64))?)
}

pub struct Trainer {
    pub cfg: CfConfig,
    pub enc: Encoder,
    adam: Adam,
    adam_head: Adam,
    pub step: usize,
    /// Steps of the whole run (the schedule decays to 0 there): `epochs` worth, or fewer when a
    /// time budget says so.
    pub total_steps: usize,
    train: Vec<Example>,
    lens: Vec<usize>,
    pub splits: Splits,
    pub tokenizer: Tokenizer,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    config: CfConfig,
    step: usize,
    total_steps: usize,
    wall_s: f64,
}

fn bert_config(dir: &Path) -> Result<Config> {
    let path = dir.join("config.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?)?;
    let n = |k: &str| v[k].as_u64().map(|x| x as usize).with_context(|| format!("{}: no {k}", path.display()));
    Ok(Config {
        hidden: n("hidden_size")?,
        heads: n("num_attention_heads")?,
        ff: n("intermediate_size")?,
        layers: n("num_hidden_layers")?,
        eps: v["layer_norm_eps"].as_f64().unwrap_or(1e-12),
        vocab: n("vocab_size")?,
        positions: n("max_position_embeddings")?,
        types: n("type_vocab_size")?,
    })
}

pub fn load_splits(data_dir: &Path) -> Result<Splits> {
    let s1 = data::read_subtask1(&data_dir.join("subtask1_train.csv"))?;
    let s2 = data::read_subtask2(&data_dir.join("subtask2_train.csv"))?;
    Ok(data::splits(&s1, &s2))
}

impl Trainer {
    pub fn new(cfg: CfConfig) -> Result<Trainer> {
        let bert = bert_config(&cfg.model)?;
        let weights = Weights::load(&cfg.model.join("model.safetensors"))?;
        let enc = Encoder::new(bert, &weights, cfg.max_tokens, cfg.embed_bits, cfg.seed)?;
        let (vocab, tcfg) = import::tokenizer(&cfg.model, cfg.max_tokens)?;
        let tokenizer = Tokenizer::new(vocab, tcfg).map_err(|e| anyhow::anyhow!("{e}"))?;
        let splits = load_splits(&cfg.data)?;
        let train = examples(&tokenizer, cfg.max_tokens, &splits.train1, &splits.train2);
        let lens = train.iter().map(|e| e.ids.len()).collect();
        let (head, body): (Vec<_>, Vec<_>) = enc.vars().into_iter().partition(|(n, _)| n.starts_with("head."));
        let adam = Adam::new(body, cfg.weight_decay, None);
        let adam_head = Adam::new(head, 0.0, None);
        let total_steps = train.len().div_ceil(cfg.batch) * cfg.epochs;
        Ok(Trainer { cfg, enc, adam, adam_head, step: 0, total_steps, train, lens, splits, tokenizer })
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.cfg.batch)
    }

    fn lr_factor(&self) -> f32 {
        let total = self.total_steps.max(1) as f32;
        let warm = (self.cfg.warmup * total).max(1.0);
        // Step k (from 0) warms up as (k + 1) / warm and decays as (total - k) / (total - warm),
        // so the last step still learns.
        let k = self.step as f32;
        if k + 1.0 < warm { (k + 1.0) / warm } else { ((total - k) / (total - warm).max(1.0)).clamp(0.0, 1.0) }
    }

    /// The widths one step trains: 8 alone, or 8 and one lower width.
    fn step_widths(&self) -> Vec<Bits> {
        let b = |x: u8| Bits::new(x).expect("1..=8");
        if !self.cfg.joint {
            return vec![Bits::MAX];
        }
        let mut rng = Rng::new(self.cfg.seed ^ 0xA5A5 ^ (self.step as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let low = if rng.below(3) == 0 { 2 } else { 3 + rng.below(5) as u8 };
        vec![Bits::MAX, b(low)]
    }

    /// One optimizer step on `batch` (indices into the training set); returns the 8-bit loss.
    pub fn train_step(&mut self, batch: &[usize]) -> Result<f32> {
        let ex: Vec<&Example> = batch.iter().map(|&i| &self.train[i]).collect();
        let pb = pad_batch(&ex);
        let (sent, n_sent, tags, n_tags) = targets(&ex, pb.t);
        let dev = &self.enc.device;
        let sent = Tensor::from_vec(sent, (pb.b, 2), dev)?;
        let tags = Tensor::from_vec(tags, (pb.b, pb.t, OUT - 2), dev)?;
        // Rows that count, to mask the teacher's softmax like the one-hot targets.
        let sent_rows = sent.sum_keepdim(D::Minus1)?;
        let tag_rows = tags.sum_keepdim(D::Minus1)?;
        let mut total: Option<Tensor> = None;
        let mut teacher: Option<(Tensor, Tensor)> = None;
        let mut top_loss = 0.0;
        let profile = std::env::var_os("ANYBIT_CF_PROFILE").is_some();
        let t0 = Instant::now();
        for bits in self.step_widths() {
            let (ls, lt) = heads(&self.enc.forward(&pb, bits)?)?;
            if profile {
                eprintln!("  forward {bits} bits [{}x{}]: {:.0} ms", pb.b, pb.t, t0.elapsed().as_secs_f64() * 1e3);
            }
            let (ts, tt) = match &teacher {
                None => (sent.clone(), tags.clone()),
                Some((ps, pt)) => {
                    let a = self.cfg.distill as f64;
                    (((&sent * (1.0 - a))? + (ps.broadcast_mul(&sent_rows)? * a)?)?, ((&tags * (1.0 - a))? + (pt.broadcast_mul(&tag_rows)? * a)?)?)
                }
            };
            let loss = (soft_ce(&ls, &ts, n_sent)? + soft_ce(&lt, &tt, n_tags)?)?;
            if teacher.is_none() {
                top_loss = loss.to_scalar::<f32>()?;
                teacher = Some((log_softmax(&ls)?.exp()?.detach(), log_softmax(&lt)?.exp()?.detach()));
            }
            total = Some(match total {
                None => loss,
                Some(t) => (t + loss)?,
            });
        }
        let grads = total.expect("at least one width").backward()?;
        if profile {
            eprintln!("  backward: {:.0} ms", t0.elapsed().as_secs_f64() * 1e3);
        }
        let f = self.lr_factor();
        self.adam.step(&grads, self.cfg.lr * f)?;
        self.adam_head.step(&grads, self.cfg.head_lr * f)?;
        if profile {
            eprintln!("  optimizer: {:.0} ms", t0.elapsed().as_secs_f64() * 1e3);
        }
        self.step += 1;
        Ok(top_loss)
    }

    pub fn save(&self, dir: &Path, wall_s: f64) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut st: HashMap<String, Tensor> = self.enc.vars().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect();
        self.adam.state("adam", &mut st)?;
        self.adam_head.state("adam_head", &mut st)?;
        // The step lives in the state file too: it and the weights are renamed into place at
        // once, so a run killed between the two renames resumes from the state's own step.
        let dev = &self.enc.device;
        st.insert(STEP_KEY.into(), Tensor::new(&[self.step as i64, self.total_steps as i64], dev)?);
        let tmp = dir.join("state.safetensors.tmp");
        candle_core::safetensors::save(&st, &tmp)?;
        std::fs::rename(&tmp, dir.join("state.safetensors"))?;
        let meta = Meta { config: self.cfg.clone(), step: self.step, total_steps: self.total_steps, wall_s };
        // Renamed into place like the state, so that neither is ever half written.
        let tmp = dir.join("meta.json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&meta)?)?;
        std::fs::rename(&tmp, dir.join("meta.json"))?;
        Ok(())
    }

    /// Restores a checkpoint of the same configuration; returns the wall time spent so far.
    pub fn resume(&mut self, dir: &Path) -> Result<f64> {
        let meta: Meta = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json"))?)?;
        if meta.config != self.cfg {
            bail!("{} was made with another configuration:\n{:#?}\nthis run:\n{:#?}", dir.display(), meta.config, self.cfg);
        }
        let st = candle_core::safetensors::load(dir.join("state.safetensors"), &self.enc.device)?;
        self.enc.load_vars(&st)?;
        // Checkpoints before the step was kept in the state file have it in meta.json only.
        let (step, total) = match st.get(STEP_KEY) {
            Some(t) => {
                let v = t.to_vec1::<i64>()?;
                ensure!(v.len() == 2 && v[0] >= 0 && v[1] >= v[0], "{}: a bad {STEP_KEY} entry", dir.display());
                (v[0] as usize, v[1] as usize)
            }
            None => (meta.step, meta.total_steps),
        };
        self.adam.load_state("adam", step as u64, &st)?;
        self.adam_head.load_state("adam_head", step as u64, &st)?;
        self.step = step;
        self.total_steps = total;
        Ok(meta.wall_s)
    }

    /// Logits rows `[n, 7]` of each text at `bits` (the trainer's own view, for its dev figures).
    pub fn outputs(&self, ids: &[Vec<u32>], bits: Bits) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(64) {
            let ex: Vec<Example> = chunk.iter().map(|&i| Example { ids: ids[i].clone(), target: Target::Sentence(false) }).collect();
            let refs: Vec<&Example> = ex.iter().collect();
            let pb = pad_batch(&refs);
            let logits = crate::ops::data(&self.enc.forward(&pb, bits)?.detach())?;
            for (r, &i) in chunk.iter().enumerate() {
                let n = ids[i].len();
                out[i] = logits[r * pb.t * OUT..(r * pb.t + n) * OUT].to_vec();
            }
        }
        Ok(out)
    }

    /// Dev scores at `bits` as the trainer computes them (candle, fake quantization), with the
    /// F1-best threshold: subtask-1 F1 and threshold, subtask-2 scores.
    pub fn dev_scores(&self, bits: Bits) -> Result<(f64, f32, metrics::SpanScores)> {
        let enc1: Vec<_> = self.splits.dev1.iter().map(|s| self.tokenizer.encode_with_max(&s.text, self.cfg.max_tokens)).collect();
        let ids1: Vec<Vec<u32>> = enc1.iter().map(|e| e.ids.clone()).collect();
        let probs: Vec<f32> = self
            .outputs(&ids1, bits)?
            .iter()
            .map(|o| anybit::text::spans::sentence_probability(o).map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<Result<_>>()?;
        let gold: Vec<bool> = self.splits.dev1.iter().map(|s| s.label).collect();
        let (threshold, f1) = metrics::best_threshold(&probs, &gold);
        let enc2: Vec<_> = self.splits.dev2.iter().map(|s| self.tokenizer.encode_with_max(&s.text, self.cfg.max_tokens)).collect();
        let ids2: Vec<Vec<u32>> = enc2.iter().map(|e| e.ids.clone()).collect();
        let outs2 = self.outputs(&ids2, bits)?;
        let mut triples = Vec::new();
        for ((s, e), o) in self.splits.dev2.iter().zip(&enc2).zip(&outs2) {
            let d = anybit::text::spans::detect_output(&s.text, o, &e.offsets, 0.5).map_err(|e| anyhow::anyhow!("{e}"))?;
            let span = |x: &Option<anybit::text::spans::Span>| x.as_ref().map(|x| CharSpan { start: x.start, end: x.end });
            let gold = metrics::Quad::from_spans(Some(s.antecedent), s.consequent);
            triples.push((s.text.as_str(), gold, metrics::Quad::from_spans(span(&d.antecedent), span(&d.consequent))));
        }
        Ok((f1, threshold, metrics::subtask2(triples)))
    }

    /// A BERT folder holding the fine-tuned weights (HF names, per-width LayerNorms as
    /// `{name}.w{b}.weight`, the head as `cf_head.*`) beside the source's tokenizer files: what
    /// `anybit import` turns into the file.
    pub fn write_folder(&self, out: &Path) -> Result<()> {
        std::fs::create_dir_all(out)?;
        for f in ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentence_bert_config.json"] {
            let src = self.cfg.model.join(f);
            if src.exists() {
                std::fs::copy(&src, out.join(f)).with_context(|| format!("copying {}", src.display()))?;
            }
        }
        let w = Weights::load(&self.cfg.model.join("model.safetensors"))?;
        let dev = &self.enc.device;
        let mut st: HashMap<String, Tensor> = HashMap::new();
        for (name, (shape, data)) in w.iter() {
            st.insert(name.clone(), Tensor::from_slice(data, shape.as_slice(), dev)?);
        }
        for l in self.enc.linears() {
            st.insert(format!("{}.weight", l.src), l.w.as_tensor().clone());
            st.insert(format!("{}.bias", l.src), l.b.as_tensor().clone());
        }
        let trained: Vec<u8> = if self.cfg.joint { (2..=8).collect() } else { vec![8] };
        for n in self.enc.norms() {
            for b in 1..=8u8 {
                // An untrained width takes the nearest trained one's affine.
                let from = *trained.iter().min_by_key(|&&t| (t as i32 - b as i32).abs()).expect("a trained width") as usize - 1;
                st.insert(format!("{}.w{b}.weight", n.src), n.gamma[from].as_tensor().clone());
                st.insert(format!("{}.w{b}.bias", n.src), n.beta[from].as_tensor().clone());
            }
            st.insert(format!("{}.weight", n.src), n.gamma[7].as_tensor().clone());
            st.insert(format!("{}.bias", n.src), n.beta[7].as_tensor().clone());
        }
        ensure!(st.contains_key(&format!("{HEAD}.weight")), "the head is missing");
        candle_core::safetensors::save(&st, out.join("model.safetensors"))?;
        Ok(())
    }
}

/// The file's widths: all eight for a joint model, 8 alone for a dedicated one.
pub fn file_widths(joint: bool) -> Vec<Bits> {
    if joint { (1..=8).rev().map(|b| Bits::new(b).expect("1..=8")).collect() } else { vec![Bits::MAX] }
}

/// The `.anybit` of a fine-tuned folder, its eval table and thresholds measured by the runtime on
/// the dev split. Returns the bytes and the per-width scores.
pub fn export(folder: &Path, name: &str, cfg: &CfConfig, splits: &Splits) -> Result<(Vec<u8>, Vec<WidthScores>)> {
    let widths = file_widths(cfg.joint);
    let mut opts = ImportOptions {
        dir: folder.to_path_buf(),
        name: Some(name.into()),
        max_tokens: Some(cfg.max_tokens),
        embed_bits: cfg.embed_bits,
        pooling: Pooling::Cls,
        widths: widths.clone(),
        smooth: false,
        task: Some(Task::Counterfactual { thresholds: Vec::new() }),
        eval: Vec::new(),
    };
    let first = import::import(&opts)?;
    let scores = eval::evaluate(&first.bytes, &splits.dev1, &splits.dev2, &widths, ThresholdSource::Tune, std::io::stderr().is_terminal())?;
    // best_threshold keeps them in (0, 1), where the format wants them, and scored them as stored.
    let thresholds = scores.iter().map(|s| (s.bits, s.threshold)).collect();
    opts.task = Some(Task::Counterfactual { thresholds });
    let table = |dataset: &str, metric: &str, n: usize, f: &dyn Fn(&WidthScores) -> Option<f64>| EvalResult {
        dataset: dataset.into(),
        metric: Some(metric.into()),
        n,
        accuracy: scores.iter().filter_map(|s| f(s).map(|v| (s.bits, v))).collect(),
    };
    let (d1, d2) = ("semeval2020-task5 subtask 1 dev", "semeval2020-task5 subtask 2 dev");
    opts.eval = vec![
        table(d1, "f1", splits.dev1.len(), &|s| s.st1.as_ref().map(|x| x.f1)),
        table(d2, "f1", splits.dev2.len(), &|s| s.st2.as_ref().map(|x| x.f1)),
        table(d2, "exact_match", splits.dev2.len(), &|s| s.st2.as_ref().map(|x| x.exact_match)),
    ];
    Ok((import::import(&opts)?.bytes, scores))
}

/// A count of at least 1 (0 steps, batches or intervals would divide by zero or never end).
fn positive(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct CfTrainArgs {
    /// Pretrained BERT folder (scripts/fetch-minilm.sh puts MiniLM-L6 in ~/.cache/anybit/minilm/model).
    #[arg(long)]
    pub model: PathBuf,
    /// Folder with subtask1_train.csv and subtask2_train.csv (../shared/data/semeval2020-task5).
    #[arg(long)]
    pub data: PathBuf,
    /// The .anybit file written when training ends.
    #[arg(long)]
    pub out: PathBuf,
    /// Checkpoint folder: resumed from when it holds a run of the same configuration.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Train 8 bits only (the dedicated baseline) instead of every width jointly.
    #[arg(long)]
    pub dedicated: bool,
    #[arg(long, default_value_t = 2, value_parser = positive)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32, value_parser = positive)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f32,
    #[arg(long, default_value_t = 1e-3)]
    pub head_lr: f32,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f32,
    #[arg(long, default_value_t = 0.06)]
    pub warmup: f32,
    #[arg(long, default_value_t = 0.5)]
    pub distill: f32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Longest input in tokens, [CLS] and [SEP] included (longer sentences are cut).
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    #[arg(long, default_value = "5")]
    pub embed_bits: Bits,
    /// Stop (with a checkpoint) after this many minutes; run again to resume.
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Train for this many steps instead of `epochs` worth (the schedule ends there); a fresh run
    /// only (a resumed one keeps its schedule).
    #[arg(long, value_parser = positive)]
    pub steps: Option<usize>,
    /// Fit the whole run into this many minutes of training: after 10 steps the step count is cut
    /// to what the measured speed allows, and the schedule ends there; a fresh run only (a
    /// resumed one keeps its schedule).
    #[arg(long)]
    pub budget_minutes: Option<f64>,
    #[arg(long, default_value_t = 100, value_parser = positive)]
    pub ckpt_every: usize,
    /// Print the trainer's 8-bit dev scores every N steps.
    #[arg(long, value_parser = positive)]
    pub eval_every: Option<usize>,
}

impl CfTrainArgs {
    pub fn config(&self) -> CfConfig {
        CfConfig {
            model: self.model.clone(),
            data: self.data.clone(),
            joint: !self.dedicated,
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr,
            head_lr: self.head_lr,
            weight_decay: self.weight_decay,
            warmup: self.warmup,
            distill: self.distill,
            seed: self.seed,
            max_tokens: self.max_tokens,
            embed_bits: self.embed_bits,
        }
    }
}

fn print_trainer_scores(t: &Trainer, widths: &[u8]) -> Result<serde_json::Value> {
    let mut out = serde_json::Map::new();
    for &w in widths {
        let (f1, th, s2) = t.dev_scores(Bits::new(w).map_err(|e| anyhow::anyhow!("{e}"))?)?;
        println!("trainer dev, {w} bits: subtask 1 F1 {f1:.4} (threshold {th:.3}); subtask 2 F1 {:.4}, exact match {:.4}", s2.f1, s2.exact_match);
        out.insert(w.to_string(), serde_json::json!({"st1_f1": f1, "threshold": th, "st2_f1": s2.f1, "st2_em": s2.exact_match}));
    }
    Ok(serde_json::Value::Object(out))
}

pub fn cli(a: &CfTrainArgs) -> Result<()> {
    crate::tune_allocator();
    for f in ["subtask1_train.csv", "subtask2_train.csv"] {
        ensure!(a.data.join(f).exists(), "{} is missing: --data must hold the SemEval-2020 Task 5 train files", a.data.join(f).display());
    }
    ensure!(a.model.join("model.safetensors").exists(), "{} has no model.safetensors (bash scripts/fetch-minilm.sh fetches MiniLM-L6)", a.model.display());
    let t0 = Instant::now();
    let mut t = Trainer::new(a.config())?;
    let mut before = 0.0;
    if a.ckpt.join("meta.json").exists() {
        before = t.resume(&a.ckpt)?;
        println!("resumed {} at step {} ({:.0} s of training before)", a.ckpt.display(), t.step, before);
    }
    let s = &t.splits;
    println!(
        "train: {} subtask-1 + {} subtask-2 sentences ({} dropped: their text is a dev sentence); dev: {} + {} (last 10% by sentenceID per class)",
        s.train1.len(), s.train2.len(), s.dropped, s.dev1.len(), s.dev2.len()
    );
    let per_epoch = t.steps_per_epoch();
    let fresh = t.step == 0;
    if !fresh && (a.steps.is_some() || a.budget_minutes.is_some()) {
        println!("resumed runs keep their schedule ({} steps): --steps and --budget-minutes apply to a fresh run only", t.total_steps);
    }
    if let (Some(n), true) = (a.steps, fresh) {
        t.total_steps = n;
    }
    println!("{} steps ({per_epoch} per epoch), {} width(s) per step, seed {}", t.total_steps, if a.dedicated { 1 } else { 2 }, a.seed);
    let deadline = a.max_minutes.map(|m| m * 60.0);
    let (mut loss_sum, mut loss_n, mut tick) = (0.0, 0, Instant::now());
    let (start_step, run_t0) = (t.step, Instant::now());
    let mut budgeted = a.budget_minutes.is_none() || !fresh;
    while t.step < t.total_steps {
        let total = t.total_steps;
        let epoch = t.step / per_epoch;
        let batches = epoch_batches(t.train.len(), &t.lens, a.batch, a.seed, epoch);
        let batch = batches[t.step % per_epoch].clone();
        loss_sum += t.train_step(&batch)? as f64;
        loss_n += 1;
        if !budgeted && t.step >= start_step + 10 {
            let per = run_t0.elapsed().as_secs_f64() / (t.step - start_step) as f64;
            let left = a.budget_minutes.unwrap_or(0.0) * 60.0 - (before + t0.elapsed().as_secs_f64());
            let fit = t.step + (left.max(0.0) / per) as usize;
            if fit < t.total_steps {
                println!("budget: {per:.2} s/step leaves room for {fit} steps of {}; the schedule now ends there", t.total_steps);
                t.total_steps = fit.max(t.step);
            }
            budgeted = true;
        }
        let elapsed = before + t0.elapsed().as_secs_f64();
        if t.step % 20 == 0 || t.step == total {
            let per = tick.elapsed().as_secs_f64() / loss_n as f64;
            println!(
                "step {}/{} epoch {} loss(8 bits) {:.4} {:.2} s/step, {:.0} min left",
                t.step, total, epoch + 1, loss_sum / loss_n as f64, per, per * (total - t.step) as f64 / 60.0
            );
            (loss_sum, loss_n, tick) = (0.0, 0, Instant::now());
        }
        if a.eval_every.is_some_and(|n| t.step % n == 0) {
            print_trainer_scores(&t, &[8])?;
        }
        let stop = deadline.is_some_and(|d| t0.elapsed().as_secs_f64() >= d);
        if t.step % a.ckpt_every == 0 || t.step == t.total_steps || stop {
            t.save(&a.ckpt, elapsed)?;
        }
        if stop && t.step < t.total_steps {
            println!("stopped at step {} after {:.1} min; run the same command again to resume", t.step, t0.elapsed().as_secs_f64() / 60.0);
            return Ok(());
        }
    }
    let wall = before + t0.elapsed().as_secs_f64();
    println!("training done: {} steps ({:.2} epochs), {:.1} min of training", t.total_steps, t.total_steps as f64 / per_epoch as f64, wall / 60.0);
    let widths: Vec<u8> = if a.dedicated { vec![8] } else { vec![8, 4, 2] };
    let trainer_scores = print_trainer_scores(&t, &widths)?;
    let folder = a.ckpt.join("finetuned");
    t.write_folder(&folder)?;
    let name = a.out.file_stem().map_or("counterfactual".into(), |s| s.to_string_lossy().into_owned());
    let (bytes, scores) = export(&folder, &name, &t.cfg, &t.splits)?;
    if let Some(dir) = a.out.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {} ({} bytes); runtime dev scores (thresholds picked on dev per width):", a.out.display(), bytes.len());
    let mut runtime = serde_json::Map::new();
    println!("| width | threshold | st1 P | st1 R | st1 F1 | st2 F1 | st2 EM | ant F1 | con F1 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for s in &scores {
        let (Some(m1), Some(m2)) = (&s.st1, &s.st2) else { continue };
        println!(
            "| {} | {:.3} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
            s.bits, s.threshold, m1.precision, m1.recall, m1.f1, m2.f1, m2.exact_match, m2.ant_f1, m2.con_f1
        );
        runtime.insert(s.bits.to_string(), serde_json::json!({"threshold": s.threshold, "st1_precision": m1.precision, "st1_recall": m1.recall,
            "st1_f1": m1.f1, "st2_f1": m2.f1, "st2_em": m2.exact_match, "ant_f1": m2.ant_f1, "con_f1": m2.con_f1}));
    }
    let record = serde_json::json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "seed": a.seed,
        "steps": t.total_steps,
        "epochs": t.total_steps as f64 / per_epoch as f64,
        "train_wall_s": wall,
        "bytes": bytes.len(),
        "dev": {"st1": t.splits.dev1.len(), "st2": t.splits.dev2.len()},
        "trainer": trainer_scores,
        "runtime": runtime,
    });
    std::fs::write(a.ckpt.join("result.json"), serde_json::to_string_pretty(&record)?)?;
    Ok(())
}
