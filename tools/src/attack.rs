//! `anybit attack`: the runtime's attacks (`anybit::attack`) over test images, width by width,
//! with the cross-precision transfer matrix.

use std::time::Instant;

use anybit::attack::{argmax, Attack, AttackKind, Params};
use anybit::grad::AdvRelu;
use anybit::model::Model;
use anybit::Bits;
use anyhow::{anyhow, bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

use crate::data::Dataset;

/// What to run: the attack, its parameters, and how many correctly classified images.
pub struct Plan {
    pub kind: AttackKind,
    pub params: Params,
    pub n: usize,
    pub threads: usize,
}

/// One attacked image.
#[derive(Clone, Debug)]
pub struct Attacked {
    pub index: usize,
    pub success: bool,
    pub l2: f32,
    pub linf: f32,
    pub ms: f64,
    pub adversarial: Vec<f32>,
}

/// Per-width summary of a set of attacked images.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub success: f64,
    pub l2_mean: f64,
    pub l2_median: f64,
    pub linf_mean: f64,
    pub ms_per_image: f64,
}

impl Summary {
    pub fn of(results: &[Attacked]) -> Summary {
        let ok: Vec<&Attacked> = results.iter().filter(|r| r.success).collect();
        let mean = |f: &dyn Fn(&Attacked) -> f64| {
            if ok.is_empty() {
                f64::NAN
            } else {
                ok.iter().map(|r| f(r)).sum::<f64>() / ok.len() as f64
            }
        };
        let mut l2: Vec<f64> = ok.iter().map(|r| r.l2 as f64).collect();
        l2.sort_by(f64::total_cmp);
        let median = match l2.len() {
            0 => f64::NAN,
            k if k % 2 == 1 => l2[k / 2],
            k => 0.5 * (l2[k / 2 - 1] + l2[k / 2]),
        };
        Summary {
            n: results.len(),
            success: ok.len() as f64 / results.len().max(1) as f64,
            l2_mean: mean(&|r| r.l2 as f64),
            l2_median: median,
            linf_mean: mean(&|r| r.linf as f64),
            ms_per_image: results.iter().map(|r| r.ms).sum::<f64>() / results.len().max(1) as f64,
        }
    }

    pub fn to_json(&self) -> Value {
        let r = |v: f64, k: f64| if v.is_finite() { json!((v * k).round() / k) } else { Value::Null };
        json!({
            "n": self.n,
            "success": r(self.success, 1e4),
            "l2_mean": r(self.l2_mean, 1e4),
            "l2_median": r(self.l2_median, 1e4),
            "linf_mean": r(self.linf_mean, 1e4),
            "ms_per_image": r(self.ms_per_image, 1e2),
        })
    }
}

fn model_at(bytes: &[u8], w: Bits) -> Result<Model> {
    let mut m = Model::from_bytes(bytes).map_err(|e| anyhow!("{e}"))?;
    m.set_width(w).map_err(|e| anyhow!("width {w}: {e}"))?;
    Ok(m)
}

/// Runs `f(model, i)` for each of `items` on `threads` threads, each with its own model at `w`,
/// in the items' order.
fn parallel<T: Send>(
    bytes: &[u8],
    w: Bits,
    items: &[usize],
    threads: usize,
    f: &(dyn Fn(&mut Model, usize) -> Result<T> + Sync),
) -> Result<Vec<T>> {
    let threads = threads.clamp(1, 64).min(items.len().max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<T>>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || -> Result<Vec<T>> {
                    let mut m = model_at(bytes, w)?;
                    part.iter().map(|&i| f(&mut m, i)).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("worker panicked")))).collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Indices of the first `n` images (in order) classified correctly at every width in `widths`,
/// skipping the target class of a targeted attack.
pub fn correct_images(bytes: &[u8], ds: &Dataset, widths: &[Bits], n: usize, skip: Option<usize>, threads: usize) -> Result<Vec<usize>> {
    let mut chosen = Vec::new();
    let mut start = 0;
    while chosen.len() < n && start < ds.len() {
        let end = (start + (n - chosen.len()) * 11 / 10 + 16).min(ds.len());
        let batch: Vec<usize> = (start..end).filter(|&i| Some(ds.labels[i] as usize) != skip).collect();
        let mut ok = vec![true; batch.len()];
        for &w in widths {
            let pred = parallel(bytes, w, &batch, threads, &|m, i| {
                Ok(argmax(&m.run(ds.image(i)).map_err(|e| anyhow!("image {i}: {e}"))?))
            })?;
            for (k, (&i, p)) in batch.iter().zip(pred).enumerate() {
                ok[k] &= p == ds.labels[i] as usize;
            }
        }
        chosen.extend(batch.iter().zip(ok).filter(|(_, ok)| *ok).map(|(&i, _)| i).take(n - chosen.len()));
        start = end;
    }
    if chosen.len() < n {
        eprintln!("only {} images qualify (asked for {n})", chosen.len());
    }
    Ok(chosen)
}

/// Attacks each image of `items` at width `w`.
pub fn attack_all(bytes: &[u8], ds: &Dataset, w: Bits, items: &[usize], plan: &Plan, pb: &ProgressBar) -> Result<Vec<Attacked>> {
    parallel(bytes, w, items, plan.threads, &|m, i| {
        let t0 = Instant::now();
        let mut params = plan.params.clone();
        params.seed = plan.params.seed.wrapping_add(i as u64);
        let attack = Attack::new(m, ds.image(i), ds.labels[i] as usize, plan.kind, &params).map_err(|e| anyhow!("{e}"))?;
        let out = attack.run(m).map_err(|e| anyhow!("image {i} at width {w}: {e}"))?;
        pb.inc(1);
        Ok(Attacked { index: i, success: out.success, l2: out.l2, linf: out.linf, ms: t0.elapsed().as_secs_f64() * 1e3, adversarial: out.adversarial })
    })
}

/// Share of `adv` that meets the goal at width `w`.
pub fn success_at(bytes: &[u8], ds: &Dataset, w: Bits, adv: &[Attacked], target: Option<usize>, threads: usize) -> Result<f64> {
    let idx: Vec<usize> = (0..adv.len()).collect();
    let met = parallel(bytes, w, &idx, threads, &|m, k| {
        let z = m.run(&adv[k].adversarial).map_err(|e| anyhow!("{e}"))?;
        let top = argmax(&z);
        Ok(match target {
            Some(t) => top == t,
            None => top != ds.labels[adv[k].index] as usize,
        })
    })?;
    Ok(met.iter().filter(|&&m| m).count() as f64 / met.len().max(1) as f64)
}

pub fn progress(len: u64) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ({eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// The whole command: a table per width (and the transfer matrix) and the JSON object.
pub fn run(bytes: &[u8], ds: &Dataset, widths: &[Bits], plan: &Plan, transfer: bool) -> Result<Value> {
    let model = Model::from_bytes(bytes).map_err(|e| anyhow!("{e}"))?;
    for &w in widths {
        if !model.widths().iter().any(|x| x.w == w) {
            bail!("the model has no width {w} (it has {:?})", model.widths().iter().map(|x| x.w.get()).collect::<Vec<_>>());
        }
    }
    let skip = plan.params.target;
    let shared = if transfer { Some(correct_images(bytes, ds, widths, plan.n, skip, plan.threads)?) } else { None };
    let pb = progress(0);
    let mut per_width = Vec::new();
    for &w in widths {
        let items = match &shared {
            Some(s) => s.clone(),
            None => correct_images(bytes, ds, &[w], plan.n, skip, plan.threads)?,
        };
        pb.inc_length(items.len() as u64);
        pb.set_message(format!("width {w}"));
        per_width.push((w, attack_all(bytes, ds, w, &items, plan, &pb)?));
    }
    pb.finish_and_clear();
    let mut bits = Map::new();
    println!("| width | images | success | L2 mean | L2 median | Linf mean | ms/image |");
    println!("|---|---|---|---|---|---|---|");
    for (w, res) in &per_width {
        let s = Summary::of(res);
        println!(
            "| {w} | {} | {:.1}% | {:.3} | {:.3} | {:.3} | {:.1} |",
            s.n,
            s.success * 100.0,
            s.l2_mean,
            s.l2_median,
            s.linf_mean,
            s.ms_per_image
        );
        bits.insert(w.to_string(), s.to_json());
    }
    let mut out = json!({"bits": bits});
    if transfer {
        let mut matrix = Map::new();
        println!("\ntransfer: crafted at (rows) -> success at (columns)");
        println!("| crafted \\ run | {} |", widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(" | "));
        println!("|---|{}", "---|".repeat(widths.len()));
        for (c, res) in &per_width {
            let mut row = Map::new();
            let mut cells = Vec::new();
            for &e in widths {
                let rate = success_at(bytes, ds, e, res, skip, plan.threads)?;
                cells.push(format!("{:.1}%", rate * 100.0));
                row.insert(e.to_string(), json!((rate * 1e4).round() / 1e4));
            }
            println!("| {c} | {} |", cells.join(" | "));
            matrix.insert(c.to_string(), Value::Object(row));
        }
        out["transfer"] = Value::Object(matrix);
    }
    Ok(out)
}

/// ADV-ReLU settings from the command line.
pub fn adv_relu(on: bool, eta: f32, fraction: f32) -> Option<AdvRelu> {
    on.then(|| AdvRelu { eta, fraction, ..AdvRelu::default() })
}
