//! Counterfactual detection's decoding (SemEval-2020 Task 5): a counterfactual model's output
//! (`format::Task::Counterfactual`, `[tokens, 7]`) turned into the sentence's probability of being
//! counterfactual and its antecedent and consequent as character spans of the text.
//!
//! Pure: no model, no session. The session (`session::detect`, `Session::detect`) runs the model
//! and calls [`detect_output`]; a native tool that already has an output and its encoding calls
//! it directly, so the app and the CLI decode with this one implementation:
//!
//! ```ignore
//! let enc = tokenizer.encode_with_max(text, max_tokens);
//! let out = model.run_tokens(&enc.ids, &vec![0; n], &vec![1; n])?;      // [n, 7]
//! let d = anybit::text::spans::detect_output(text, out.data(), &enc.offsets, threshold)?;
//! ```
//!
//! The output layout: at token 0 (`[CLS]`) columns 0..2 are the sentence logits (not
//! counterfactual, counterfactual); at every token columns 2..7 are the tag logits O, B-Ant,
//! I-Ant, B-Con, I-Con (`format::CF_TAGS`).
//!
//! Tags are not taken token by token (argmax can give two antecedents, an `I-` with no `B-`, or
//! none at all, which SemEval scores as illegal). Instead each token's five tag logits become
//! log-probabilities (log-softmax) and [`best_tagging`] finds the labeling of largest total
//! log-probability among the legal ones: exactly one antecedent (B-Ant I-Ant*), at most one
//! consequent (B-Con I-Con*), in either order, not overlapping, O everywhere else. That is a
//! Viterbi pass over a 10-state automaton, linear in the tokens. The automaton also keeps an
//! antecedent from being one one-character token (SemEval's scorer calls an antecedent whose
//! start equals its end illegal), unless the text leaves no other choice.
//!
//! Only text tokens are tagged: `[CLS]` (token 0), `[SEP]` and any token with an empty offset
//! range are left out (they cover no characters). A span's characters run from its first token's
//! start to its last token's end, so the words and punctuation between its tokens are inside it.

use serde::Serialize;

use crate::error::{ErrorKind, Result};
use crate::format::CF_COLUMNS;

/// The tag columns of a counterfactual output row, in `format::CF_TAGS` order.
const TAG_START: usize = 2;

/// One token's tag (`format::CF_TAGS`, in column order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    O,
    BAnt,
    IAnt,
    BCon,
    ICon,
}

impl Tag {
    pub const ALL: [Tag; 5] = [Tag::O, Tag::BAnt, Tag::IAnt, Tag::BCon, Tag::ICon];

    fn column(self) -> usize {
        self as usize
    }
}

/// A span of the text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// First character, in Unicode scalar values (Python `str` indices, as SemEval's CSVs count).
    pub start: usize,
    /// Last character, INCLUSIVE (SemEval's convention).
    pub end: usize,
    /// The same span in UTF-16 code units, end EXCLUSIVE: `text.slice(startUtf16, endUtf16)` in JS.
    pub start_utf16: usize,
    pub end_utf16: usize,
    /// The characters `start..=end` of the text.
    pub text: String,
}

/// What a counterfactual output says about one text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decoded {
    /// `probability >= threshold`.
    pub counterfactual: bool,
    /// Softmax of the sentence logits, the counterfactual class's share.
    pub probability: f32,
    pub threshold: f32,
    /// `None` only when the text has no taggable token (e.g. only control characters).
    pub antecedent: Option<Span>,
    /// `None` when the best legal labeling has no consequent (SemEval's -1, -1).
    pub consequent: Option<Span>,
}

/// A span's (first, last) token, inclusive, as indices into the scored tokens.
pub type TokenRange = (usize, usize);

/// The best legal labeling of some tokens, as inclusive index ranges into the scored tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Tagging {
    pub tags: Vec<Tag>,
    pub antecedent: Option<TokenRange>,
    pub consequent: Option<TokenRange>,
    /// Total log-probability of `tags`.
    pub score: f64,
}

/// Decodes a counterfactual model's output for `text`: `output` is `[n, 7]` row-major and
/// `offsets` the encoding's n character offsets (`Encoding::offsets`: half-open, in Unicode
/// scalar values, `(0, 0)` for `[CLS]`/`[SEP]`). Spans are decoded whatever the verdict; a caller
/// that shows them only for counterfactual text checks `counterfactual`.
///
/// Errors: `ShapeMismatch` when `output` is not `offsets.len()` rows of 7; `BadValue` when it holds
/// a NaN or an infinity; `InvalidArgument` for a threshold outside [0, 1] or an offset past the
/// text's end.
pub fn detect_output(text: &str, output: &[f32], offsets: &[(usize, usize)], threshold: f32) -> Result<Decoded> {
    if !(0.0..=1.0).contains(&threshold) {
        crate::bail!(ErrorKind::InvalidArgument, "the counterfactual threshold must be in [0, 1], got {threshold}");
    }
    let probability = sentence_probability(output)?;
    let n = offsets.len();
    if output.len() != n * CF_COLUMNS {
        crate::bail!(
            ErrorKind::ShapeMismatch,
            "a counterfactual output has {CF_COLUMNS} values per token: {n} tokens need {}, got {}",
            n * CF_COLUMNS,
            output.len()
        );
    }
    if let Some(i) = output.iter().position(|v| !v.is_finite()) {
        crate::bail!(ErrorKind::BadValue, "the model output holds {} at token {}, column {}", output[i], i / CF_COLUMNS, i % CF_COLUMNS);
    }
    // Walks the text only as far as the last offset: a truncated megabyte is not counted whole.
    let last = offsets.iter().map(|o| o.1).max().unwrap_or(0);
    let chars = text.chars().take(last).count();
    if let Some(&(a, b)) = offsets.iter().find(|&&(a, b)| a > b || b > chars) {
        crate::bail!(ErrorKind::InvalidArgument, "token offsets ({a}, {b}) do not fit a text of {chars} characters");
    }
    // Token 0 is [CLS] (its row carries the sentence logits, not a word); empty ranges are the
    // other specials.
    let taggable: Vec<usize> = (1..n).filter(|&i| offsets[i].0 < offsets[i].1).collect();
    let scores: Vec<[f64; 5]> = taggable.iter().map(|&i| tag_log_probs(&output[i * CF_COLUMNS..(i + 1) * CF_COLUMNS])).collect();
    let one: Vec<bool> = taggable.iter().map(|&i| offsets[i].1 - offsets[i].0 == 1).collect();
    let best = best_tagging(&scores, &one);
    let span = |range: Option<TokenRange>| {
        range.map(|(first, last)| span_of(text, offsets[taggable[first]].0, offsets[taggable[last]].1))
    };
    Ok(Decoded {
        counterfactual: probability >= threshold,
        probability,
        threshold,
        antecedent: span(best.antecedent),
        consequent: span(best.consequent),
    })
}

/// Softmax of the sentence logits (row 0, columns 0..2), the counterfactual class's share.
/// `ShapeMismatch` without a full row 0, `BadValue` for a non-finite logit.
pub fn sentence_probability(output: &[f32]) -> Result<f32> {
    if output.len() < CF_COLUMNS {
        crate::bail!(ErrorKind::ShapeMismatch, "a counterfactual output needs at least one row of {CF_COLUMNS} values");
    }
    let (no, yes) = (output[0], output[1]);
    if !(no.is_finite() && yes.is_finite()) {
        crate::bail!(ErrorKind::BadValue, "the sentence logits ({no}, {yes}) are not finite");
    }
    // softmax([no, yes])[1] = 1 / (1 + e^(no - yes)), in f64 so that large gaps saturate cleanly.
    Ok((1.0 / (1.0 + (no as f64 - yes as f64).exp())) as f32)
}

/// Log-softmax of one output row's five tag logits (columns 2..7), in f64.
pub fn tag_log_probs(row: &[f32]) -> [f64; 5] {
    let x: [f64; 5] = std::array::from_fn(|t| row[TAG_START + t] as f64);
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + x.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    x.map(|v| v - lse)
}

/// Where a labeling stands after some tokens: which spans it has begun or finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Only O so far.
    Start,
    /// Inside the antecedent, no consequent yet.
    InAnt,
    /// Antecedent finished, no consequent yet.
    AfterAnt,
    /// Inside the consequent, no antecedent yet.
    InCon,
    /// Consequent finished, no antecedent yet.
    AfterCon,
    /// Inside the consequent, the antecedent finished.
    InConAfterAnt,
    /// Inside the antecedent, the consequent finished.
    InAntAfterCon,
    /// Both finished.
    Done,
    /// The antecedent began on a one-character token, no consequent yet: it must go on, since
    /// SemEval's scorer calls an antecedent whose start equals its end illegal.
    InAntOne,
    /// The same, the consequent finished.
    InAntOneAfterCon,
}

const STATES: [State; 10] = [
    State::Start,
    State::InAnt,
    State::AfterAnt,
    State::InCon,
    State::AfterCon,
    State::InConAfterAnt,
    State::InAntAfterCon,
    State::Done,
    State::InAntOne,
    State::InAntOneAfterCon,
];

impl State {
    /// The state after tagging one more token `tag` (`one`: the token is one character long),
    /// or `None` when that breaks the rules.
    fn next(self, tag: Tag, one: bool) -> Option<State> {
        use State::*;
        use Tag::*;
        Some(match (self, tag) {
            (Start, O) => Start,
            (Start, BAnt) if one => InAntOne,
            (InCon, BAnt) | (AfterCon, BAnt) if one => InAntOneAfterCon,
            (InAntOne, IAnt) => InAnt,
            (InAntOneAfterCon, IAnt) => InAntAfterCon,
            (Start, BAnt) => InAnt,
            (Start, BCon) => InCon,
            (InAnt, IAnt) => InAnt,
            (InAnt, O) | (AfterAnt, O) => AfterAnt,
            (InAnt, BCon) | (AfterAnt, BCon) => InConAfterAnt,
            (InCon, ICon) => InCon,
            (InCon, O) | (AfterCon, O) => AfterCon,
            (InCon, BAnt) | (AfterCon, BAnt) => InAntAfterCon,
            (InConAfterAnt, ICon) => InConAfterAnt,
            (InAntAfterCon, IAnt) => InAntAfterCon,
            (InConAfterAnt, O) | (InAntAfterCon, O) | (Done, O) => Done,
            _ => return None,
        })
    }

    /// A labeling may end here: it has its one antecedent.
    fn accepting(self) -> bool {
        matches!(self, State::InAnt | State::AfterAnt | State::InConAfterAnt | State::InAntAfterCon | State::Done)
    }
}

/// The legal labeling of largest total score, `scores[i][t]` being token i's log-probability of
/// `Tag::ALL[t]` (any finite numbers work), `one[i]` whether token i is one character long (an
/// antecedent of that token alone would start and end on one character, which SemEval's scorer
/// calls illegal; `one` shorter than `scores` counts as false). Ties go to the labeling whose
/// path through the states comes first in a fixed order, so equal inputs always give the same
/// labeling. No tokens: an empty labeling without spans (a text with no taggable token has no
/// antecedent to find); a lone one-character token still gets its antecedent.
pub fn best_tagging(scores: &[[f64; 5]], one: &[bool]) -> Tagging {
    let tagging = viterbi(scores, one);
    // Only a text whose every token is one character with none beside another (e.g. "x") has no
    // legal antecedent under that rule: tag it without the rule rather than not at all.
    if tagging.antecedent.is_none() && !scores.is_empty() {
        return viterbi(scores, &[]);
    }
    tagging
}

fn viterbi(scores: &[[f64; 5]], one: &[bool]) -> Tagging {
    let n = scores.len();
    if n == 0 {
        return Tagging { tags: Vec::new(), antecedent: None, consequent: None, score: 0.0 };
    }
    let s = STATES.len();
    let idx = |st: State| STATES.iter().position(|&x| x == st).expect("every state is listed");
    let mut best = vec![f64::NEG_INFINITY; s];
    best[idx(State::Start)] = 0.0;
    // back[i][state] = (previous state, tag of token i) of the best path into `state`.
    let mut back: Vec<[(u8, u8); STATES.len()]> = Vec::with_capacity(n);
    for (i, row) in scores.iter().enumerate() {
        let short = one.get(i).copied().unwrap_or(false);
        let mut next = vec![f64::NEG_INFINITY; s];
        let mut from = [(u8::MAX, 0u8); STATES.len()];
        for (p, &state) in STATES.iter().enumerate() {
            if best[p] == f64::NEG_INFINITY {
                continue;
            }
            for tag in Tag::ALL {
                let Some(to) = state.next(tag, short) else { continue };
                let v = best[p] + row[tag.column()];
                let q = idx(to);
                // Strictly better only: on a tie the earlier (state, tag) pair stays.
                if v > next[q] {
                    next[q] = v;
                    from[q] = (p as u8, tag as u8);
                }
            }
        }
        best = next;
        back.push(from);
    }
    // Without the one-character rule an accepting state is always reachable for n >= 1 (B-Ant
    // then O...); with it, a text of lone one-character tokens has none (the caller retries).
    let end = (0..s).filter(|&q| STATES[q].accepting() && best[q] > f64::NEG_INFINITY).fold(None, |b: Option<usize>, q| match b {
        Some(b) if best[b] >= best[q] => Some(b),
        _ => Some(q),
    });
    let Some(end) = end else {
        return Tagging { tags: vec![Tag::O; n], antecedent: None, consequent: None, score: f64::NEG_INFINITY };
    };
    let mut tags = vec![Tag::O; n];
    let mut q = end;
    for i in (0..n).rev() {
        let (p, t) = back[i][q];
        tags[i] = Tag::ALL[t as usize];
        q = p as usize;
    }
    let (antecedent, consequent) = spans_of(&tags);
    Tagging { score: best[end], tags, antecedent, consequent }
}

/// The antecedent's and the consequent's (first, last) token of a legal labeling.
fn spans_of(tags: &[Tag]) -> (Option<TokenRange>, Option<TokenRange>) {
    let run = |b: Tag, i: Tag| {
        let first = tags.iter().position(|&t| t == b)?;
        let len = tags[first + 1..].iter().take_while(|&&t| t == i).count();
        Some((first, first + len))
    };
    (run(Tag::BAnt, Tag::IAnt), run(Tag::BCon, Tag::ICon))
}

/// Characters `start..end` (end exclusive) of `text` as a [`Span`] (end inclusive).
fn span_of(text: &str, start: usize, end: usize) -> Span {
    let utf16 = crate::session::utf16_offsets(text, &[(start, end)]);
    Span {
        start,
        end: end - 1,
        start_utf16: utf16[0].0,
        end_utf16: utf16[0].1,
        text: text.chars().skip(start).take(end - start).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_allow_exactly_the_legal_orders() {
        use Tag::*;
        let walk = |tags: &[Tag]| tags.iter().try_fold(State::Start, |s, &t| s.next(t, false)).is_some_and(State::accepting);
        // One-character tokens (`one`): a B-Ant there must go on with I-Ant.
        let walk_one = |tags: &[(Tag, bool)]| tags.iter().try_fold(State::Start, |s, &(t, one)| s.next(t, one)).is_some_and(State::accepting);
        assert!(!walk_one(&[(BAnt, true)]));
        assert!(!walk_one(&[(BAnt, true), (O, false)]));
        assert!(walk_one(&[(BAnt, true), (IAnt, true)]));
        assert!(walk_one(&[(BCon, false), (BAnt, true), (IAnt, false), (O, false)]));
        assert!(!walk_one(&[(BCon, false), (BAnt, true), (BCon, false)]));
        assert!(walk(&[BAnt]));
        assert!(walk(&[O, BAnt, IAnt, O, BCon, ICon, O]));
        assert!(walk(&[BCon, ICon, BAnt, IAnt]));
        assert!(walk(&[BAnt, BCon]));
        assert!(!walk(&[]));
        assert!(!walk(&[O]));
        assert!(!walk(&[BCon]));
        assert!(!walk(&[IAnt]));
        assert!(!walk(&[BAnt, BAnt]));
        assert!(!walk(&[BAnt, O, IAnt]));
        assert!(!walk(&[BAnt, BCon, O, BCon]));
        assert!(!walk(&[BAnt, ICon]));
    }
}
