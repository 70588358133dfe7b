//! SemEval-2020 Task 5's official metrics, reproducing the organisers' scorer (its quirks
//! included, so that our figures compare with the task's leaderboard).
//!
//! Subtask 1: precision, recall and F1 of the counterfactual (positive) class; an undefined
//! ratio (no positive prediction, no positive gold) is 0, as scikit-learn reports it.
//!
//! Subtask 2, per sentence, from gold and predicted `(a_s, a_e, c_s, c_e)` (character = code point
//! offsets, end inclusive, -1/-1 for no consequent):
//! - exact match: the four numbers equal;
//! - an illegal prediction (see [`Quad::is_legal`]) scores 0 and no exact match;
//! - words are counted as the scorer does, `len(sentence[s:e].split())`: the END CHARACTER IS LEFT
//!   OUT although ends are inclusive, and `split()` cuts at runs of Python whitespace;
//! - `truth_len` / `sub_len` = the antecedent's words plus the consequent's where there is one;
//! - the overlap of two ranges (`not (sub_end < truth_start or sub_start > truth_end)`) counts
//!   the words of `sentence[max start : min end]`, else 0; consequents count only when both exist;
//! - with `inter` the sum of both overlaps: P = inter / sub_len, R = inter / truth_len, F1 the
//!   harmonic mean, all 0 when `inter` is 0. The reported figures are means over sentences.
//!
//! The antecedent-only and consequent-only F1 ([`SentenceScore::ant_f1`], [`SentenceScore::con_f1`])
//! are OURS, not the organisers' (issue 17 asks for them): the same formula restricted to one
//! part, and for the consequent, 1 when neither gold nor prediction has one, 0 when exactly one
//! does. An illegal prediction scores 0 on both.

use serde::Serialize;

use super::data::CharSpan;

/// Precision, recall and F1 of the positive class, with the counts they come from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BinaryScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub tp: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

/// Subtask 1 over paired predictions and gold labels (`true` = counterfactual). Pairs beyond the
/// shorter slice are ignored; callers pass equal lengths.
pub fn subtask1(pred: &[bool], gold: &[bool]) -> BinaryScores {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (&p, &g) in pred.iter().zip(gold) {
        match (p, g) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    BinaryScores { precision, recall, f1: harmonic(precision, recall), tp, fp, fn_ }
}

fn harmonic(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

/// A sentence's four offsets as the CSVs and the scorer hold them: end inclusive, -1/-1 for none.
/// Kept as raw integers because a prediction may be illegal and must still be scored (as 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Quad {
    pub ant_start: i64,
    pub ant_end: i64,
    pub con_start: i64,
    pub con_end: i64,
}

impl Quad {
    pub fn new(ant_start: i64, ant_end: i64, con_start: i64, con_end: i64) -> Quad {
        Quad { ant_start, ant_end, con_start, con_end }
    }

    /// From spans; a missing antecedent becomes -1/-1 (an illegal prediction).
    pub fn from_spans(antecedent: Option<CharSpan>, consequent: Option<CharSpan>) -> Quad {
        let pair = |s: Option<CharSpan>| s.map_or((-1, -1), |s| (s.start as i64, s.end as i64));
        let (a, b) = pair(antecedent);
        let (c, d) = pair(consequent);
        Quad::new(a, b, c, d)
    }

    pub fn has_consequent(&self) -> bool {
        !(self.con_start == -1 && self.con_end == -1)
    }

    /// The scorer's legality test for a prediction: an antecedent starting at -1, a consequent
    /// with one end -1 but not the other, `a_s >= a_e` (so a one-character antecedent is illegal:
    /// the scorer's rule, kept), `c_s > c_e`, or any value below -1 make it illegal.
    pub fn is_legal(&self) -> bool {
        let q = self;
        !(q.ant_start == -1
            || (q.con_start == -1) != (q.con_end == -1)
            || q.ant_start >= q.ant_end
            || q.con_start > q.con_end
            || [q.ant_start, q.ant_end, q.con_start, q.con_end].iter().any(|&v| v < -1))
    }
}

/// Python's `str.isspace()`, which `str.split()` cuts at: Rust's White_Space set plus the
/// information separators U+001C..U+001F (Python counts them, Unicode's property does not).
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `len(sentence[s:e].split())` over code points, with Python's slice rules (negative indices
/// count from the end, out-of-range ones clamp, an empty or reversed range is "").
pub fn py_words(chars: &[char], s: i64, e: i64) -> usize {
    let n = chars.len() as i64;
    let clamp = |i: i64| if i < 0 { (n + i).max(0) } else { i.min(n) } as usize;
    let (s, e) = (clamp(s), clamp(e));
    if s >= e {
        return 0;
    }
    let mut words = 0;
    let mut in_word = false;
    for &c in &chars[s..e] {
        let space = is_py_space(c);
        if !space && !in_word {
            words += 1;
        }
        in_word = !space;
    }
    words
}

/// The scorer's overlap of two inclusive ranges, counted in words of the sliced sentence.
fn overlap_words(chars: &[char], truth: (i64, i64), sub: (i64, i64)) -> usize {
    if sub.1 < truth.0 || sub.0 > truth.1 {
        return 0;
    }
    py_words(chars, sub.0.max(truth.0), sub.1.min(truth.1))
}

/// P, R and F1 from an overlap and the two lengths (all 0 when there is no overlap).
fn prf(inter: usize, sub_len: usize, truth_len: usize) -> (f64, f64, f64) {
    if inter == 0 {
        return (0.0, 0.0, 0.0);
    }
    // inter > 0 implies both lengths > 0: the overlap is a slice of each range's own slice.
    let p = inter as f64 / sub_len as f64;
    let r = inter as f64 / truth_len as f64;
    (p, r, harmonic(p, r))
}

/// One sentence's subtask-2 scores.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SentenceScore {
    pub exact: bool,
    pub legal: bool,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Ours: the antecedent alone.
    pub ant_f1: f64,
    /// Ours: the consequent alone (1 when neither has one, 0 when exactly one has).
    pub con_f1: f64,
}

/// Scores one sentence as the organisers' scorer does (plus our two part-wise figures).
pub fn score_sentence(sentence: &str, gold: Quad, pred: Quad) -> SentenceScore {
    if !pred.is_legal() {
        return SentenceScore { exact: false, legal: false, precision: 0.0, recall: 0.0, f1: 0.0, ant_f1: 0.0, con_f1: 0.0 };
    }
    let chars: Vec<char> = sentence.chars().collect();
    let words = |s: i64, e: i64| py_words(&chars, s, e);
    let both_con = gold.has_consequent() && pred.has_consequent();
    let gold_ant = words(gold.ant_start, gold.ant_end);
    let gold_con = if gold.has_consequent() { words(gold.con_start, gold.con_end) } else { 0 };
    let pred_ant = words(pred.ant_start, pred.ant_end);
    let pred_con = if pred.has_consequent() { words(pred.con_start, pred.con_end) } else { 0 };
    let inter_ant = overlap_words(&chars, (gold.ant_start, gold.ant_end), (pred.ant_start, pred.ant_end));
    let inter_con =
        if both_con { overlap_words(&chars, (gold.con_start, gold.con_end), (pred.con_start, pred.con_end)) } else { 0 };
    let (precision, recall, f1) = prf(inter_ant + inter_con, pred_ant + pred_con, gold_ant + gold_con);
    let ant_f1 = prf(inter_ant, pred_ant, gold_ant).2;
    let con_f1 = match (gold.has_consequent(), pred.has_consequent()) {
        (false, false) => 1.0,
        (true, true) => prf(inter_con, pred_con, gold_con).2,
        _ => 0.0,
    };
    SentenceScore { exact: gold == pred, legal: true, precision, recall, f1, ant_f1, con_f1 }
}

/// Subtask-2 figures over a set of sentences: means of the per-sentence scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SpanScores {
    pub exact_match: f64,
    pub f1: f64,
    pub precision: f64,
    pub recall: f64,
    /// Ours (see the module's doc).
    pub ant_f1: f64,
    /// Ours (see the module's doc).
    pub con_f1: f64,
    /// Predictions the scorer calls illegal (scored 0).
    pub illegal: usize,
    pub n: usize,
}

/// Subtask 2 over `(sentence, gold, prediction)` triples; all zeros for none.
pub fn subtask2<'a>(items: impl IntoIterator<Item = (&'a str, Quad, Quad)>) -> SpanScores {
    let mut t = SpanScores::default();
    for (sentence, gold, pred) in items {
        let s = score_sentence(sentence, gold, pred);
        t.n += 1;
        t.exact_match += s.exact as u8 as f64;
        t.f1 += s.f1;
        t.precision += s.precision;
        t.recall += s.recall;
        t.ant_f1 += s.ant_f1;
        t.con_f1 += s.con_f1;
        t.illegal += !s.legal as usize;
    }
    if t.n > 0 {
        let n = t.n as f64;
        for v in [&mut t.exact_match, &mut t.f1, &mut t.precision, &mut t.recall, &mut t.ant_f1, &mut t.con_f1] {
            *v /= n;
        }
    }
    t
}

/// The decision threshold that maximises subtask-1 F1 on `(probs, labels)`, with that F1.
///
/// Only the distinct probabilities matter: a threshold `t` predicts positive for `p >= t`, so F1
/// is constant between two neighbouring distinct probabilities. The best interval
/// `(p_below, p_at]` is found by sweeping the sorted probabilities, and its middle is returned
/// (`(p_below + p_at) / 2`, or `p_at / 2` below the smallest), so the stored threshold is not
/// on a dev probability's edge. Ties between intervals go to the highest threshold (fewest
/// positives). No positive label or no data: (0.5, 0.0).
pub fn best_threshold(probs: &[f32], labels: &[bool]) -> (f32, f64) {
    let n = probs.len().min(labels.len());
    let positives = labels[..n].iter().filter(|&&l| l).count();
    if positives == 0 {
        return (0.5, 0.0);
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| probs[i].is_finite()).collect();
    // Descending probability: lowering the threshold past each distinct value adds its group.
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut best_f1, mut best_t) = (-1.0f64, 0.5f32);
    let mut i = 0;
    while i < order.len() {
        let p = probs[order[i]];
        while i < order.len() && probs[order[i]] == p {
            if labels[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let precision = tp as f64 / (tp + fp) as f64;
        let recall = tp as f64 / positives as f64;
        let f1 = harmonic(precision, recall);
        if f1 > best_f1 {
            let below = order.get(i).map_or(0.0, |&j| probs[j]);
            best_f1 = f1;
            // The middle in f64: in f32 it can round onto `below` when the two are neighbours,
            // which would admit that group too; then `p` itself is the threshold.
            let mid = ((p as f64 + below as f64) / 2.0) as f32;
            best_t = if mid > below && mid <= p { mid } else { p };
        }
    }
    // A file stores thresholds in (0, 1) (docs/FORMAT.md): keep it there, and report the F1 of
    // the threshold returned, so that a file scores what its eval table says.
    let t = best_t.clamp(f32::MIN_POSITIVE, 1.0 - f32::EPSILON / 2.0);
    if t != best_t {
        let pred: Vec<bool> = probs[..n].iter().map(|&p| p >= t).collect();
        return (t, subtask1(&pred, &labels[..n]).f1);
    }
    (t, best_f1.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOP: &str =
        "The GOP's malignant amnesia regarding the economy would be hilarious were it not for the wreckage they caused.";

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn organisers_example_scores_one() {
        let q = Quad::new(69, 108, -1, -1);
        let s = score_sentence(GOP, q, q);
        assert!(s.exact && s.legal);
        assert_eq!((s.precision, s.recall, s.f1, s.ant_f1, s.con_f1), (1.0, 1.0, 1.0, 1.0, 1.0));
        let all = subtask2([(GOP, q, q)]);
        assert_eq!((all.exact_match, all.f1, all.n, all.illegal), (1.0, 1.0, 1, 0));
    }

    #[test]
    fn end_character_is_left_out_of_word_counts() {
        let chars: Vec<char> = "ab cd ef".chars().collect();
        // 0..=3 covers "ab c"; the scorer slices [0:3] = "ab " = 1 word.
        assert_eq!(py_words(&chars, 0, 3), 1);
        assert_eq!(py_words(&chars, 0, 4), 2);
        assert_eq!(py_words(&chars, 0, 7), 3);
        assert_eq!(py_words(&chars, 5, 2), 0);
        assert_eq!(py_words(&chars, 0, 100), 3);
        assert_eq!(py_words(&chars, -2, 100), 1);
        // Gold "ab cd" = 0..=4 (sliced "ab c": 2 words); prediction 0..=3 ("ab ": 1 word).
        // inter = words([0:3]) = 1: P = 1, R = 1/2, F1 = 2/3.
        let s = score_sentence("ab cd ef", Quad::new(0, 4, -1, -1), Quad::new(0, 3, -1, -1));
        assert!(!s.exact);
        assert!(close(s.precision, 1.0) && close(s.recall, 0.5) && close(s.f1, 2.0 / 3.0), "{s:?}");
    }

    #[test]
    fn consequents_add_to_both_lengths() {
        // "If it rained we would stay in" : ant 0..=12 "If it rained" ([0:12] = 3 words),
        // con 13..=28 "we would stay in" ([13:28] = "we would stay i" = 4 words).
        let text = "If it rained we would stay in";
        let gold = Quad::new(0, 12, 13, 28);
        // Prediction: ant 3..=12 ([3:12] "it rained" = 2 words), no consequent.
        let pred = Quad::new(3, 12, -1, -1);
        let s = score_sentence(text, gold, pred);
        // inter = words([3:12]) = 2; sub_len 2, truth_len 7: P 1, R 2/7.
        assert!(close(s.precision, 1.0) && close(s.recall, 2.0 / 7.0));
        assert!(close(s.f1, 2.0 * (2.0 / 7.0) / (1.0 + 2.0 / 7.0)));
        assert!(close(s.ant_f1, 2.0 * (2.0 / 3.0) / (1.0 + 2.0 / 3.0)));
        assert_eq!(s.con_f1, 0.0);
        // Predicting the consequent 22..=28 ("stay in", sliced [22:28] "stay i" = 2 words) too:
        // inter_con = words([22:28]) = 2; totals inter 4, sub 4, truth 7.
        let s = score_sentence(text, gold, Quad::new(3, 12, 22, 28));
        assert!(close(s.precision, 1.0) && close(s.recall, 4.0 / 7.0));
        assert!(close(s.con_f1, 2.0 * 0.5 / 1.5));
        // Disjoint ranges overlap in nothing.
        let s = score_sentence(text, gold, Quad::new(13, 20, 0, 5));
        assert_eq!((s.f1, s.ant_f1, s.con_f1), (0.0, 0.0, 0.0));
    }

    #[test]
    fn illegal_predictions_score_zero() {
        let text = "If it rained we would stay in";
        let gold = Quad::new(0, 12, -1, -1);
        for pred in [
            Quad::new(-1, -1, -1, -1), // no antecedent
            Quad::new(-1, 12, -1, -1),
            Quad::new(0, 12, 13, -1), // half a consequent
            Quad::new(0, 12, -1, 20),
            Quad::new(5, 5, -1, -1), // one-character antecedent (the scorer's a_s >= a_e)
            Quad::new(12, 0, -1, -1),
            Quad::new(0, 12, 20, 13), // reversed consequent
            Quad::new(0, 12, -2, -2), // below -1
        ] {
            assert!(!pred.is_legal(), "{pred:?}");
            let s = score_sentence(text, gold, pred);
            assert_eq!((s.exact, s.f1, s.ant_f1, s.con_f1), (false, 0.0, 0.0, 0.0), "{pred:?}");
        }
        // Even a prediction equal to an illegal gold gets no exact match.
        let one = Quad::new(3, 3, -1, -1);
        assert!(!score_sentence(text, one, one).exact);
        let mean = subtask2([(text, gold, gold), (text, gold, Quad::new(-1, -1, -1, -1))]);
        assert_eq!((mean.exact_match, mean.f1, mean.illegal, mean.n), (0.5, 0.5, 1, 2));
    }

    #[test]
    fn offsets_are_code_points() {
        // 'ä' is one code point (two UTF-8 bytes): byte offsets would shift everything after it.
        let text = "Wäre es gut, wäre ich froh";
        // ant 0..=11 "Wäre es gut," ([0:11] = "Wäre es gut" = 3 words); con 13..=25 ([13:25] =
        // "wäre ich fro" = 3 words).
        let gold = Quad::new(0, 11, 13, 25);
        let s = score_sentence(text, gold, gold);
        assert!(s.exact && close(s.f1, 1.0));
        // Prediction ant 5..=11 ([5:11] "es gut" = 2): inter 2 + 3, sub 5, truth 6.
        let s = score_sentence(text, gold, Quad::new(5, 11, 13, 25));
        assert!(close(s.precision, 1.0) && close(s.recall, 5.0 / 6.0));
        // Non-breaking and ideographic spaces split words, as Python's split() does.
        let chars: Vec<char> = "a\u{a0}b\u{3000}c\u{1f}d".chars().collect();
        assert_eq!(py_words(&chars, 0, 7), 4);
    }

    #[test]
    fn subtask1_counts() {
        let pred = [true, true, false, false, true];
        let gold = [true, false, true, false, true];
        let s = subtask1(&pred, &gold);
        assert_eq!((s.tp, s.fp, s.fn_), (2, 1, 1));
        assert!(close(s.precision, 2.0 / 3.0) && close(s.recall, 2.0 / 3.0) && close(s.f1, 2.0 / 3.0));
        let none = subtask1(&[false, false], &[true, false]);
        assert_eq!((none.precision, none.recall, none.f1), (0.0, 0.0, 0.0));
    }

    #[test]
    fn best_threshold_takes_the_middle_of_the_best_interval() {
        // Sorted: 0.9 (+), 0.8 (+), 0.6 (-), 0.4 (+), 0.1 (-).
        let probs = [0.1, 0.4, 0.6, 0.8, 0.9];
        let labels = [false, true, false, true, true];
        // t in (0.6, 0.8]: 2 TP, 0 FP, R 2/3 -> F1 0.8. t in (0.1, 0.4]: 3 TP, 1 FP -> 6/7 = 0.857.
        let (t, f1) = best_threshold(&probs, &labels);
        assert!(close(f1, 6.0 / 7.0), "{f1}");
        assert!((t - 0.25).abs() < 1e-6, "{t}");
        let pred: Vec<bool> = probs.iter().map(|&p| p >= t).collect();
        assert!(close(subtask1(&pred, &labels).f1, f1));
        // Everything positive is best when the smallest probability is positive: midpoint to 0.
        let (t, f1) = best_threshold(&[0.2, 0.6], &[true, true]);
        assert!((t - 0.1).abs() < 1e-6 && close(f1, 1.0));
        // Equal probabilities move together.
        let (t, _) = best_threshold(&[0.5, 0.5, 0.3], &[true, false, false]);
        assert!((t - 0.4).abs() < 1e-6, "{t}");
        assert_eq!(best_threshold(&[0.3], &[false]), (0.5, 0.0));
        assert_eq!(best_threshold(&[], &[]), (0.5, 0.0));
    }
}
