//! `anybit`: train, export and evaluate any-precision models.
//!
//!   anybit train   --dataset mnist --data-dir DIR --widths 8,4,2,1 --epochs 2 --out models/x.anybit [--ckpt DIR [--resume]] [--init CKPT]
//!   anybit export  --ckpt DIR --out FILE [--data-dir DIR]
//!   anybit eval    --model FILE --dataset mnist --data-dir DIR --bits 1,2,3,4,5,6,7,8
//!   anybit fixture --data-dir DIR --out-dir fixtures --n 100
//!   anybit upgrade --model FILE [--out FILE]   (rewrite in the current format version)

use std::path::{Path, PathBuf};
use std::time::Instant;

use anybit_tools::args::{parse_bits, Args};
use anybit_tools::data::{self, Split};
use anybit_tools::train::{self, TrainConfig, Trainer};
use anybit_tools::{evaluate, tune_allocator};
use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: anybit <train|export|eval|fixture|upgrade> [--options]; see tools/README.md";

fn main() {
    tune_allocator();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let res = match argv.first().map(String::as_str) {
        Some("train") => cmd_train(&argv[1..]),
        Some("export") => cmd_export(&argv[1..]),
        Some("eval") => cmd_eval(&argv[1..]),
        Some("fixture") => cmd_fixture(&argv[1..]),
        Some("upgrade") => cmd_upgrade(&argv[1..]),
        _ => Err(anyhow::anyhow!(USAGE)),
    };
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn dataset_and_dir(a: &Args) -> Result<(String, PathBuf)> {
    let ds: String = a.get("dataset", "mnist".to_string())?;
    let dir = a.opt::<PathBuf>("data-dir")?.unwrap_or_else(|| data::default_dir(&ds));
    Ok((ds, dir))
}

fn train_config(a: &Args, dataset: &str) -> Result<TrainConfig> {
    let d = TrainConfig::default();
    let mut widths = match a.opt::<String>("widths")? {
        Some(s) => parse_bits(&s)?,
        None => d.widths.clone(),
    };
    widths.sort_unstable_by(|x, y| y.cmp(x));
    Ok(TrainConfig {
        dataset: dataset.into(),
        arch: a.get("arch", d.arch)?,
        widths,
        epochs: a.get("epochs", d.epochs)?,
        batch: a.get("batch", d.batch)?,
        lr: a.get("lr", d.lr)?,
        clip_lr: a.get("clip-lr", d.clip_lr)?,
        weight_decay: a.get("wd", d.weight_decay)?,
        clip_init: a.get("clip-init", d.clip_init)?,
        seed: a.get("seed", d.seed)?,
        shift: a.get("shift", d.shift)?,
        flip: a.flag("flip"),
        distill: !a.flag("no-distill"),
        limit: a.get("limit", d.limit)?,
        wavelet_widths: match a.opt::<String>("wavelet-widths")? {
            Some(s) => parse_bits(&s)?,
            None => d.wavelet_widths,
        },
        wavelet_levels: a.get("wavelet-levels", d.wavelet_levels)?,
        wavelet_alloc: match a.opt::<String>("wavelet-alloc")? {
            Some(s) => parse_alloc(&s)?,
            None => d.wavelet_alloc,
        },
        init: a.opt("init")?,
        min_act_bits: a.get("min-act-bits", d.min_act_bits)?,
    })
}

/// "+1,0,-1": bits of LL, HL/LH, HH relative to the width.
fn parse_alloc(s: &str) -> Result<(i8, i8, i8)> {
    let v: Vec<i8> = s
        .split(',')
        .map(|t| t.trim().trim_start_matches('+').parse::<i8>())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("--wavelet-alloc {s}: expected three integers like +1,0,-1"))?;
    match v[..] {
        [a, b, c] if [a, b, c].iter().all(|x| (-7..=7).contains(x)) => Ok((a, b, c)),
        _ => bail!("--wavelet-alloc {s}: expected three integers in -7..=7"),
    }
}

fn finish_export(t: &Trainer, a: &Args, test: &data::Dataset) -> Result<()> {
    let out: PathBuf = a.req("out")?;
    let widths = parse_bits(&a.get("export-widths", "1-8".to_string())?)?;
    let calib = a.get("calib-batches", 20usize)?;
    let name = a.get("name", format!("{}-cnn", t.cfg.dataset))?;
    train::fill_untrained(&t.net, &t.cfg.widths, &widths, t.train, calib, t.cfg.batch, t.cfg.seed)?;
    let rep = train::export_model(&t.net, &t.cfg.dataset, &name, &widths, test, &out)?;
    println!("wrote {} ({} bytes), trained {:.0} s", out.display(), rep.bytes, t.wall_s);
    for (w, acc) in &rep.accuracy {
        println!("  w{w}: {:.2}%", acc * 100.0);
    }
    Ok(())
}

fn cmd_train(argv: &[String]) -> Result<()> {
    let a = Args::parse(argv, &["resume", "no-distill", "flip"])?;
    let (ds, dir) = dataset_and_dir(&a)?;
    let cfg = train_config(&a, &ds)?;
    let ckpt: Option<PathBuf> = a.opt("ckpt")?;
    let resume = a.flag("resume");
    let every = a.get("ckpt-every", 100usize)?;
    let max_steps: Option<usize> = a.opt("max-steps")?;
    let train_ds = data::load(&dir, &ds, Split::Train)?;
    let test = data::load(&dir, &ds, Split::Test)?;
    let test = test.truncate(a.get("test-limit", usize::MAX)?);
    let mut t = Trainer::new(cfg, &train_ds)?;
    let mut resumed = false;
    if resume {
        let c = ckpt.as_deref().context("--resume needs --ckpt")?;
        if c.join("meta.json").exists() {
            t.resume(c)?;
            resumed = true;
            eprintln!("resumed from {} at step {}", c.display(), t.step);
        } else {
            eprintln!("no checkpoint in {} yet: starting fresh", c.display());
        }
    }
    if let (false, Some(init)) = (resumed, t.cfg.init.clone()) {
        let src = t.init_from(Path::new(&init))?;
        eprintln!("weights, BN and clips from {init} (trained at widths {src:?}); new optimizer and schedule");
    }
    a.finish_keys(&["out", "export-widths", "calib-batches", "name"]);
    a.finish()?;
    eprintln!(
        "training {} on {} images, widths {:?}, {} steps/epoch x {} epochs",
        t.cfg.arch,
        t.steps_per_epoch() * t.cfg.batch,
        t.cfg.widths,
        t.steps_per_epoch(),
        t.cfg.epochs
    );
    t.run(ckpt.as_deref(), every, max_steps)?;
    for &w in &t.cfg.widths {
        eprintln!("width {w}: test accuracy {:.2}%", train::evaluate(&t.net, &test, w)? * 100.0);
    }
    if t.step < t.total_steps() {
        println!("stopped at step {}/{} (resume with --resume --ckpt)", t.step, t.total_steps());
        return Ok(());
    }
    if a.opt::<PathBuf>("out")?.is_some() {
        finish_export(&t, &a, &test)?;
    }
    Ok(())
}

fn cmd_export(argv: &[String]) -> Result<()> {
    let a = Args::parse(argv, &[])?;
    let ckpt: PathBuf = a.req("ckpt")?;
    let cfg = train::checkpoint_config(&ckpt)?;
    let dir = a.opt::<PathBuf>("data-dir")?.unwrap_or_else(|| data::default_dir(&cfg.dataset));
    a.finish_keys(&["out", "export-widths", "calib-batches", "name"]);
    a.finish()?;
    let train_ds = data::load(&dir, &cfg.dataset, Split::Train)?;
    let test = data::load(&dir, &cfg.dataset, Split::Test)?;
    let mut t = Trainer::new(cfg, &train_ds)?;
    t.resume(&ckpt)?;
    finish_export(&t, &a, &test)
}

fn cmd_eval(argv: &[String]) -> Result<()> {
    let a = Args::parse(argv, &[])?;
    let model: PathBuf = a.req("model")?;
    let (ds, dir) = dataset_and_dir(&a)?;
    let bits = parse_bits(&a.get("bits", "1-8".to_string())?)?;
    let limit = a.get("limit", usize::MAX)?;
    let threads = a.get(
        "threads",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    )?;
    a.finish()?;
    let bytes = std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
    let test = data::load(&dir, &ds, Split::Test)?.truncate(limit);
    let t0 = Instant::now();
    let table = evaluate::eval_widths(&bytes, &test, &bits, threads)?;
    println!("model {}  dataset {ds}  n {}  ({:.1} s)", model.display(), test.len(), t0.elapsed().as_secs_f64());
    println!("| width | activation bits | accuracy |");
    println!("|---|---|---|");
    for (w, acc) in &table {
        println!("| {} | {} | {:.2}% |", w.w, w.a, acc * 100.0);
    }
    let acc: serde_json::Map<String, serde_json::Value> =
        table.iter().map(|(w, a)| (w.w.to_string(), serde_json::json!((a * 1e4).round() / 1e4))).collect();
    println!(
        "{}",
        serde_json::json!({"model": model.display().to_string(), "dataset": ds, "n": test.len(), "accuracy": acc})
    );
    Ok(())
}

/// Cuts the first `n` test images and labels into uncompressed IDX files.
fn cmd_fixture(argv: &[String]) -> Result<()> {
    let a = Args::parse(argv, &[])?;
    let (ds, dir) = dataset_and_dir(&a)?;
    let out: PathBuf = a.get("out-dir", PathBuf::from("fixtures"))?;
    let n: usize = a.get("n", 100)?;
    let prefix: String = a.get("prefix", format!("{}-t{n}", if ds == "mnist" { "mnist" } else { "fmnist" }))?;
    a.finish()?;
    let find = |stem: &str| -> Result<Vec<u8>> {
        for name in [stem.to_string(), format!("{stem}.gz")] {
            let p = dir.join(name);
            if p.is_file() {
                return data::read_maybe_gz(&p);
            }
        }
        bail!("{stem} not in {}", dir.display())
    };
    let img = find("t10k-images-idx3-ubyte")?;
    let lab = find("t10k-labels-idx1-ubyte")?;
    let (idims, ipix) = data::parse_idx_u8(&img, 3, "images")?;
    let (_, lpix) = data::parse_idx_u8(&lab, 1, "labels")?;
    if n == 0 || n > idims[0] {
        bail!("--n must be in 1..={}", idims[0]);
    }
    let px = idims[1] * idims[2];
    let mut oi = vec![0, 0, 8, 3];
    for d in [n, idims[1], idims[2]] {
        oi.extend_from_slice(&(d as u32).to_be_bytes());
    }
    oi.extend_from_slice(&ipix[..n * px]);
    let mut ol = vec![0, 0, 8, 1];
    ol.extend_from_slice(&(n as u32).to_be_bytes());
    ol.extend_from_slice(&lpix[..n]);
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join(format!("{prefix}-images.idx3")), oi)?;
    std::fs::write(out.join(format!("{prefix}-labels.idx1")), ol)?;
    println!("wrote {n} samples to {}/{prefix}-{{images.idx3,labels.idx1}}", out.display());
    Ok(())
}

fn cmd_upgrade(argv: &[String]) -> Result<()> {
    let a = Args::parse(argv, &[])?;
    let model: PathBuf = a.req("model")?;
    let out: PathBuf = a.get("out", model.clone())?;
    a.finish()?;
    let old = std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
    let new = anybit::format::upgrade(&old).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    std::fs::write(&out, &new).with_context(|| format!("writing {}", out.display()))?;
    let version = |b: &[u8]| anybit::format::read(b).map(|f| f.graph().version).unwrap_or(0);
    println!("{} (version {}, {} bytes) -> {} (version {}, {} bytes)", model.display(), version(&old), old.len(), out.display(), version(&new), new.len());
    Ok(())
}
