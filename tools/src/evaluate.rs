//! Accuracy per width measured with the RUNTIME (`anybit::model::Model`), the code that ships.

use anybit::format::Width;
use anybit::Bits;
use anyhow::{anyhow, bail, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::Dataset;

/// Predicted class of each sample at `width`, computed on `threads` threads, each with its own
/// model (the runtime's `Model` is single-threaded).
pub fn predict(bytes: &[u8], ds: &Dataset, width: Bits, threads: usize, pb: &ProgressBar) -> Result<Vec<usize>> {
    let n = ds.len();
    let threads = threads.clamp(1, 16).min(n.max(1));
    let chunk = n.div_ceil(threads);
    let results: Vec<Result<Vec<usize>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> Result<Vec<usize>> {
                    let mut m = anybit::model::Model::from_bytes(bytes).map_err(|e| anyhow!("{e}"))?;
                    m.set_width(width).map_err(|e| anyhow!("{e}"))?;
                    let mut out = Vec::new();
                    for i in (t * chunk)..((t + 1) * chunk).min(n) {
                        let logits = m.run(ds.image(i)).map_err(|e| anyhow!("sample {i}: {e}"))?;
                        out.push(argmax(&logits));
                        pb.inc(1);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("worker panicked")))).collect()
    });
    let mut all = Vec::with_capacity(n);
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Accuracy per requested weight width, each with the (weight, activation) bits the file declares.
pub fn eval_widths(bytes: &[u8], ds: &Dataset, bits: &[Bits], threads: usize) -> Result<Vec<(Width, f64)>> {
    let model = anybit::model::Model::from_bytes(bytes).map_err(|e| anyhow!("{e}"))?;
    let mut widths = Vec::new();
    for &b in bits {
        match model.widths().iter().find(|w| w.w == b.get()) {
            Some(w) => widths.push(*w),
            None => bail!("the model has no width {b} (it has {:?})", model.widths().iter().map(|w| w.w).collect::<Vec<_>>()),
        }
    }
    let pb = ProgressBar::new((ds.len() * bits.len()) as u64);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ({eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut table = Vec::new();
    for (&b, w) in bits.iter().zip(widths) {
        pb.set_message(format!("width {b}"));
        let pred = predict(bytes, ds, b, threads, &pb)?;
        let correct = pred.iter().zip(&ds.labels).filter(|(p, l)| **p == **l as usize).count();
        table.push((w, correct as f64 / ds.len().max(1) as f64));
    }
    pb.finish_and_clear();
    Ok(table)
}
