//! `anybit`: train, export and evaluate any-precision models. The options of each subcommand are
//! in `tools/src/cli.rs` and its `--help`; typical invocations in tools/README.md.

use std::path::Path;
use std::time::Instant;

use anybit::Bits;
use anybit_tools::cli::{AttackArgs, Cli, Command, EvalArgs, ExportArgs, ExportOpts, FixtureArgs, ImportArgs, TokenizeArgs, TrainArgs, UpgradeArgs};
use anybit_tools::data::{self, Split};
use anybit_tools::train::{self, Trainer};
use anybit_tools::{evaluate, tune_allocator};
use anyhow::{bail, Context, Result};
use clap::Parser;

fn main() {
    tune_allocator();
    // Usage errors exit here with clap's message and status 2; run-time errors below with 1.
    let res = match Cli::parse().command {
        Command::Train(a) => cmd_train(*a),
        Command::Export(a) => cmd_export(a),
        Command::Eval(a) => cmd_eval(a),
        Command::Fixture(a) => cmd_fixture(a),
        Command::Upgrade(a) => cmd_upgrade(a),
        Command::Attack(a) => cmd_attack(*a),
        Command::Import(a) => cmd_import(a),
        Command::CfTrain(a) => anybit_tools::cf::train::cli(&a),
        Command::Tokenize(a) => cmd_tokenize(a),
        Command::CfEval(a) => anybit_tools::cf::eval::cli(&a),
        Command::PeerExport(a) => anybit_tools::peer::peer_export(&a),
        Command::BenchModel(a) => anybit_tools::peer::bench_model(&a),
    };
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Widths as the command line takes them: "8,2,1".
fn list(widths: &[Bits]) -> String {
    widths.iter().map(Bits::to_string).collect::<Vec<_>>().join(",")
}

fn finish_export(t: &Trainer, out: &Path, opts: &ExportOpts, test: &data::Dataset) -> Result<()> {
    let widths = &opts.export_widths;
    let name = opts.name.clone().unwrap_or_else(|| format!("{}-cnn", t.cfg.dataset));
    train::fill_untrained(&t.net, &t.cfg.widths, widths, t.train, opts.calib_batches, t.cfg.batch, t.cfg.seed)?;
    let rep = train::export_model(&t.net, &t.cfg.dataset, &name, widths, test, out)?;
    println!("wrote {} ({} bytes), trained {:.0} s", out.display(), rep.bytes, t.wall_s);
    for (w, acc) in &rep.accuracy {
        println!("  w{w}: {:.2}%", acc * 100.0);
    }
    Ok(())
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    let (ds, dir) = a.data.resolve();
    let cfg = a.config(&ds);
    let ckpt = a.ckpt.as_deref();
    let train_ds = data::load(&dir, &ds, Split::Train)?;
    let test = data::load(&dir, &ds, Split::Test)?;
    let test = test.truncate(a.test_limit.unwrap_or(usize::MAX));
    let mut t = Trainer::new(cfg, &train_ds)?;
    let mut resumed = false;
    if let (true, Some(c)) = (a.resume, ckpt) {
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
        eprintln!("weights, BN and clips from {init} (trained at widths {}); new optimizer and schedule", list(&src));
    }
    eprintln!(
        "training {} on {} images, widths {}, {} steps/epoch x {} epochs",
        t.cfg.arch,
        t.steps_per_epoch() * t.cfg.batch,
        list(&t.cfg.widths),
        t.steps_per_epoch(),
        t.cfg.epochs
    );
    t.run(ckpt, a.ckpt_every, a.max_steps)?;
    for &w in &t.cfg.widths {
        eprintln!("width {w}: test accuracy {:.2}%", train::evaluate(&t.net, &test, w)? * 100.0);
    }
    if t.step < t.total_steps() {
        println!("stopped at step {}/{} (resume with --resume --ckpt)", t.step, t.total_steps());
        return Ok(());
    }
    if let Some(out) = &a.out {
        finish_export(&t, out, &a.export, &test)?;
    }
    Ok(())
}

fn cmd_export(a: ExportArgs) -> Result<()> {
    let cfg = train::checkpoint_config(&a.ckpt)?;
    let dir = a.data_dir.clone().unwrap_or_else(|| data::default_dir(&cfg.dataset));
    let train_ds = data::load(&dir, &cfg.dataset, Split::Train)?;
    let test = data::load(&dir, &cfg.dataset, Split::Test)?;
    let mut t = Trainer::new(cfg, &train_ds)?;
    t.resume(&a.ckpt)?;
    finish_export(&t, &a.out, &a.export, &test)
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let model = &a.model;
    let (ds, dir) = a.data.resolve();
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let test = data::load(&dir, &ds, Split::Test)?.truncate(a.limit.unwrap_or(usize::MAX));
    let t0 = Instant::now();
    let table = evaluate::eval_widths(&bytes, &test, &a.bits, threads)?;
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
fn cmd_fixture(a: FixtureArgs) -> Result<()> {
    let (ds, dir) = a.data.resolve();
    let (out, n) = (&a.out_dir, a.n);
    let prefix = a.prefix.clone().unwrap_or_else(|| format!("{}-t{n}", if ds == "mnist" { "mnist" } else { "fmnist" }));
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
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join(format!("{prefix}-images.idx3")), oi)?;
    std::fs::write(out.join(format!("{prefix}-labels.idx1")), ol)?;
    println!("wrote {n} samples to {}/{prefix}-{{images.idx3,labels.idx1}}", out.display());
    Ok(())
}

fn cmd_upgrade(a: UpgradeArgs) -> Result<()> {
    let model = &a.model;
    let out = a.out.as_ref().unwrap_or(model);
    let old = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let new = anybit::format::upgrade(&old).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    std::fs::write(out, &new).with_context(|| format!("writing {}", out.display()))?;
    let version = |b: &[u8]| anybit::format::read(b).map(|f| f.graph().version).unwrap_or(0);
    println!("{} (version {}, {} bytes) -> {} (version {}, {} bytes)", model.display(), version(&old), old.len(), out.display(), version(&new), new.len());
    Ok(())
}

fn cmd_attack(a: AttackArgs) -> Result<()> {
    use anybit::attack::shortest;
    use anybit_tools::attack;
    let model = &a.model;
    let (ds, dir) = a.data.resolve();
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let split = if a.train_split { Split::Train } else { Split::Test };
    let data = data::load(&dir, &ds, split)?;
    let params = anybit::attack::Params {
        eps: a.eps,
        steps: a.steps,
        step_size: a.step_size,
        target: a.target,
        adv_relu: attack::adv_relu(a.adv_relu, a.adv_eta, a.adv_fraction),
        min_eps: a.min_eps,
        search_steps: a.search_steps,
        seed: a.seed,
    };
    // Checked once here, so a bad value is one clear message before any image is loaded.
    let probe = anybit::model::Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let classes = probe.output_shape().iter().product();
    let settings = anybit::attack::Settings::resolve(a.attack, &params, data.pixels(), classes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = attack::Plan { kind: a.attack, params, n: a.n, threads };
    let t0 = Instant::now();
    eprintln!(
        "{} on {} ({ds}, {}), widths {}{}: eps {}, steps {}, step {}{}",
        a.attack,
        model.display(),
        if a.train_split { "training images" } else { "test images" },
        list(&a.bits),
        if a.adv_relu { ", ADV-ReLU" } else { "" },
        shortest(settings.eps),
        settings.steps,
        shortest(settings.step_size),
        settings.target.map_or(String::new(), |t| format!(", target {t}"))
    );
    let mut out = attack::run(&bytes, &data, &a.bits, &plan, a.transfer)?;
    println!("({:.1} s)", t0.elapsed().as_secs_f64());
    let head = serde_json::json!({
        "model": model.display().to_string(),
        "dataset": ds,
        "attack": a.attack.name(),
        "adv_relu": a.adv_relu,
        "n": a.n,
        "settings": {
            "eps": shortest(settings.eps), "steps": settings.steps, "step_size": shortest(settings.step_size),
            "target": settings.target, "min_eps": settings.min_eps, "search_steps": settings.search_steps,
            "adv_eta": a.adv_relu.then_some(shortest(a.adv_eta)), "adv_fraction": a.adv_relu.then_some(shortest(a.adv_fraction)),
            "split": if a.train_split { "train" } else { "test" }, "seed": a.seed,
        },
    });
    let mut obj = head.as_object().cloned().unwrap_or_default();
    if let Some(rest) = out.as_object_mut() {
        obj.extend(std::mem::take(rest));
    }
    println!("{}", serde_json::Value::Object(obj));
    Ok(())
}

fn cmd_import(a: ImportArgs) -> Result<()> {
    let t0 = Instant::now();
    let opts = anybit_tools::import::ImportOptions {
        dir: a.from.clone(),
        name: a.name,
        max_tokens: a.max_tokens,
        embed_bits: a.embed_bits,
        pooling: a.pooling,
        widths: a.widths.clone(),
        smooth: !a.no_smooth,
        task: None,
        eval: Vec::new(),
    };
    println!("importing {} (widths {}, word embeddings at {} bits)", a.from.display(), list(&a.widths), a.embed_bits);
    let m = anybit_tools::import::import(&opts)?;
    std::fs::write(&a.out, &m.bytes).with_context(|| format!("writing {}", a.out.display()))?;
    let text = m.graph.text.as_ref().expect("an import is a text model");
    println!(
        "wrote {} ({} bytes): {} parameters, vocabulary {}, up to {} tokens; embedding table {} bytes, {} bytes per bit plane ({:.1} s)",
        a.out.display(),
        m.bytes.len(),
        m.params,
        text.vocab.len(),
        m.max_tokens,
        m.table_bytes,
        m.plane_bytes,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cmd_tokenize(a: TokenizeArgs) -> Result<()> {
    use anybit_tools::tokenize;
    let tok = tokenize::tokenizer_of(&a.model)?;
    let texts = match (a.text, a.csv) {
        (Some(t), _) => vec![t],
        (None, Some(path)) => tokenize::csv_column(&path, &a.column)?,
        (None, None) => unreachable!("clap requires --text or --csv"),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    tokenize::run(&tok, &texts, &mut out)?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}
