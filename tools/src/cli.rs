//! The `anybit` command line: one struct per subcommand, whose doc comments are its `--help`.
//! Widths enter as [`Bits`] here, so an out-of-range width is a usage error naming its flag.
//!
//! `::std::vec::Vec<Bits>` (not `Vec<Bits>`) marks a list that one value parser reads whole from
//! one argument ("1-3,8"); clap takes a bare `Vec<T>` for an argument given several times.

use std::path::PathBuf;

use anybit::Bits;
use clap::{Args, Parser, Subcommand};

use crate::data;
use crate::train::TrainConfig;

/// Train, export and evaluate any-precision (1..8-bit) models.
#[derive(Debug, Parser)]
#[command(
    name = "anybit",
    version,
    after_help = "Typical invocations: tools/README.md"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model at one width (dedicated) or several at once (any-precision, recursive
    /// distillation), with checkpoints that resume mid-epoch; optionally export it.
    Train(Box<TrainArgs>),
    /// Export a `.anybit` file from a training checkpoint (BN calibration of untrained widths,
    /// test accuracy into the graph).
    Export(ExportArgs),
    /// Evaluate a `.anybit` file with the runtime itself; the last line printed is one JSON object.
    Eval(EvalArgs),
    /// Cut the first N test images and labels into uncompressed IDX files.
    Fixture(FixtureArgs),
    /// Rewrite a model file in the current format version (docs/FORMAT.md, "Versioning").
    Upgrade(UpgradeArgs),
    /// Attack test images at each width with the runtime's attacks (docs/ATTACKS.md): success
    /// rate, L2 and Linf of the successful examples, time per image; the last line printed is one
    /// JSON object.
    Attack(Box<AttackArgs>),
    /// Import a pretrained BERT-layout text encoder (a Hugging Face folder with config.json,
    /// model.safetensors and vocab.txt) into one `.anybit` file for every width, vocabulary and
    /// tokenizer settings included (docs/TEXT.md).
    Import(ImportArgs),
    /// Fine-tune a BERT folder (MiniLM-L6) for counterfactual detection, both SemEval-2020 Task 5
    /// subtasks, every width jointly (or 8 bits with --dedicated), with checkpoints that resume;
    /// writes one `.anybit` whose eval table holds the runtime's dev scores per width.
    CfTrain(Box<crate::cf::train::CfTrainArgs>),
    /// Tokenize texts with a text model's own tokenizer: one JSON line per input,
    /// {"ids":[...],"offsets":[[start,end],...],"truncated":false}, offsets in characters
    /// (Unicode scalar values), end exclusive; [CLS]/[SEP] have [0,0].
    Tokenize(TokenizeArgs),
    /// Evaluate a counterfactual model (SemEval-2020 Task 5) with the runtime on a CSV with the
    /// official columns: subtask 1 precision/recall/F1 of the counterfactual class, or subtask 2
    /// exact match and word-overlap F1 (overall, antecedent, consequent), per width; the last line
    /// printed is one JSON object.
    CfEval(CfEvalArgs),
    /// Write an image model at one width as the float graph its quantized layers stand for
    /// (graph.json, weights.bin, reference.json with anybit's outputs), which
    /// scripts/peer_formats.py turns into ONNX and TF.js models for the peer benchmark
    /// (bench/models.mjs)
    PeerExport(crate::peer::PeerExportArgs),
    /// Write a random-weight benchmark model: a ResNet-20 (CIFAR shape) or the single 3x3 conv
    /// 64->64 at 28x28 (only their speed means anything)
    BenchModel(crate::peer::BenchModelArgs),
}

#[derive(Debug, Args)]
pub struct CfEvalArgs {
    /// The `.anybit` counterfactual model (its file carries the task and per-width thresholds).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// 1: sentence classification (columns sentenceID, sentence, gold_label); 2: antecedent and
    /// consequent spans (sentenceID, sentence, antecedent_startid, antecedent_endid,
    /// consequent_startid, consequent_endid).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub task: u8,
    /// The CSV with a header row and the official columns (others are ignored).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Weight widths to evaluate, in this order, e.g. 8,6,4,3,2; each must be in the file.
    #[arg(long, default_value = "8,6,4,3,2", value_parser = parse_widths)]
    pub bits: ::std::vec::Vec<Bits>,
    /// Also write every sentence's prediction at the first listed width to this CSV (the web
    /// app's download columns).
    #[arg(long, value_name = "FILE")]
    pub predictions: Option<PathBuf>,
    /// Worker threads, each with its own model [default: RAYON_NUM_THREADS, else the CPUs].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Score only the dev split `cf-train` holds out of this (train) CSV: the last 10% by
    /// sentenceID of each class (task 1) or of sentences with and without a consequent (task 2).
    #[arg(long)]
    pub dev: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["text", "csv"])))]
pub struct TokenizeArgs {
    /// The `.anybit` text model whose vocabulary and settings to use.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// One text.
    #[arg(long)]
    pub text: Option<String>,
    /// A CSV file with a header row: every row's text in --column.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// The CSV column holding the texts.
    #[arg(long, default_value = "sentence")]
    pub column: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The folder: config.json, model.safetensors, vocab.txt, and tokenizer.json where present
    /// (for MiniLM-L6: scripts/fetch-minilm.sh fetches it).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The `.anybit` file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Model name in the file [default: the folder's name].
    #[arg(long)]
    pub name: Option<String>,
    /// Longest input in tokens, [CLS] and [SEP] included; longer texts are truncated and the
    /// truncation reported [default: the folder's max_seq_length, else its tokenizer's
    /// truncation length, else the position table's size].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Bits per value of the word-embedding rows (positions and types take 8).
    #[arg(long, default_value = "5", value_parser = parse_bits)]
    pub embed_bits: Bits,
    /// How token vectors become the output.
    #[arg(long, value_enum, default_value = "mean")]
    pub pooling: crate::import::Pooling,
    /// Widths the file serves (8 must be among them).
    #[arg(long, default_value = "8,7,6,5,4,3,2,1", value_parser = parse_widths)]
    pub widths: ::std::vec::Vec<Bits>,
    /// Quantize the projections' inputs without SmoothQuant's per-channel factors.
    #[arg(long)]
    pub no_smooth: bool,
}

pub(crate) fn parse_bits(s: &str) -> Result<Bits, String> {
    let b: u8 = s.trim().parse().map_err(|_| format!("`{s}` is not a bit width (an integer in 1..=8)"))?;
    Bits::new(b).map_err(|_| format!("{b} bits must be in 1..=8"))
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// Data set: mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Directory with the four IDX files, gzip or not [default: /work/shared/data/mnist for
    /// mnist, /usr/share/datasets/fashion-mnist for fashion-mnist].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataArgs {
    /// The data set's name and the directory to read it from.
    pub fn resolve(&self) -> (String, PathBuf) {
        let dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| data::default_dir(&self.dataset));
        (self.dataset.clone(), dir)
    }
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Architecture: `cN` 3x3 conv with N channels + switchable BN, `p` 2x2 max-pool, `fN` the
    /// final dense layer with N outputs.
    #[arg(long, default_value_t = TrainConfig::default().arch)]
    pub arch: String,
    /// Weight widths to train, e.g. 8,4,2,1 or 1-8: one is a dedicated model, several one
    /// any-precision model (the widest teaches the others).
    #[arg(long, default_value = "8", value_parser = parse_widths)]
    pub widths: ::std::vec::Vec<Bits>,
    /// Passes over the training set.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: usize,
    /// Images per optimizer step.
    #[arg(long, default_value_t = TrainConfig::default().batch)]
    pub batch: usize,
    /// Adam learning rate, cosine decay to zero after a 2% warm-up.
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    pub lr: f32,
    /// Learning rate of the PACT activation clips (they get their own).
    #[arg(long, default_value_t = TrainConfig::default().clip_lr)]
    pub clip_lr: f32,
    /// Weight decay of the weights and BN parameters (not the clips).
    #[arg(long = "wd", default_value_t = TrainConfig::default().weight_decay)]
    pub weight_decay: f32,
    /// Initial PACT clip of every quantized layer's input.
    #[arg(long, default_value_t = TrainConfig::default().clip_init)]
    pub clip_init: f32,
    /// Seed of initialization, shuffling and augmentation.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// Random translation of training images by up to this many pixels.
    #[arg(long, default_value_t = TrainConfig::default().shift)]
    pub shift: usize,
    /// Mirror half the training images left-right (for Fashion-MNIST; digits are not symmetric).
    #[arg(long)]
    pub flip: bool,
    /// Every width learns from the labels (default: each lower width from the next higher one's
    /// output).
    #[arg(long)]
    pub no_distill: bool,
    /// Train on only the first this many images (0: all).
    #[arg(long, default_value_t = TrainConfig::default().limit)]
    pub limit: usize,
    /// Widths trained through the wavelet (Haar) path instead of the nested codes (trainer only:
    /// export leaves them out) [default: none].
    #[arg(long, value_name = "WIDTHS", value_parser = parse_widths)]
    pub wavelet_widths: Option<::std::vec::Vec<Bits>>,
    /// Levels of the wavelet transform, 1..=4.
    #[arg(long, default_value_t = TrainConfig::default().wavelet_levels)]
    pub wavelet_levels: usize,
    /// Bits of the wavelet sub-bands LL, HL/LH, HH relative to the width, each in -7..=7.
    #[arg(long, default_value = "+1,0,-1", value_parser = parse_alloc, allow_hyphen_values = true)]
    pub wavelet_alloc: (i8, i8, i8),
    /// Start from another run's checkpoint: its weights, BN and clips, with a fresh optimizer and
    /// schedule (same architecture and data set; widths it did not train take its nearest trained
    /// width's BN and clips).
    #[arg(long, value_name = "CKPT")]
    pub init: Option<String>,
    /// Activation bits at the input of the any-precision layers never fall below N (1: as many as
    /// the weights; 2: the 1-bit width runs W1A2, declared as such in the file).
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_min_act_bits)]
    pub min_act_bits: Bits,
    /// Checkpoint directory (state.safetensors + meta.json, written atomically).
    #[arg(long, value_name = "DIR")]
    pub ckpt: Option<PathBuf>,
    /// Continue from the checkpoint in --ckpt if there is one (else start fresh).
    #[arg(long, requires = "ckpt")]
    pub resume: bool,
    /// Write a checkpoint every this many steps (also every 5 minutes and at the end).
    #[arg(long, default_value_t = 100)]
    pub ckpt_every: usize,
    /// Stop after this many steps in this call (resume later with --resume) [default: run to the
    /// end].
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Evaluate on only the first this many test images [default: all].
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Export the trained model to this `.anybit` file (skipped when absent or stopped early).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub export: ExportOpts,
}

impl TrainArgs {
    pub fn config(&self, dataset: &str) -> TrainConfig {
        let mut widths = self.widths.clone();
        widths.sort_unstable_by(|x, y| y.cmp(x));
        TrainConfig {
            dataset: dataset.into(),
            arch: self.arch.clone(),
            widths,
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr,
            clip_lr: self.clip_lr,
            weight_decay: self.weight_decay,
            clip_init: self.clip_init,
            seed: self.seed,
            shift: self.shift,
            flip: self.flip,
            distill: !self.no_distill,
            limit: self.limit,
            wavelet_widths: self.wavelet_widths.clone().unwrap_or_default(),
            wavelet_levels: self.wavelet_levels,
            wavelet_alloc: self.wavelet_alloc,
            init: self.init.clone(),
            min_act_bits: self.min_act_bits,
        }
    }
}

/// How a trained net becomes a file (train --out, and export).
#[derive(Debug, Args)]
pub struct ExportOpts {
    /// Widths the file carries; untrained ones get BN and clips from the nearest trained width
    /// and re-estimated BN statistics.
    #[arg(long, value_name = "WIDTHS", default_value = "1-8", value_parser = parse_widths)]
    pub export_widths: ::std::vec::Vec<Bits>,
    /// Training batches that re-estimate the BN statistics of each untrained width.
    #[arg(long, default_value_t = 20)]
    pub calib_batches: usize,
    /// Model name written into the file [default: DATASET-cnn].
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Checkpoint directory written by `anybit train --ckpt`.
    #[arg(long, value_name = "DIR")]
    pub ckpt: PathBuf,
    /// The `.anybit` file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Directory with the checkpoint's data set [default: that data set's default directory].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub export: ExportOpts,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The `.anybit` file.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Weight widths to evaluate, e.g. 1,2,4 or 1-8; each must be in the file.
    #[arg(long, default_value = "1-8", value_parser = parse_widths)]
    pub bits: ::std::vec::Vec<Bits>,
    /// Evaluate on only the first this many test images [default: all].
    #[arg(long)]
    pub limit: Option<usize>,
    /// Worker threads, each with its own model [default: the number of CPUs].
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct AttackArgs {
    /// The `.anybit` file.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// fgsm, bim, pgd-linf, pgd-l2, mi-fgsm, deepfool or cw-l2.
    #[arg(long, value_parser = parse_attack)]
    pub attack: anybit::attack::AttackKind,
    /// Correct every gradient with ADV-ReLU (arXiv 2010.10712).
    #[arg(long)]
    pub adv_relu: bool,
    /// ADV-ReLU's tentative step (L2, pixel scale).
    #[arg(long, default_value_t = anybit::grad::DEFAULT_ETA, requires = "adv_relu", allow_hyphen_values = true)]
    pub adv_eta: f32,
    /// ADV-ReLU's share of state-changing units per gate whose gradient is inverted.
    #[arg(long, default_value_t = anybit::grad::DEFAULT_FRACTION, requires = "adv_relu")]
    pub adv_fraction: f32,
    /// Perturbation budget on the pixel scale [0, 1] (Linf, or L2 for pgd-l2) [default: the
    /// attack's, docs/ATTACKS.md].
    #[arg(long, allow_hyphen_values = true)]
    pub eps: Option<f32>,
    /// Iterations (C&W: Adam steps per constant) [default: the attack's].
    #[arg(long)]
    pub steps: Option<u32>,
    /// Step size (C&W: Adam's learning rate) [default: the attack's].
    #[arg(long, allow_hyphen_values = true)]
    pub step_size: Option<f32>,
    /// Targeted attack towards this class [default: untargeted]. Images of that class are skipped.
    #[arg(long)]
    pub target: Option<usize>,
    /// PGD: binary-search the smallest budget up to --eps that succeeds.
    #[arg(long)]
    pub min_eps: bool,
    /// Binary-search steps (C&W's constant; the budget with --min-eps) [default: 9 / 8].
    #[arg(long)]
    pub search_steps: Option<u32>,
    /// Attack the first N images that the model classifies correctly at each width.
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Weight widths to attack, e.g. 8,4,2,1 or 1-8.
    #[arg(long, default_value = "8,4,2,1", value_parser = parse_widths)]
    pub bits: ::std::vec::Vec<Bits>,
    /// Craft at each width and evaluate at every width (the cross-precision success matrix), on
    /// the first N images classified correctly at every width in --bits.
    #[arg(long)]
    pub transfer: bool,
    /// Attack training images instead of test images (for tuning without touching the test set).
    #[arg(long)]
    pub train_split: bool,
    /// Seed of the random starts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads, each with its own model [default: the number of CPUs].
    #[arg(long)]
    pub threads: Option<usize>,
}

fn parse_attack(s: &str) -> Result<anybit::attack::AttackKind, String> {
    s.parse().map_err(|e: anybit::Error| e.message().to_string())
}

#[derive(Debug, Args)]
pub struct FixtureArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Directory to write the two IDX files to.
    #[arg(long, value_name = "DIR", default_value = "fixtures")]
    pub out_dir: PathBuf,
    /// Number of test images to cut.
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// File name prefix [default: mnist-tN or fmnist-tN].
    #[arg(long)]
    pub prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The `.anybit` file to read.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Where to write the upgraded file [default: over --model].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// "1,2,4" or "1-8" or a mix: "1-3,8". Each in 1..=8, deduplicated, in the given order.
pub fn parse_widths(s: &str) -> Result<Vec<Bits>, String> {
    let width = |t: &str| -> Result<Bits, String> {
        let b: u8 = t
            .trim()
            .parse()
            .map_err(|_| format!("`{t}` is not a width (an integer in 1..=8)"))?;
        Bits::new(b).map_err(|_| format!("width {b} must be in 1..=8"))
    };
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (width(a)?, width(b)?),
            None => (width(part)?, width(part)?),
        };
        if lo > hi {
            return Err(format!("width range `{part}` runs downwards"));
        }
        for w in (lo.get()..=hi.get()).filter_map(|b| Bits::new(b).ok()) {
            if !v.contains(&w) {
                v.push(w);
            }
        }
    }
    if v.is_empty() {
        return Err(format!("no widths in `{s}`"));
    }
    Ok(v)
}

fn parse_min_act_bits(s: &str) -> Result<Bits, String> {
    s.trim()
        .parse::<u8>()
        .ok()
        .and_then(|b| Bits::new(b).ok())
        .ok_or_else(|| format!("minimum activation bits {s} must be in 1..=8"))
}

/// "+1,0,-1": bits of LL, HL/LH, HH relative to the width.
fn parse_alloc(s: &str) -> Result<(i8, i8, i8), String> {
    let v: Vec<i8> = s
        .split(',')
        .map(|t| t.trim().trim_start_matches('+').parse::<i8>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{s}`: expected three integers like +1,0,-1"))?;
    match v[..] {
        [a, b, c] if [a, b, c].iter().all(|x| (-7..=7).contains(x)) => Ok((a, b, c)),
        _ => Err(format!("`{s}`: expected three integers in -7..=7")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("anybit").chain(args.iter().copied()))
    }

    fn train(args: &[&str]) -> TrainArgs {
        match parse(&[&["train"], args].concat()).unwrap().command {
            Command::Train(a) => *a,
            c => panic!("{c:?}"),
        }
    }

    fn get(v: &[Bits]) -> Vec<u8> {
        v.iter().map(|b| b.get()).collect()
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn widths() {
        assert_eq!(get(&parse_widths("1-3,8").unwrap()), [1, 2, 3, 8]);
        assert_eq!(get(&parse_widths("8,4,2,1").unwrap()), [8, 4, 2, 1]);
        assert_eq!(get(&parse_widths("2,1-3").unwrap()), [2, 1, 3]);
        for bad in ["0", "9", "5-3", "", "x", "1-9"] {
            assert!(parse_widths(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn train_defaults_are_the_configs() {
        assert_eq!(train(&[]).config("mnist"), TrainConfig::default());
    }

    #[test]
    fn train_options_reach_the_config() {
        let c = train(&[
            "--widths=1,8,2,4",
            "--min-act-bits",
            "2",
            "--wd=1e-4",
            "--clip-lr",
            "0.5",
            "--flip",
            "--no-distill",
            "--wavelet-widths",
            "2,1",
            "--wavelet-alloc",
            "-1,0,-1",
        ])
        .config("fashion-mnist");
        assert_eq!(
            get(&c.widths),
            [8, 4, 2, 1],
            "trained widths run widest first"
        );
        assert_eq!(
            (c.min_act_bits.get(), c.weight_decay, c.clip_lr),
            (2, 1e-4, 0.5)
        );
        assert!(c.flip && !c.distill);
        assert_eq!(
            (get(&c.wavelet_widths), c.wavelet_alloc),
            (vec![2, 1], (-1, 0, -1))
        );
        assert_eq!(c.dataset, "fashion-mnist");
    }

    #[test]
    fn usage_errors_name_the_flag() {
        for (args, flag) in [
            (&["train", "--widths", "8,9"][..], "--widths"),
            (&["eval", "--model", "m", "--bits", "0"][..], "--bits"),
            (&["train", "--min-act-bits", "9"][..], "--min-act-bits"),
            (&["train", "--typo", "2"][..], "--typo"),
            (&["train", "--resume"][..], "--ckpt"),
            (&["export", "--out", "x"][..], "--ckpt"),
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(flag), "{args:?}: {e}");
        }
    }
}
