//! Counterfactual detection (SemEval-2020 Task 5) on a session's model: `Session::detect` says
//! whether a text is counterfactual, with its probability and the model's threshold at the
//! current width, and where its antecedent and consequent are.
//!
//! The text is encoded and run by `text.rs` (`encode_text`, as `encode` and `run_text` do) and the
//! output decoded by `crate::text::spans::detect_output`; this file only checks that the model
//! is a counterfactual detector and puts the pieces together. Native tools (the `cf-eval` CLI)
//! call [`detect`] with a `Model` and its `Tokenizer`, so they score exactly what the app shows.

use serde::Serialize;

use super::text::encode_text;
use super::{Clock, Session};
use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::format::{Task, CF_COLUMNS};
use crate::model::Model;
use crate::text::spans::{detect_output, Span};
use crate::text::Tokenizer;

/// One text's verdict and spans.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    /// `probability >= threshold`.
    pub counterfactual: bool,
    /// The model's probability that the text is counterfactual.
    pub probability: f32,
    /// The file's decision threshold at `width` (`format::Task::threshold`).
    pub threshold: f32,
    /// The antecedent (always one, unless the text has no taggable token).
    pub antecedent: Option<Span>,
    /// The consequent, if the best legal labeling has one.
    pub consequent: Option<Span>,
    /// Tokens the model saw, `[CLS]` and `[SEP]` included.
    pub tokens: usize,
    /// The text was longer than the model's tokens and was cut; spans lie in the part it saw.
    pub truncated: bool,
    pub width: Bits,
    /// Tokenizing, running and decoding, in milliseconds of `now`.
    pub ms: f64,
}

/// The decision threshold of `model` at its current width; `InvalidArgument` for a model without
/// a counterfactual task (an image model, an embedding model, another classifier).
pub fn counterfactual_threshold(model: &Model) -> Result<f32> {
    match &model.graph().task {
        Some(task @ Task::Counterfactual { .. }) => Ok(task.threshold(model.width())),
        None => {
            let kind = if model.is_text() { "text" } else { "image" };
            crate::bail!(
                ErrorKind::InvalidArgument,
                "this {kind} model is not a counterfactual detector (its file has no counterfactual task); \
                 detect() needs one, such as models/counterfactual.anybit"
            )
        }
    }
}

/// [`Session::detect`] for a caller holding a `Model` and its `Tokenizer` (e.g. the `cf-eval`
/// CLI; `Tokenizer::new(text.vocab.clone(), text.tokenizer.clone())` from `model.graph().text`).
/// Errors as `Session::detect`.
pub fn detect(model: &mut Model, tokenizer: &Tokenizer, text: &str, now: Clock) -> Result<Detection> {
    let start = now();
    let threshold = counterfactual_threshold(model)?;
    let e = encode_text(model, tokenizer, text, now)?;
    let n = e.ids.len();
    // Model::from_file already holds a counterfactual model to [tokens, 7]; a caller's own model
    // could still be wrong, and a wrong shape must not be read as logits.
    if e.shape != [n, CF_COLUMNS] {
        crate::bail!(ErrorKind::ShapeMismatch, "a counterfactual model must output [{n}, {CF_COLUMNS}] for {n} tokens, not {:?}", e.shape);
    }
    let d = detect_output(text, &e.output, &e.char_offsets, threshold)?;
    Ok(Detection {
        counterfactual: d.counterfactual,
        probability: d.probability,
        threshold: d.threshold,
        antecedent: d.antecedent,
        consequent: d.consequent,
        tokens: n,
        truncated: e.truncated,
        width: e.width,
        ms: now() - start,
    })
}

impl Session {
    /// Counterfactual detection on `text` at the current width: the verdict with its
    /// probability and threshold, and the antecedent and consequent as character spans (end
    /// inclusive, as SemEval counts) and UTF-16 ranges (for JS `slice`). Errors: `InvalidArgument`
    /// for a model without a counterfactual task and for empty or whitespace-only text,
    /// `LimitExceeded` above `MAX_TEXT_BYTES`; longer text than the model takes is truncated
    /// (`truncated`).
    pub fn detect(&mut self, text: &str, now: Clock) -> Result<Detection> {
        // The model first: a model that cannot detect says so whatever the text.
        counterfactual_threshold(&self.model)?;
        self.tokenizer()?;
        let tok = self.tokenizer.as_ref().expect("built above");
        detect(&mut self.model, tok, text, now)
    }
}
