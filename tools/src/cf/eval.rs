//! Counterfactual detection measured with the RUNTIME: a `.anybit` counterfactual model
//! (`format::Task::Counterfactual`) run by `anybit::Model` and decoded by
//! `anybit::session::detect` (the same tokenizing, running and span decoding as the app), then
//! scored with the official metrics (`super::metrics`). `anybit cf-eval` prints these figures;
//! the exporter calls [`evaluate`] to fill the file's eval table and [`best_threshold`] to pick
//! each width's threshold.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anybit::format::Task;
use anybit::text::Tokenizer;
use anybit::{Bits, Model};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::data::{CharSpan, Sentence1, Sentence2};
pub use super::metrics::best_threshold;
use super::metrics::{subtask1, subtask2, BinaryScores, Quad, SpanScores};

/// What the model says about one sentence at one width.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The counterfactual class's probability.
    pub probability: f32,
    /// Character spans, end inclusive; the antecedent is `None` only for a text with no taggable
    /// token (scored as an illegal prediction).
    pub antecedent: Option<CharSpan>,
    pub consequent: Option<CharSpan>,
    pub antecedent_text: String,
    pub consequent_text: String,
    /// The sentence was longer than the model takes; spans lie in the part it saw.
    pub truncated: bool,
}

impl Prediction {
    pub fn quad(&self) -> Quad {
        Quad::from_spans(self.antecedent, self.consequent)
    }
}

/// A counterfactual model loaded once per worker thread, with its tokenizer.
pub struct Detector {
    models: Vec<Model>,
    tokenizer: Tokenizer,
    task: Task,
}

impl Detector {
    /// Loads `model_bytes` `threads` times (the runtime's `Model` runs on its caller's thread).
    /// Errors: a file that does not load, is not a text model, or has no counterfactual task.
    pub fn new(model_bytes: &[u8], threads: usize) -> Result<Detector> {
        let first = Model::from_bytes(model_bytes).map_err(|e| anyhow!("{e}"))?;
        let Some(text) = &first.graph().text else {
            bail!("this is an image model, not a counterfactual detector (it carries no vocabulary)");
        };
        let Some(task @ Task::Counterfactual { .. }) = first.graph().task.clone() else {
            bail!("this text model is not a counterfactual detector: its file has no counterfactual task");
        };
        let tokenizer = Tokenizer::new(text.vocab.clone(), text.tokenizer.clone()).map_err(|e| anyhow!("{e}"))?;
        let mut models = vec![first];
        for _ in 1..threads.max(1) {
            models.push(Model::from_bytes(model_bytes).map_err(|e| anyhow!("{e}"))?);
        }
        Ok(Detector { models, tokenizer, task })
    }

    /// The weight widths the file holds.
    pub fn widths(&self) -> Vec<Bits> {
        self.models[0].widths().iter().map(|w| w.w).collect()
    }

    /// An error naming the widths the file has when one of `widths` is not among them.
    pub fn check_widths(&self, widths: &[Bits]) -> Result<()> {
        let have = self.widths();
        match widths.iter().find(|w| !have.contains(w)) {
            Some(w) => bail!("the model has no width {w} (it has {})", list(&have)),
            None => Ok(()),
        }
    }

    /// The file's decision threshold at `w`.
    pub fn threshold(&self, w: Bits) -> f32 {
        self.task.threshold(w)
    }

    /// Every text's prediction at `width`, in order; `pb` advances once per text. An error
    /// (e.g. an empty sentence) names the text's index.
    pub fn predict(&mut self, texts: &[&str], width: Bits, pb: &ProgressBar) -> Result<Vec<Prediction>> {
        self.check_widths(&[width])?;
        for m in &mut self.models {
            m.set_width(width).map_err(|e| anyhow!("{e}"))?;
        }
        // Work is handed out one sentence at a time (lengths differ); results land by index.
        let next = AtomicUsize::new(0);
        let slots: Mutex<Vec<Option<Prediction>>> = Mutex::new(vec![None; texts.len()]);
        let tokenizer = &self.tokenizer;
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .models
                .iter_mut()
                .map(|model| {
                    let (next, slots) = (&next, &slots);
                    s.spawn(move || -> Result<()> {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&text) = texts.get(i) else { return Ok(()) };
                            let p = detect_one(model, tokenizer, text).map_err(|e| {
                                // The other workers stop at their next sentence.
                                next.store(texts.len(), Ordering::Relaxed);
                                e.context(format!("sentence {} of {}", i + 1, texts.len()))
                            })?;
                            slots.lock().map_err(|_| anyhow!("a worker panicked"))?[i] = Some(p);
                            pb.inc(1);
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a worker panicked")))).collect()
        });
        for r in results {
            r?;
        }
        let slots = slots.into_inner().map_err(|_| anyhow!("a worker panicked"))?;
        slots.into_iter().map(|p| p.ok_or_else(|| anyhow!("a sentence was not scored"))).collect()
    }
}

fn detect_one(model: &mut Model, tokenizer: &Tokenizer, text: &str) -> Result<Prediction> {
    // The clock only feeds `ms`, which the scores do not use.
    let d = anybit::session::detect(model, tokenizer, text, &|| 0.0).map_err(|e| anyhow!("{e}"))?;
    let span = |s: &Option<anybit::text::spans::Span>| s.as_ref().map(|s| CharSpan { start: s.start, end: s.end });
    let text_of = |s: &Option<anybit::text::spans::Span>| s.as_ref().map_or(String::new(), |s| s.text.clone());
    Ok(Prediction {
        probability: d.probability,
        antecedent: span(&d.antecedent),
        consequent: span(&d.consequent),
        antecedent_text: text_of(&d.antecedent),
        consequent_text: text_of(&d.consequent),
        truncated: d.truncated,
    })
}

fn list(widths: &[Bits]) -> String {
    widths.iter().map(Bits::to_string).collect::<Vec<_>>().join(",")
}

/// Where each width's decision threshold comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdSource {
    /// The file's (`Task::threshold`): what the app uses.
    File,
    /// The F1-maximising one on the subtask-1 sentences given ([`best_threshold`]): for the
    /// exporter, which stores it; scores are then those of the tuned threshold.
    Tune,
}

/// One width's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WidthScores {
    pub bits: u8,
    /// The threshold subtask 1 was scored with.
    pub threshold: f32,
    /// Subtask 1 (None without subtask-1 sentences).
    pub st1: Option<BinaryScores>,
    /// Subtask 2 (None without subtask-2 sentences).
    pub st2: Option<SpanScores>,
    /// Sentences longer than the model takes (cut), over both subtasks.
    pub truncated: usize,
}

/// Scores `task1` (subtask 1) and `task2` (subtask 2) at each of `widths` through the runtime,
/// on rayon's thread count (RAYON_NUM_THREADS), one model per thread, with a progress bar on
/// stderr if `progress`. Errors: a model without the task, a width the file lacks, a sentence the
/// runtime refuses (empty text).
pub fn evaluate(
    model_bytes: &[u8],
    task1: &[Sentence1],
    task2: &[Sentence2],
    widths: &[Bits],
    thresholds: ThresholdSource,
    progress: bool,
) -> Result<Vec<WidthScores>> {
    let mut det = Detector::new(model_bytes, rayon::current_num_threads())?;
    det.check_widths(widths)?;
    let pb = progress_bar(progress, (task1.len() + task2.len()) * widths.len());
    let mut table = Vec::new();
    for &w in widths {
        table.push(evaluate_width(&mut det, task1, task2, w, thresholds, &pb)?.scores);
    }
    pb.finish_and_clear();
    Ok(table)
}

/// One width's scores with the predictions behind them.
pub struct WidthRun {
    pub scores: WidthScores,
    pub task1: Vec<Prediction>,
    pub task2: Vec<Prediction>,
}

/// [`evaluate`] at one width with a loaded [`Detector`].
pub fn evaluate_width(
    det: &mut Detector,
    task1: &[Sentence1],
    task2: &[Sentence2],
    w: Bits,
    thresholds: ThresholdSource,
    pb: &ProgressBar,
) -> Result<WidthRun> {
    pb.set_message(format!("width {w}"));
    let texts1: Vec<&str> = task1.iter().map(|s| s.text.as_str()).collect();
    let texts2: Vec<&str> = task2.iter().map(|s| s.text.as_str()).collect();
    let p1 = det.predict(&texts1, w, pb).with_context(|| format!("subtask 1 at width {w}"))?;
    let p2 = det.predict(&texts2, w, pb).with_context(|| format!("subtask 2 at width {w}"))?;
    let gold: Vec<bool> = task1.iter().map(|s| s.label).collect();
    let probs: Vec<f32> = p1.iter().map(|p| p.probability).collect();
    let threshold = match thresholds {
        ThresholdSource::File => det.threshold(w),
        ThresholdSource::Tune => best_threshold(&probs, &gold).0,
    };
    let scores = WidthScores {
        bits: w.get(),
        threshold,
        st1: (!task1.is_empty()).then(|| score1(&probs, &gold, threshold)),
        st2: (!task2.is_empty()).then(|| score2(task2, &p2)),
        truncated: p1.iter().chain(&p2).filter(|p| p.truncated).count(),
    };
    Ok(WidthRun { scores, task1: p1, task2: p2 })
}

/// Subtask-1 scores of probabilities at `threshold` (`p >= threshold` is counterfactual).
pub fn score1(probs: &[f32], gold: &[bool], threshold: f32) -> BinaryScores {
    let pred: Vec<bool> = probs.iter().map(|&p| p >= threshold).collect();
    subtask1(&pred, gold)
}

/// Subtask-2 scores of predictions against the sentences' gold spans.
pub fn score2(gold: &[Sentence2], pred: &[Prediction]) -> SpanScores {
    subtask2(gold.iter().zip(pred).map(|(g, p)| (g.text.as_str(), Quad::from_spans(Some(g.antecedent), g.consequent), p.quad())))
}

/// A progress bar on stderr, or a hidden one.
pub fn progress_bar(show: bool, len: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ({eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// The predictions CSV, with the web app's download columns (web/app/csv.js `RESULT_COLUMNS`) so
/// that the two compare row by row: `sentenceID, sentence, pred_label, probability` (6
/// decimals), the four offsets (end inclusive, -1/-1 for none), and the span texts.
pub fn write_predictions(path: &Path, rows: &[(&str, &str)], preds: &[Prediction], threshold: f32) -> Result<()> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_path(path)
        .with_context(|| format!("writing {}", path.display()))?;
    w.write_record([
        "sentenceID",
        "sentence",
        "pred_label",
        "probability",
        "antecedent_startid",
        "antecedent_endid",
        "consequent_startid",
        "consequent_endid",
        "antecedent",
        "consequent",
    ])?;
    for ((id, text), p) in rows.iter().zip(preds) {
        let q = p.quad();
        let label = if p.probability >= threshold { "1" } else { "0" };
        w.write_record([
            id.to_string(),
            text.to_string(),
            label.to_string(),
            format!("{:.6}", p.probability),
            q.ant_start.to_string(),
            q.ant_end.to_string(),
            q.con_start.to_string(),
            q.con_end.to_string(),
            p.antecedent_text.clone(),
            p.consequent_text.clone(),
        ])?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `anybit cf-eval`: a table per width on stdout, progress on stderr, and as the last stdout
/// line `{"model","task","n","bits":{"8":{...}}}`.
pub fn cli(a: &crate::cli::CfEvalArgs) -> Result<()> {
    let bytes = std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let labelled = a.task != 1 || super::data::has_column(&a.csv, "gold_label")?;
    if !labelled {
        // Without labels there is nothing to score: predictions only.
        anyhow::ensure!(
            a.predictions.is_some(),
            "{}: no gold_label column, so there is nothing to score; give --predictions OUT.csv to write the predictions",
            a.csv.display()
        );
        anyhow::ensure!(!a.dev, "--dev needs gold_label: the dev split is stratified by it");
    }
    let (mut task1, mut task2) = match a.task {
        1 => (super::data::read_subtask1(&a.csv)?, Vec::new()),
        _ => (Vec::new(), super::data::read_subtask2(&a.csv)?),
    };
    if a.dev {
        task1 = super::data::split1(&task1).1;
        task2 = super::data::split2(&task2).1;
    }
    let n = task1.len() + task2.len();
    let threads = a.threads.unwrap_or_else(rayon::current_num_threads).max(1);
    let mut det = Detector::new(&bytes, threads).with_context(|| a.model.display().to_string())?;
    det.check_widths(&a.bits).with_context(|| a.model.display().to_string())?;
    let pb = progress_bar(true, n * a.bits.len());
    let mut runs = Vec::new();
    for (k, &w) in a.bits.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let run = evaluate_width(&mut det, &task1, &task2, w, ThresholdSource::File, &pb)?;
        let done = format!("width {w}: {n} sentences in {:.1} s", t0.elapsed().as_secs_f64());
        // indicatif draws nothing (println included) when stderr is not a terminal; logs still
        // get one line per width.
        if pb.is_hidden() {
            eprintln!("{done}");
        } else {
            pb.println(done);
        }
        if let (0, Some(path)) = (k, &a.predictions) {
            let rows: Vec<(&str, &str)> = match a.task {
                1 => task1.iter().map(|s| (s.id.as_str(), s.text.as_str())).collect(),
                _ => task2.iter().map(|s| (s.id.as_str(), s.text.as_str())).collect(),
            };
            let preds = if a.task == 1 { &run.task1 } else { &run.task2 };
            write_predictions(path, &rows, preds, run.scores.threshold)?;
        }
        runs.push(run.scores);
    }
    pb.finish_and_clear();
    println!("model {}  task {}  n {n}  ({} truncated at the first width)", a.model.display(), a.task, runs[0].truncated);
    let mut bits = serde_json::Map::new();
    let r4 = |v: f64| (v * 1e4).round() / 1e4;
    if !labelled {
        println!("no gold_label column: predictions written, nothing scored");
        println!("{}", serde_json::json!({"model": a.model.display().to_string(), "task": a.task, "n": n, "bits": {}}));
        return Ok(());
    }
    if a.task == 1 {
        println!("| width | threshold | precision | recall | F1 |");
        println!("|---|---|---|---|---|");
    } else {
        println!("| width | exact match | F1 | precision | recall | antecedent F1 | consequent F1 | illegal |");
        println!("|---|---|---|---|---|---|---|---|");
    }
    for s in &runs {
        let entry = match (&s.st1, &s.st2) {
            (Some(m), _) => {
                println!("| {} | {:.4} | {:.4} | {:.4} | {:.4} |", s.bits, s.threshold, m.precision, m.recall, m.f1);
                serde_json::json!({"precision": r4(m.precision), "recall": r4(m.recall), "f1": r4(m.f1),
                    "threshold": r4(s.threshold as f64), "tp": m.tp, "fp": m.fp, "fn": m.fn_})
            }
            (None, Some(m)) => {
                println!(
                    "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} |",
                    s.bits, m.exact_match, m.f1, m.precision, m.recall, m.ant_f1, m.con_f1, m.illegal
                );
                serde_json::json!({"exact_match": r4(m.exact_match), "f1": r4(m.f1), "precision": r4(m.precision),
                    "recall": r4(m.recall), "antecedent_f1": r4(m.ant_f1), "consequent_f1": r4(m.con_f1), "illegal": m.illegal})
            }
            // An empty CSV: no figures, but still a well-formed line.
            (None, None) => serde_json::json!({}),
        };
        bits.insert(s.bits.to_string(), entry);
    }
    println!("{}", serde_json::json!({"model": a.model.display().to_string(), "task": a.task, "n": n, "bits": bits}));
    Ok(())
}
