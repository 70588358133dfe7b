//! The training loop: one width (dedicated model) or several at once with recursive distillation
//! (arXiv:2105.01353, building on Any-Precision DNN, arXiv:1911.07346: top width on the labels, each lower width on the softmax of the next higher
//! width's detached output, one optimizer step per batch), checkpoints that resume mid-epoch, and
//! export with BN calibration of widths that were not trained.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anybit::format::EvalResult;
use anybit::Bits;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, D};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::adam::Adam;
use crate::data::Dataset;
use crate::export;
use crate::net::{Mode, Net, WaveletCfg};
use crate::rng::Rng;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    pub dataset: String,
    pub arch: String,
    /// Trained weight widths, descending (the first is the distillation teacher).
    pub widths: Vec<Bits>,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub clip_lr: f32,
    pub weight_decay: f32,
    pub clip_init: f32,
    pub seed: u64,
    /// Random translation of training images by up to this many pixels.
    pub shift: usize,
    /// Mirror half the training images left-right (Fashion-MNIST's garments are symmetric; digits are not).
    pub flip: bool,
    /// Recursive distillation for lower widths (else every width learns from the labels).
    pub distill: bool,
    /// Use only the first `limit` training images (0: all).
    pub limit: usize,
    /// Widths trained (and evaluated) through the wavelet path instead of the nested codes.
    #[serde(default)]
    pub wavelet_widths: Vec<Bits>,
    #[serde(default = "one")]
    pub wavelet_levels: usize,
    /// Sub-band bits relative to the width: LL, HL/LH, HH.
    #[serde(default = "default_alloc")]
    pub wavelet_alloc: (i8, i8, i8),
    /// Checkpoint whose weights, BN and clips started this run (with a fresh optimizer and
    /// schedule); recorded so that a resume cannot mix runs of different origins.
    #[serde(default)]
    pub init: Option<String>,
    /// Activation bits never below this (2: the 1-bit width runs W1A2 instead of W1A1).
    #[serde(default = "one_bit")]
    pub min_act_bits: Bits,
}

/// The CLI's defaults (tools/README.md lists them).
impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            dataset: "mnist".into(),
            arch: "c32,p,c64,p,c64,f10".into(),
            widths: vec![Bits::MAX],
            epochs: 2,
            batch: 128,
            lr: 2e-3,
            clip_lr: 1e-2,
            weight_decay: 0.0,
            clip_init: 4.0,
            seed: 1,
            shift: 0,
            flip: false,
            distill: true,
            limit: 0,
            wavelet_widths: Vec::new(),
            wavelet_levels: 1,
            wavelet_alloc: default_alloc(),
            init: None,
            min_act_bits: Bits::MIN,
        }
    }
}

// Serde defaults of the fields that older checkpoints lack and whose default is 1.
fn one() -> usize {
    1
}
fn one_bit() -> Bits {
    Bits::MIN
}
pub fn default_alloc() -> (i8, i8, i8) {
    (1, 0, -1)
}

impl TrainConfig {
    pub fn wavelet(&self) -> Option<WaveletCfg> {
        (!self.wavelet_widths.is_empty()).then(|| WaveletCfg {
            widths: self.wavelet_widths.clone(),
            levels: self.wavelet_levels,
            alloc: self.wavelet_alloc,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    config: TrainConfig,
    /// Next step to run (global).
    step: usize,
    adam_t: u64,
    wall_s: f64,
}

pub struct Trainer<'a> {
    pub cfg: TrainConfig,
    pub net: Net,
    pub train: &'a Dataset,
    opt: Adam,
    clip_opt: Adam,
    pub step: usize,
    pub wall_s: f64,
}

fn softmax_ce_soft(logits: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    let p = candle_nn::ops::softmax_last_dim(teacher)?;
    let lp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    Ok((p * lp)?.sum(D::Minus1)?.mean_all()?.neg()?)
}

/// Batch `idx` of the training set as [B, H, W, 1], translated by up to `shift` pixels and, with
/// `flip`, mirrored at random. The generator is drawn for a flip only when `flip` is set, so runs
/// without it keep their earlier batches.
fn make_batch(ds: &Dataset, idx: &[usize], shift: usize, flip: bool, rng: &mut Rng) -> Result<(Tensor, Tensor)> {
    let (h, w) = (ds.rows, ds.cols);
    let mut x = vec![0f32; idx.len() * h * w];
    for (k, &i) in idx.iter().enumerate() {
        let src = ds.image(i);
        let dst = &mut x[k * h * w..][..h * w];
        let (dy, dx) = if shift > 0 {
            (rng.below(2 * shift + 1) as isize - shift as isize, rng.below(2 * shift + 1) as isize - shift as isize)
        } else {
            (0, 0)
        };
        let mirror = flip && rng.below(2) == 1;
        for y in 0..h as isize {
            let sy = y - dy;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            for xx in 0..w as isize {
                let sx = if mirror { w as isize - 1 - xx } else { xx } - dx;
                if sx >= 0 && sx < w as isize {
                    dst[(y * w as isize + xx) as usize] = src[(sy * w as isize + sx) as usize];
                }
            }
        }
    }
    let labels: Vec<u32> = idx.iter().map(|&i| ds.labels[i] as u32).collect();
    Ok((
        Tensor::from_vec(x, (idx.len(), h, w, 1), &Device::Cpu)?,
        Tensor::from_vec(labels, idx.len(), &Device::Cpu)?,
    ))
}

/// Top-1 accuracy at `width` (frozen BN), in batches to bound memory.
pub fn evaluate(net: &Net, ds: &Dataset, width: Bits) -> Result<f64> {
    let mut correct = 0usize;
    let bs = 500;
    let (h, w) = (ds.rows, ds.cols);
    for start in (0..ds.len()).step_by(bs) {
        let end = (start + bs).min(ds.len());
        let x = Tensor::from_slice(&ds.images[start * h * w..end * h * w], (end - start, h, w, 1), &Device::Cpu)?;
        let pred = net.forward(&x, width, Mode::Eval)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
        correct += pred.iter().zip(&ds.labels[start..end]).filter(|(p, l)| **p == **l as u32).count();
    }
    Ok(correct as f64 / ds.len().max(1) as f64)
}

impl<'a> Trainer<'a> {
    pub fn new(cfg: TrainConfig, train: &'a Dataset) -> Result<Self> {
        if cfg.widths.is_empty() {
            bail!("no trained widths");
        }
        if cfg.batch == 0 || cfg.batch > train.len() {
            bail!("batch {} must be in 1..={}", cfg.batch, train.len());
        }
        if cfg.wavelet_levels == 0 || cfg.wavelet_levels > 4 {
            bail!("wavelet levels {} must be in 1..=4", cfg.wavelet_levels);
        }
        let net = Net::new(&cfg.arch, [train.rows, train.cols, 1], cfg.clip_init, cfg.seed, cfg.wavelet(), cfg.min_act_bits)?;
        let (main, clips) = net.vars();
        let opt = Adam::new(main, cfg.weight_decay, None);
        let clip_opt = Adam::new(clips, 0.0, Some(1e-2));
        Ok(Trainer { cfg, net, train, opt, clip_opt, step: 0, wall_s: 0.0 })
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.n_train() / self.cfg.batch
    }
    fn n_train(&self) -> usize {
        if self.cfg.limit > 0 { self.cfg.limit.min(self.train.len()) } else { self.train.len() }
    }
    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.cfg.epochs
    }

    /// Cosine decay from the base rate to zero over the whole run, after a short warm-up.
    fn lr_factor(&self) -> f32 {
        let total = self.total_steps().max(1) as f32;
        let warm = (total * 0.02).max(1.0);
        let s = self.step as f32;
        if s < warm {
            (s + 1.0) / warm
        } else {
            0.5 * (1.0 + (std::f32::consts::PI * (s - warm) / (total - warm).max(1.0)).cos())
        }
    }

    /// One optimizer step on batch `idx`; returns (loss, correct at the top width).
    pub fn train_step(&mut self, idx: &[usize], rng: &mut Rng) -> Result<(f32, usize)> {
        let (x, y) = make_batch(self.train, idx, self.cfg.shift, self.cfg.flip, rng)?;
        let mom = Mode::Train { momentum: 0.1 };
        let mut widths = self.cfg.widths.clone();
        widths.sort_unstable_by(|a, b| b.cmp(a));
        let top = self.net.forward(&x, widths[0], mom)?;
        let mut loss = candle_nn::loss::cross_entropy(&top, &y)?;
        let correct = top
            .argmax(D::Minus1)?
            .to_vec1::<u32>()?
            .iter()
            .zip(y.to_vec1::<u32>()?)
            .filter(|(p, l)| **p == *l)
            .count();
        let mut teacher = top.detach();
        for &w in &widths[1..] {
            let out = self.net.forward(&x, w, mom)?;
            let l = if self.cfg.distill {
                softmax_ce_soft(&out, &teacher)?
            } else {
                candle_nn::loss::cross_entropy(&out, &y)?
            };
            loss = (loss + l)?;
            teacher = out.detach();
        }
        let grads = loss.backward()?;
        let f = self.lr_factor();
        self.opt.step(&grads, self.cfg.lr * f)?;
        self.clip_opt.step(&grads, self.cfg.clip_lr * f)?;
        self.step += 1;
        Ok((loss.to_scalar::<f32>()?, correct))
    }

    fn epoch_order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.n_train()).collect();
        Rng::new(self.cfg.seed ^ (0x5EED_0000 + epoch as u64)).shuffle(&mut order);
        order
    }

    /// Runs until `total_steps`, checkpointing to `ckpt` every `ckpt_every` steps and at the end.
    /// `stop_after`: run at most this many steps in this call (for tests and time-boxed sessions).
    pub fn run(&mut self, ckpt: Option<&Path>, ckpt_every: usize, stop_after: Option<usize>) -> Result<Vec<f32>> {
        let spe = self.steps_per_epoch();
        let total = self.total_steps();
        let pb = ProgressBar::new(total as u64);
        let tty = std::io::stderr().is_terminal();
        if !tty {
            pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        pb.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ({eta}) {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_position(self.step as u64);
        let mut losses = Vec::new();
        let (mut run_loss, mut run_acc) = (0f32, 0f32);
        let mut since = Instant::now();
        let mut done_here = 0;
        while self.step < total && stop_after.is_none_or(|s| done_here < s) {
            let epoch = self.step / spe;
            let order = self.epoch_order(epoch);
            let i = self.step % spe;
            let idx = &order[i * self.cfg.batch..(i + 1) * self.cfg.batch];
            let mut rng = Rng::new(self.cfg.seed.wrapping_mul(1_000_003) ^ self.step as u64);
            let t0 = Instant::now();
            let (loss, correct) = self.train_step(idx, &mut rng)?;
            let dt = t0.elapsed().as_secs_f64();
            self.wall_s += dt;
            done_here += 1;
            losses.push(loss);
            let acc = correct as f32 / self.cfg.batch as f32;
            let k = if losses.len() == 1 { 1.0 } else { 0.05 };
            run_loss += k * (loss - run_loss);
            run_acc += k * (acc - run_acc);
            let msg = format!("epoch {} loss {run_loss:.4} acc {:.2}% {dt:.2}s/step", epoch + 1, run_acc * 100.0);
            pb.set_position(self.step as u64);
            pb.set_message(msg.clone());
            if !tty && (self.step % 20 == 0 || self.step == total) {
                eprintln!("step {}/{total} {msg}", self.step);
            }
            if let Some(dir) = ckpt {
                if self.step % ckpt_every == 0 || self.step == total || since.elapsed().as_secs() > 300 {
                    self.save(dir)?;
                    since = Instant::now();
                }
            }
        }
        pb.finish_and_clear();
        if let Some(dir) = ckpt {
            self.save(dir)?;
        }
        Ok(losses)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut st: HashMap<String, Tensor> = self.net.state()?;
        self.opt.state("adam", &mut st)?;
        self.clip_opt.state("adam_clip", &mut st)?;
        let tmp = dir.join("state.safetensors.tmp");
        candle_core::safetensors::save(&st, &tmp)?;
        std::fs::rename(&tmp, dir.join("state.safetensors"))?;
        let meta = Meta { config: self.cfg.clone(), step: self.step, adam_t: self.opt.t, wall_s: self.wall_s };
        let tmp = dir.join("meta.json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&meta)?)?;
        std::fs::rename(&tmp, dir.join("meta.json"))?;
        Ok(())
    }

    /// Starts from the weights, BN and clips of another run's checkpoint (same architecture and
    /// data set), keeping this run's fresh optimizer and schedule: e.g. a dedicated 8-bit model as
    /// the start of joint training. Widths this run trains that the source did not get the BN and
    /// clips of the nearest width the source trained. Returns the source's trained widths.
    pub fn init_from(&mut self, dir: &Path) -> Result<Vec<Bits>> {
        let src = read_meta(dir)?.config;
        if src.arch != self.cfg.arch || src.dataset != self.cfg.dataset {
            bail!("--init {}: that run trained {} on {}, this one {} on {}", dir.display(), src.arch, src.dataset, self.cfg.arch, self.cfg.dataset);
        }
        self.net.load_state(&read_state(dir)?)?;
        for &w in &self.cfg.widths {
            if !src.widths.contains(&w) {
                self.net.copy_width(nearest_trained(&src.widths, w)?, w)?;
            }
        }
        Ok(src.widths)
    }

    /// Loads a checkpoint written by `save` with the same configuration (epochs may differ).
    pub fn resume(&mut self, dir: &Path) -> Result<()> {
        let meta = read_meta(dir)?;
        let mut a = meta.config.clone();
        a.epochs = self.cfg.epochs;
        if a != self.cfg {
            bail!("checkpoint {} was trained with {}, not {}", dir.display(), serde_json::to_string(&meta.config)?, serde_json::to_string(&self.cfg)?);
        }
        let st = read_state(dir)?;
        self.net.load_state(&st)?;
        self.opt.load_state("adam", meta.adam_t, &st)?;
        self.clip_opt.load_state("adam_clip", meta.adam_t, &st)?;
        self.step = meta.step;
        self.wall_s = meta.wall_s;
        Ok(())
    }
}

/// Reads the config stored with a checkpoint.
pub fn checkpoint_config(dir: &Path) -> Result<TrainConfig> {
    Ok(read_meta(dir)?.config)
}

fn read_meta(dir: &Path) -> Result<Meta> {
    let text = std::fs::read_to_string(dir.join("meta.json")).with_context(|| format!("reading {}/meta.json", dir.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}/meta.json", dir.display()))
}

fn read_state(dir: &Path) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(dir.join("state.safetensors"), &Device::Cpu)
        .with_context(|| format!("reading {}/state.safetensors", dir.display()))
}

/// The trained width whose BN and clips stand in for untrained width `w`: the nearest one above
/// it, else the highest.
fn nearest_trained(trained: &[Bits], w: Bits) -> Result<Bits> {
    trained.iter().copied().filter(|&t| t > w).min().or_else(|| trained.iter().copied().max()).context("no trained width")
}

/// Fills widths that were not trained (BN and clips from the nearest trained width, preferring the
/// higher one), then re-estimates their BN statistics on `batches` training batches. Export-time
/// calibration only: the runtime switches width with no data.
pub fn fill_untrained(net: &Net, trained: &[Bits], all: &[Bits], train: &Dataset, batches: usize, batch: usize, seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed ^ 0xCA11);
    for &w in all {
        if trained.contains(&w) {
            continue;
        }
        net.copy_width(nearest_trained(trained, w)?, w)?;
        net.reset_calibration(w);
        for _ in 0..batches {
            let idx: Vec<usize> = (0..batch).map(|_| rng.below(train.len())).collect();
            let (x, _) = make_batch(train, &idx, 0, false, &mut rng)?;
            net.forward(&x, w, Mode::Calibrate)?;
        }
    }
    Ok(())
}

pub struct ExportReport {
    pub accuracy: Vec<(Bits, f64)>,
    pub bytes: usize,
}

/// Evaluates every width on `test`, writes the model with that table, returns the table.
pub fn export_model(net: &Net, dataset: &str, name: &str, widths: &[Bits], test: &Dataset, out: &Path) -> Result<ExportReport> {
    let mut accuracy = Vec::new();
    for &w in widths {
        let acc = evaluate(net, test, w)?;
        let path = if net.wavelet.as_ref().is_some_and(|c| c.widths.contains(&w)) { " (wavelet path, trainer only)" } else { "" };
        eprintln!("  width {w}: test accuracy {:.2}%{path}", acc * 100.0);
        accuracy.push((w, acc));
    }
    // The runtime has no wavelet decoder: the file carries only the nested-code widths.
    let wav = net.wavelet.as_ref().map(|c| c.widths.clone()).unwrap_or_default();
    let file_widths: Vec<Bits> = widths.iter().copied().filter(|w| !wav.contains(w)).collect();
    if file_widths.is_empty() {
        bail!("every exported width uses the wavelet path, which the runtime cannot run");
    }
    let file_acc: Vec<(u8, f64)> = accuracy.iter().filter(|(w, _)| !wav.contains(w)).map(|&(w, a)| (w.get(), a)).collect();
    let eval = vec![EvalResult { dataset: dataset.into(), metric: None, n: test.len(), accuracy: file_acc }];
    let bytes = export::write(net, name, &file_widths, Some(export::labels(dataset)), eval)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(ExportReport { accuracy, bytes: bytes.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Dataset {
        // One 3x4 image whose pixels are their own column index, so a mirror is easy to read.
        let images = (0..12).map(|i| (i % 4) as f32).collect();
        Dataset { images, labels: vec![7], rows: 3, cols: 4 }
    }

    #[test]
    fn flip_mirrors_rows_and_no_flip_keeps_the_image() {
        let ds = ramp();
        let mut rng = Rng::new(3);
        let mut seen = [false; 2];
        for _ in 0..64 {
            let (x, y) = make_batch(&ds, &[0], 0, true, &mut rng).unwrap();
            assert_eq!(y.to_vec1::<u32>().unwrap(), vec![7]);
            let v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let row: Vec<f32> = v[..4].to_vec();
            assert!(v.chunks(4).all(|r| r == row.as_slice()), "rows differ: {v:?}");
            match row.as_slice() {
                [0.0, 1.0, 2.0, 3.0] => seen[0] = true,
                [3.0, 2.0, 1.0, 0.0] => seen[1] = true,
                other => panic!("neither the image nor its mirror: {other:?}"),
            }
        }
        assert_eq!(seen, [true, true], "64 draws should give both orientations");
        let (x, _) = make_batch(&ds, &[0], 0, false, &mut rng).unwrap();
        assert_eq!(x.flatten_all().unwrap().to_vec1::<f32>().unwrap(), ds.images);
    }

    #[test]
    fn a_checkpoint_without_the_later_fields_still_loads() {
        // meta.json as written before wavelet widths, --init and --min-act-bits existed.
        let meta = r#"{"config": {"dataset": "mnist", "arch": "c32,p,c64,p,c64,f10", "widths": [8, 4, 2, 1],
            "epochs": 3, "batch": 128, "lr": 0.002, "clip_lr": 0.01, "weight_decay": 0.0, "clip_init": 4.0,
            "seed": 1, "shift": 1, "flip": false, "distill": true, "limit": 0}, "step": 7, "adam_t": 7, "wall_s": 1.5}"#;
        let cfg = serde_json::from_str::<Meta>(meta).unwrap().config;
        assert_eq!(cfg.widths.iter().map(|w| w.get()).collect::<Vec<_>>(), [8, 4, 2, 1]);
        assert_eq!((cfg.min_act_bits, cfg.wavelet_levels, cfg.init.as_deref()), (Bits::MIN, 1, None));
        assert!(serde_json::to_string(&cfg).unwrap().contains(r#""widths":[8,4,2,1]"#));
        assert!(serde_json::from_str::<Meta>(&meta.replace("[8, 4, 2, 1]", "[8, 9]")).is_err());
    }
}
