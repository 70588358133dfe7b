//! The trainable any-precision CNN, NHWC throughout so that tensors, weight layouts and the
//! flatten order are the runtime's own (no permutation at export).
//!
//! Layer conventions match the runtime (crate/src/graph.rs): every quantized layer quantizes its
//! own input with a per-width PACT clip (the clip is also the ReLU); each conv is followed by a
//! switchable BatchNorm (one per width) that folds into an `Affine` node; the first conv and the
//! last dense layer are fixed at 8 bits; the first conv's input clip is 1.0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anybit::Bits;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};

use crate::ops::{self, BatchNormTrain, BnStats, Im2col, MaxPool, Pact, WeightQuant};
use crate::rng::Rng;
use crate::wavelet::{bands, BandBits, WaveletQuant};

pub const NWIDTHS: usize = Bits::MAX.count();

/// Which widths use the wavelet path instead of the nested DoReFa codes, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct WaveletCfg {
    pub widths: Vec<Bits>,
    pub levels: usize,
    /// Bits of (LL, HL/LH, HH) relative to the width.
    pub alloc: (i8, i8, i8),
}

impl WaveletCfg {
    pub fn op(&self, width: Bits) -> Option<WaveletQuant> {
        self.widths
            .contains(&width)
            .then(|| WaveletQuant { levels: self.levels, bits: BandBits::relative(width.get(), self.alloc) })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum LayerSpec {
    /// 3x3 conv, padding 1, stride 1, with `out` channels, followed by switchable BN.
    Conv(usize),
    /// 2x2 max-pool, stride 2.
    Pool,
    /// Fully connected with `out` outputs and a bias (the classifier).
    Dense(usize),
}

/// Parses an architecture string such as "c32,p,c64,p,c64,f10".
pub fn parse_arch(s: &str) -> Result<Vec<LayerSpec>> {
    let mut v = Vec::new();
    for tok in s.split(',').map(str::trim) {
        let num = |t: &str| -> Result<usize> {
            let n: usize = t.parse().with_context(|| format!("bad layer `{tok}` in `{s}`"))?;
            if n == 0 || n > 4096 {
                bail!("layer `{tok}`: width must be in 1..=4096");
            }
            Ok(n)
        };
        match tok.as_bytes().first() {
            Some(b'c') => v.push(LayerSpec::Conv(num(&tok[1..])?)),
            Some(b'f') => v.push(LayerSpec::Dense(num(&tok[1..])?)),
            Some(b'p') if tok == "p" => v.push(LayerSpec::Pool),
            _ => bail!("bad layer `{tok}` in `{s}` (expected cN, p or fN)"),
        }
    }
    match (v.first(), v.last()) {
        (Some(LayerSpec::Conv(_)), Some(LayerSpec::Dense(_))) => {}
        _ => bail!("architecture `{s}` must start with a conv and end with a dense layer"),
    }
    if v.iter().filter(|l| matches!(l, LayerSpec::Dense(_))).count() != 1 {
        bail!("architecture `{s}` must have exactly one dense layer, at the end");
    }
    Ok(v)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Batch statistics; running statistics updated with this momentum (PyTorch convention).
    Train { momentum: f32 },
    /// Batch statistics; running statistics become the plain average over calibration batches.
    Calibrate,
    /// Folded running statistics, as the runtime computes.
    Eval,
}

pub struct Bn {
    pub name: String,
    pub channels: usize,
    pub gamma: Vec<Var>,
    pub beta: Vec<Var>,
    /// Per width: (running mean, running var, calibration batches seen).
    pub running: Mutex<Vec<(Vec<f32>, Vec<f32>, usize)>>,
}

impl Bn {
    /// The per-channel (scale, bias) this BN folds to at `width`; export writes exactly these.
    pub fn folded(&self, width: Bits) -> Result<(Vec<f32>, Vec<f32>)> {
        let i = width.count() - 1;
        let g = self.gamma[i].as_tensor().to_vec1::<f32>()?;
        let b = self.beta[i].as_tensor().to_vec1::<f32>()?;
        let run = self.running.lock().unwrap();
        let (m, v, _) = &run[i];
        let scale: Vec<f32> = g.iter().zip(v).map(|(g, v)| g / (v + ops::BN_EPS).sqrt()).collect();
        let bias: Vec<f32> = b.iter().zip(m).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        Ok((scale, bias))
    }
}

pub enum QKind {
    Conv { k: usize, pad: usize, stride: usize, cin: usize },
    Dense { cin: usize },
}

pub struct QLayer {
    pub name: String,
    pub kind: QKind,
    pub cout: usize,
    /// Latent float weights, runtime layout: conv [out, kh*kw*in] in (ky, kx, c) order;
    /// dense [out, in] with `in` in (h, w, c) order.
    pub w: Var,
    pub bias: Option<Var>,
    pub fixed8: bool,
    /// A fixed input clip (the first layer: data in [0, 1]) instead of learned ones.
    pub fixed_clip: Option<f32>,
    /// Learned PACT clip per width (index width-1); unused when `fixed_clip` is set.
    pub clip: Vec<Var>,
    pub bn: Option<Bn>,
    /// Wavelet path: learnable log-scales per sub-band, per width (empty when unused).
    pub wav_scales: Vec<Var>,
}

pub enum Layer {
    Q(QLayer),
    Pool { name: String, op: MaxPool },
}

pub struct Net {
    pub arch: String,
    pub input: [usize; 3],
    pub layers: Vec<Layer>,
    /// Activation bits at each weight width (index width-1).
    pub act_bits: [Bits; NWIDTHS],
    pub wavelet: Option<WaveletCfg>,
    pub device: Device,
}

impl QLayer {
    pub fn bits(&self, width: Bits, act_bits: &[Bits; NWIDTHS]) -> (Bits, Bits) {
        if self.fixed8 {
            (Bits::MAX, Bits::MAX)
        } else {
            (width, act_bits[width.count() - 1])
        }
    }
    pub fn clip_value(&self, width: Bits) -> Result<f32> {
        match self.fixed_clip {
            Some(c) => Ok(c),
            None => Ok(self.clip[width.count() - 1].as_tensor().to_vec1::<f32>()?[0]),
        }
    }
}

impl Net {
    /// `min_act_bits`: activations at the input of the any-precision layers never get fewer bits than
    /// this (1: as many as the weights, W1A1 at width 1; 2: W1A2 at width 1, WbAb above).
    pub fn new(
        arch: &str,
        input: [usize; 3],
        clip_init: f32,
        seed: u64,
        wavelet: Option<WaveletCfg>,
        min_act_bits: Bits,
    ) -> Result<Net> {
        let specs = parse_arch(arch)?;
        let dev = Device::Cpu;
        let mut rng = Rng::new(seed);
        let (mut h, mut w, mut c) = (input[0], input[1], input[2]);
        let mut layers = Vec::new();
        let (mut nconv, mut npool) = (0, 0);
        let last = specs.len() - 1;
        for (i, spec) in specs.iter().enumerate() {
            match *spec {
                LayerSpec::Conv(out) => {
                    nconv += 1;
                    let k = 3;
                    let fan_in = k * k * c;
                    let wt = kaiming(&mut rng, out * fan_in, fan_in, (out, fan_in), &dev)?;
                    let bn = Bn {
                        name: format!("bn{nconv}"),
                        channels: out,
                        gamma: (0..NWIDTHS)
                            .map(|_| Var::from_tensor(&Tensor::ones(out, DType::F32, &dev)?))
                            .collect::<candle_core::Result<_>>()?,
                        beta: (0..NWIDTHS)
                            .map(|_| Var::zeros(out, DType::F32, &dev))
                            .collect::<candle_core::Result<_>>()?,
                        running: Mutex::new(vec![(vec![0.0; out], vec![1.0; out], 0); NWIDTHS]),
                    };
                    layers.push(Layer::Q(QLayer {
                        name: format!("conv{nconv}"),
                        kind: QKind::Conv { k, pad: 1, stride: 1, cin: c },
                        cout: out,
                        w: wt.clone(),
                        bias: None,
                        fixed8: i == 0,
                        fixed_clip: (i == 0).then_some(1.0),
                        clip: clips(clip_init, &dev)?,
                        bn: Some(bn),
                        wav_scales: wav_scales(wavelet.as_ref(), &wt, i == 0, &dev)?,
                    }));
                    c = out;
                }
                LayerSpec::Pool => {
                    npool += 1;
                    if h < 2 || w < 2 {
                        bail!("architecture `{arch}` pools a {h}x{w} map");
                    }
                    let op = MaxPool { k: 2, stride: 2 };
                    (h, w) = op.out_hw(h, w);
                    layers.push(Layer::Pool { name: format!("pool{npool}"), op });
                }
                LayerSpec::Dense(out) => {
                    let cin = h * w * c;
                    let wt = kaiming(&mut rng, out * cin, cin, (out, cin), &dev)?;
                    layers.push(Layer::Q(QLayer {
                        name: "fc".into(),
                        kind: QKind::Dense { cin },
                        cout: out,
                        w: wt.clone(),
                        bias: Some(Var::zeros(out, DType::F32, &dev)?),
                        fixed8: i == last,
                        fixed_clip: None,
                        clip: clips(clip_init, &dev)?,
                        bn: None,
                        wav_scales: wav_scales(wavelet.as_ref(), &wt, i == last, &dev)?,
                    }));
                }
            }
        }
        let mut act_bits = [Bits::MAX; NWIDTHS];
        for w in Bits::all_desc() {
            act_bits[w.count() - 1] = w.max(min_act_bits);
        }
        Ok(Net { arch: arch.into(), input, layers, act_bits, wavelet, device: dev })
    }

    pub fn classes(&self) -> usize {
        match self.layers.last() {
            Some(Layer::Q(q)) => q.cout,
            _ => 0,
        }
    }

    /// Logits [N, classes] for a batch [N, H, W, C] at weight width `width`.
    pub fn forward(&self, x: &Tensor, width: Bits, mode: Mode) -> Result<Tensor> {
        let wi = width.count() - 1;
        let n = x.dim(0)?;
        let mut x = x.clone();
        let frozen = mode == Mode::Eval;
        for layer in &self.layers {
            match layer {
                Layer::Pool { op, .. } => x = x.contiguous()?.apply_op1(*op)?,
                Layer::Q(q) => {
                    let (wb, ab) = q.bits(width, &self.act_bits);
                    let clip = match q.fixed_clip {
                        Some(c) => Tensor::new(&[c], &self.device)?,
                        None if frozen => q.clip[wi].as_tensor().detach(),
                        None => q.clip[wi].as_tensor().clone(),
                    };
                    let w = if frozen { q.w.as_tensor().detach() } else { q.w.as_tensor().clone() };
                    let wav = if q.fixed8 { None } else { self.wavelet.as_ref().and_then(|c| c.op(width)) };
                    let wq = match wav {
                        Some(op) => {
                            let ls = &q.wav_scales[wi];
                            let ls = if frozen { ls.as_tensor().detach() } else { ls.as_tensor().clone() };
                            w.apply_op2(&ls, op)?
                        }
                        None => w.apply_op1(WeightQuant { bits: wb })?,
                    };
                    match q.kind {
                        QKind::Conv { k, pad, stride, .. } => {
                            let (_, h, wd, _) = x.dims4()?;
                            let xq = x.contiguous()?.apply_op2(&clip, Pact { bits: ab })?;
                            let op = Im2col {
                                kh: k,
                                kw: k,
                                stride,
                                pad,
                                input_grad: q.fixed_clip.is_none(),
                            };
                            let (ho, wo) = op.out_hw(h, wd);
                            let cols = xq.apply_op1(op)?;
                            x = cols.matmul(&wq.t()?)?.reshape((n, ho, wo, q.cout))?;
                        }
                        QKind::Dense { cin } => {
                            let flat = x.reshape((n, cin))?.contiguous()?;
                            let xq = flat.apply_op2(&clip, Pact { bits: ab })?;
                            x = xq.matmul(&wq.t()?)?;
                            if let Some(b) = &q.bias {
                                let b = if frozen { b.as_tensor().detach() } else { b.as_tensor().clone() };
                                x = x.broadcast_add(&b)?;
                            }
                        }
                    }
                    if let Some(bn) = &q.bn {
                        x = self.batchnorm(bn, &x, width, mode)?;
                    }
                }
            }
        }
        Ok(x)
    }

    fn batchnorm(&self, bn: &Bn, x: &Tensor, width: Bits, mode: Mode) -> Result<Tensor> {
        let wi = width.count() - 1;
        if mode == Mode::Eval {
            let (s, b) = bn.folded(width)?;
            let s = Tensor::from_vec(s, bn.channels, &self.device)?;
            let b = Tensor::from_vec(b, bn.channels, &self.device)?;
            return Ok(x.broadcast_mul(&s)?.broadcast_add(&b)?);
        }
        let stats = Arc::new(Mutex::new(BnStats::default()));
        let y = x.contiguous()?.apply_op3(
            bn.gamma[wi].as_tensor(),
            bn.beta[wi].as_tensor(),
            BatchNormTrain { stats: stats.clone() },
        )?;
        let st = stats.lock().unwrap();
        let unbias = st.count as f32 / (st.count.max(2) - 1) as f32;
        let mut run = bn.running.lock().unwrap();
        let (rm, rv, seen) = &mut run[wi];
        let mom = match mode {
            Mode::Train { momentum } => momentum,
            _ => {
                *seen += 1;
                1.0 / *seen as f32
            }
        };
        for j in 0..bn.channels {
            rm[j] = (1.0 - mom) * rm[j] + mom * st.mean[j];
            rv[j] = (1.0 - mom) * rv[j] + mom * st.var[j] * unbias;
        }
        Ok(y)
    }

    pub fn qlayers(&self) -> impl Iterator<Item = &QLayer> {
        self.layers.iter().filter_map(|l| match l {
            Layer::Q(q) => Some(q),
            _ => None,
        })
    }

    /// Trainable variables: (weights and BN, clips).
    pub fn vars(&self) -> (Vec<(String, Var)>, Vec<(String, Var)>) {
        let (mut main, mut clips) = (Vec::new(), Vec::new());
        for q in self.qlayers() {
            main.push((format!("{}.weight", q.name), q.w.clone()));
            if let Some(b) = &q.bias {
                main.push((format!("{}.bias", q.name), b.clone()));
            }
            if q.fixed_clip.is_none() {
                for (i, c) in q.clip.iter().enumerate() {
                    clips.push((format!("{}.w{}.clip", q.name, i + 1), c.clone()));
                }
            }
            for (i, v) in q.wav_scales.iter().enumerate() {
                main.push((format!("{}.w{}.wavelet_log_scale", q.name, i + 1), v.clone()));
            }
            if let Some(bn) = &q.bn {
                for i in 0..NWIDTHS {
                    main.push((format!("{}.w{}.gamma", bn.name, i + 1), bn.gamma[i].clone()));
                    main.push((format!("{}.w{}.beta", bn.name, i + 1), bn.beta[i].clone()));
                }
            }
        }
        (main, clips)
    }

    /// All state (variables and running statistics) by name, for checkpoints.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let (main, clips) = self.vars();
        let mut m: HashMap<String, Tensor> =
            main.into_iter().chain(clips).map(|(k, v)| (k, v.as_tensor().clone())).collect();
        for q in self.qlayers() {
            if let Some(bn) = &q.bn {
                let run = bn.running.lock().unwrap();
                for (i, (rm, rv, _)) in run.iter().enumerate() {
                    let c = bn.channels;
                    m.insert(format!("{}.w{}.running_mean", bn.name, i + 1), Tensor::from_vec(rm.clone(), c, &self.device)?);
                    m.insert(format!("{}.w{}.running_var", bn.name, i + 1), Tensor::from_vec(rv.clone(), c, &self.device)?);
                }
            }
        }
        Ok(m)
    }

    pub fn load_state(&self, m: &HashMap<String, Tensor>) -> Result<()> {
        let get = |k: &str| m.get(k).with_context(|| format!("checkpoint lacks `{k}`"));
        let (main, clips) = self.vars();
        for (k, v) in main.into_iter().chain(clips) {
            let t = get(&k)?;
            if t.dims() != v.dims() {
                bail!("checkpoint `{k}` has shape {:?}, the net {:?}", t.dims(), v.dims());
            }
            v.set(t)?;
        }
        for q in self.qlayers() {
            if let Some(bn) = &q.bn {
                let mut run = bn.running.lock().unwrap();
                for (i, r) in run.iter_mut().enumerate() {
                    r.0 = get(&format!("{}.w{}.running_mean", bn.name, i + 1))?.to_vec1()?;
                    r.1 = get(&format!("{}.w{}.running_var", bn.name, i + 1))?.to_vec1()?;
                }
            }
        }
        Ok(())
    }

    /// Copies one width's BN parameters, running statistics and clips to another width.
    pub fn copy_width(&self, from: Bits, to: Bits) -> Result<()> {
        let (f, t) = (from.count() - 1, to.count() - 1);
        for q in self.qlayers() {
            q.clip[t].set(&q.clip[f].as_tensor().copy()?)?;
            if let Some(bn) = &q.bn {
                bn.gamma[t].set(&bn.gamma[f].as_tensor().copy()?)?;
                bn.beta[t].set(&bn.beta[f].as_tensor().copy()?)?;
                let mut run = bn.running.lock().unwrap();
                run[t] = run[f].clone();
            }
        }
        Ok(())
    }

    /// Restarts the calibration average of one width's running statistics.
    pub fn reset_calibration(&self, width: Bits) {
        for q in self.qlayers() {
            if let Some(bn) = &q.bn {
                bn.running.lock().unwrap()[width.count() - 1].2 = 0;
            }
        }
    }
}

/// Initial wavelet log-scales of one layer, per width (every width gets a set so checkpoints have
/// one shape whatever the configuration; only wavelet widths use theirs).
fn wav_scales(cfg: Option<&WaveletCfg>, w: &Var, fixed: bool, dev: &Device) -> Result<Vec<Var>> {
    let Some(cfg) = cfg else { return Ok(Vec::new()) };
    if fixed {
        return Ok(Vec::new());
    }
    let (rows, cols) = w.dims2()?;
    let wv = ops::data(w.as_tensor())?;
    (1..=NWIDTHS as u8)
        .map(|b| {
            let op = WaveletQuant { levels: cfg.levels, bits: BandBits::relative(b, cfg.alloc) };
            let ls = op.init_log_scales(&wv, rows, cols);
            debug_assert_eq!(ls.len(), bands(cfg.levels));
            Ok(Var::from_tensor(&Tensor::from_vec(ls, bands(cfg.levels), dev)?)?)
        })
        .collect()
}

fn clips(init: f32, dev: &Device) -> Result<Vec<Var>> {
    Ok((0..NWIDTHS).map(|_| Var::new(&[init], dev)).collect::<candle_core::Result<_>>()?)
}

fn kaiming(rng: &mut Rng, n: usize, fan_in: usize, shape: (usize, usize), dev: &Device) -> Result<Var> {
    let std = (2.0 / fan_in as f64).sqrt();
    let v: Vec<f32> = (0..n).map(|_| (rng.normal() * std) as f32).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(v, shape, dev)?)?)
}
