//! Text on a session's model: `encode` (token ids, where each token came from, and the model's
//! output, e.g. a sentence embedding) and `run_text`, the classifier equivalent of
//! `Session::run` for a sentence classifier (`[classes]` output) or a token tagger
//! (`[tokens, classes]`).
//!
//! The tokenizer (`crate::text`) is built once per session from the vocabulary and settings the
//! file carries (`graph().text`), on first use. Any string is accepted up to `MAX_TEXT_BYTES`:
//! tokenizing is linear in the text and the model sees at most `tokenizer.max_length` tokens, so a
//! pasted megabyte comes back truncated (`truncated`, `pieces_total` say by how much), not stuck.
//!
//! Offsets come twice: `char_offsets` in Unicode scalar values (Python `str` indices, what HF and
//! the CLI print) and `offsets` in UTF-16 code units (what `String.prototype.slice` takes in JS).

use serde::Serialize;

use super::{Clock, RunResult, Session, softmax};
use crate::bits::Bits;
use crate::error::{ErrorKind, Result};
use crate::format::Op;
use crate::model::Model;
use crate::text::{Encoding, Tokenizer};

/// The longest text accepted, in UTF-8 bytes (4 MiB). Longer text is refused (`LimitExceeded`)
/// before any work; up to this, text is tokenized whole and truncated to the model's tokens.
pub const MAX_TEXT_BYTES: usize = 4 << 20;

/// One text through the model. The vectors are left out of the serialized form: the JS binding
/// hands them over as typed arrays.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Encoded {
    /// Token ids, `[CLS]` first and `[SEP]` last.
    #[serde(skip)]
    pub ids: Vec<u32>,
    /// Per token, `(start, end)` in UTF-16 code units of the text (end exclusive); `(0, 0)` for
    /// `[CLS]` and `[SEP]`.
    #[serde(skip)]
    pub offsets: Vec<(usize, usize)>,
    /// The same in Unicode scalar values (`crate::text::Encoding::offsets`).
    #[serde(skip)]
    pub char_offsets: Vec<(usize, usize)>,
    /// The vocabulary strings of `ids`.
    pub tokens: Vec<String>,
    /// Word pieces were dropped to fit `max_tokens`.
    pub truncated: bool,
    /// Word pieces of the whole text, before truncation (without `[CLS]`/`[SEP]`).
    pub pieces_total: usize,
    /// The most tokens the model takes (`[CLS]` and `[SEP]` included).
    pub max_tokens: usize,
    /// The model's output for these tokens (a pooled model: `[hidden]`; a tagger: `[tokens, classes]`).
    #[serde(skip)]
    pub output: Vec<f32>,
    pub shape: Vec<usize>,
    pub width: Bits,
    /// Tokenizing and running, in milliseconds of `now`.
    pub ms: f64,
}

/// Per-token classes of a `[tokens, classes]` output (a tagger), one row per token of the
/// encoding (`[CLS]` and `[SEP]` included, as the model saw them).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenClasses {
    pub classes: usize,
    /// `[tokens, classes]`, row-major.
    #[serde(skip)]
    pub logits: Vec<f32>,
    #[serde(skip)]
    pub probabilities: Vec<f32>,
    /// Per token, the most probable class (ties: lower index) and its label and probability.
    #[serde(skip)]
    pub predicted: Vec<u32>,
    pub labels: Vec<Option<String>>,
    #[serde(skip)]
    pub probability: Vec<f32>,
}

/// What `run_text` says: the encoding (its `output` is the logits) and either one class for the
/// text or one per token.
#[derive(Clone, Debug, PartialEq)]
pub struct TextRun {
    pub encoded: Encoded,
    pub classes: TextClasses,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TextClasses {
    /// A `[classes]` output: as an image run says it.
    Text(RunResult),
    /// A `[tokens, classes]` output.
    Tokens(TokenClasses),
}

impl Session {
    /// The tokenizer of this text model, built on first use; `InvalidArgument` for an image model.
    pub fn tokenizer(&mut self) -> Result<&Tokenizer> {
        if self.tokenizer.is_none() {
            let Some(text) = &self.model.graph().text else {
                crate::bail!(
                    ErrorKind::InvalidArgument,
                    "this model takes images (input shape {:?}), not text",
                    self.model.input_shape()
                );
            };
            self.tokenizer = Some(Tokenizer::new(text.vocab.clone(), text.tokenizer.clone())?);
        }
        Ok(self.tokenizer.as_ref().expect("built above"))
    }

    /// Tokenizes `text` (truncated to the model's tokens) and runs the model on it with token
    /// type 0 and every token attended. Errors: `InvalidArgument` for an image model and for
    /// empty or whitespace-only text, `LimitExceeded` above `MAX_TEXT_BYTES`.
    pub fn encode(&mut self, text: &str, now: Clock) -> Result<Encoded> {
        // The text first: an empty text is refused as such whatever the model.
        check_text(text)?;
        self.tokenizer()?;
        let tok = self.tokenizer.as_ref().expect("built above");
        encode_text(&mut self.model, tok, text, now)
    }

    /// Classifies `text`: a model with labels whose output is `[classes]` (a sentence
    /// classifier) gives a `RunResult` as an image run does; one whose output is
    /// `[tokens, classes]` (a tagger) gives the class of every token. A model without labels
    /// (an embedding model) is refused with `InvalidArgument`: `encode` gives its output.
    pub fn run_text(&mut self, text: &str, now: Clock) -> Result<TextRun> {
        // Before the work: a model that cannot classify says so at once, whatever the text.
        if self.model.is_text() && self.model.labels().is_none() {
            crate::bail!(
                ErrorKind::InvalidArgument,
                "this model has no labels: it outputs {:?} values per text, not classes; use encode()",
                self.model.output_shape()
            );
        }
        let encoded = self.encode(text, now)?;
        let probs = matches!(self.model.graph().nodes.last().map(|n| &n.op), Some(Op::Softmax));
        let labels = self.model.labels();
        let classes = match *encoded.shape.as_slice() {
            [_] => TextClasses::Text(RunResult::new(encoded.output.clone(), probs, labels, encoded.width, encoded.ms)),
            [tokens, classes] if tokens == encoded.ids.len() && classes > 0 => {
                TextClasses::Tokens(token_classes(&encoded.output, classes, probs, labels))
            }
            ref shape => crate::bail!(
                ErrorKind::ShapeMismatch,
                "the model outputs {shape:?} for {} tokens; run_text needs [classes] or [tokens, classes]",
                encoded.ids.len()
            ),
        };
        Ok(TextRun { encoded, classes })
    }
}

/// `Session::encode` for a caller holding a `Model` and its `Tokenizer` (a native tool): the one
/// place text is tokenized and run. `ms` counts tokenizing and running.
pub fn encode_text(model: &mut Model, tok: &Tokenizer, text: &str, now: Clock) -> Result<Encoded> {
    let start = now();
    check_text(text)?;
    let max_tokens = model.input_shape()[0].min(tok.config().max_length);
    let Encoding { ids, offsets: char_offsets, truncated, pieces_total } = tok.encode_with_max(text, max_tokens);
    let tokens = ids.iter().map(|&i| tok.vocab()[i as usize].clone()).collect();
    let offsets = utf16_offsets(text, &char_offsets);
    let n = ids.len();
    let out = model.run_tokens(&ids, &vec![0; n], &vec![1; n])?;
    let shape = out.shape().to_vec();
    let output = out.into_data();
    let width = model.width();
    Ok(Encoded { ids, offsets, char_offsets, tokens, truncated, pieces_total, max_tokens, output, shape, width, ms: now() - start })
}

/// Empty, whitespace-only and enormous text are refused before any work.
fn check_text(text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_BYTES {
        crate::bail!(
            ErrorKind::LimitExceeded,
            "the text is {} bytes (UTF-8); at most {} ({} MiB) are accepted",
            text.len(),
            MAX_TEXT_BYTES,
            MAX_TEXT_BYTES >> 20
        );
    }
    if text.trim().is_empty() {
        crate::bail!(ErrorKind::InvalidArgument, "the text is empty");
    }
    Ok(())
}

fn token_classes(logits: &[f32], classes: usize, is_probabilities: bool, labels: Option<&[String]>) -> TokenClasses {
    let mut probabilities = Vec::with_capacity(logits.len());
    let (mut predicted, mut names, mut probability) = (Vec::new(), Vec::new(), Vec::new());
    for row in logits.chunks(classes) {
        let p = if is_probabilities { row.to_vec() } else { softmax(row) };
        // The first of the largest (total_cmp: a NaN cannot panic).
        let best = (0..p.len()).fold(0, |b, i| if p[i].total_cmp(&p[b]).is_gt() { i } else { b });
        predicted.push(best as u32);
        names.push(labels.and_then(|l| l.get(best)).cloned());
        probability.push(p[best]);
        probabilities.extend(p);
    }
    TokenClasses { classes, logits: logits.to_vec(), probabilities, predicted, labels: names, probability }
}

/// Character offsets (Unicode scalar values) as UTF-16 code-unit offsets into `text`. One walk
/// over the text up to the largest offset asked for (a truncated megabyte is not walked whole).
pub fn utf16_offsets(text: &str, char_offsets: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut wanted: Vec<usize> = char_offsets.iter().flat_map(|&(a, b)| [a, b]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut map = Vec::with_capacity(wanted.len());
    let (mut chars, mut units) = (0usize, 0usize);
    let mut it = text.chars();
    for &w in &wanted {
        while chars < w {
            match it.next() {
                Some(c) => units += c.len_utf16(),
                None => break,
            }
            chars += 1;
        }
        map.push(units);
    }
    let at = |c: usize| map[wanted.binary_search(&c).expect("every offset is in `wanted`")];
    char_offsets.iter().map(|&(a, b)| (at(a), at(b))).collect()
}
