//! Counterfactual detection: the decoding (crate/src/text/spans.rs) against brute force over every
//! labeling, and `Session::detect` / `session::detect` (crate/src/session/counterfactual.rs) on a
//! tiny counterfactual model: spans that slice the text back in characters and UTF-16, thresholds
//! per width, truncation, and typed errors for hostile files, the wrong model and bad text.
//!
//! The model is text_support's random 2-layer BERT with a counterfactual head (a Fixed8 linear of
//! 7 outputs, as the trainer ships it), a vocabulary of words counterfactual sentences use, a
//! task with thresholds for widths 8, 4 and 2, and an eval table with metrics. It is committed as
//! fixtures/tiny-cf.anybit (regenerate with ANYBIT_BLESS=1) for the package tests and the demo.

use anybit::format::names::{self, BIAS, WSCALE};
use anybit::format::{self, EvalResult, Op, Precision, QuantWeight, Task, CF_COLUMNS};
use anybit::session::{self, Session, MAX_TEXT_BYTES};
use anybit::text::spans::{best_tagging, detect_output, sentence_probability, Tag};
use anybit::text::Tokenizer;
use anybit::{Bits, ErrorKind, Model};

mod common;
#[allow(dead_code, unused_imports)]
mod text_support;
use common::{clock, Rng};

#[path = "common/suite.rs"]
#[macro_use]
mod suite;

const TINY_CF: &[u8] = include_bytes!("fixtures/tiny-cf.anybit");
const TINY_IMAGE: &[u8] = include_bytes!("fixtures/tiny.anybit");
const TINY_TEXT: &[u8] = include_bytes!("fixtures/tiny-text.anybit");

/// text_support's 45 word slots (after its 5 specials), as words counterfactual sentences use.
const WORDS: [&str; 45] = [
    "if", "had", "have", "would", "could", "should", "been", "not", "the", "a", "i", "we", "it", "wish", "were", "was",
    "more", "then", "pilots", "plane", "conscious", "turned", "rained", "stayed", "home", "money", "time", "better",
    "known", "might", "be", "only", "and", "to", "of", "in", "they", "##s", "##ed", ",", ".", "!", "?", "'", "t",
];
const THRESHOLDS: [(u8, f32); 3] = [(8, 0.5), (4, 0.45), (2, 0.4)];
const MAX_TOKENS: usize = text_support::POSITIONS;

fn b(n: u8) -> Bits {
    Bits::new(n).unwrap()
}

/// The tiny counterfactual model with a head of `outputs` columns and `task` (the fixture:
/// `build(7, Some(task()))`).
fn build(outputs: usize, task: Option<Task>) -> Vec<u8> {
    try_build(outputs, task).unwrap()
}

/// `build`, with the writer's refusal as an error.
fn try_build(outputs: usize, task: Option<Task>) -> anybit::Result<Vec<u8>> {
    let built = text_support::build(text_support::Pool::Mean, 0xcf5);
    let (mut graph, mut codes, mut tensors) = (built.graph, built.codes, built.tensors);
    let text = graph.text.as_mut().unwrap();
    text.vocab.truncate(text_support::SPECIALS.len());
    text.vocab.extend(WORDS.map(String::from));
    assert_eq!(text.vocab.len(), text_support::VOCAB);
    // The head reads the last LayerNorm, per token, instead of the pooling.
    assert!(matches!(graph.nodes.pop().unwrap().op, Op::MeanPool));
    let last = graph.nodes.last().unwrap().name.clone();
    let mut rng = Rng(0xcf);
    codes.resize(codes.len().div_ceil(8) * 8, 0);
    let offset = codes.len();
    codes.extend(rng.bytes(outputs * text_support::HIDDEN));
    // A Fixed8 layer uses its 8-bit codes at every width; each width still has its row scales.
    let scales = rng.floats(outputs, 0.3, 0.6);
    for w in Bits::all_desc() {
        tensors.insert(names::width_tensor("cf", w, WSCALE), format::F32Tensor { shape: vec![outputs], data: scales.clone() });
    }
    tensors.insert(names::shared_tensor("cf", BIAS), format::F32Tensor { shape: vec![outputs], data: rng.floats(outputs, -0.5, 0.5) });
    let weight = QuantWeight { shape: vec![outputs, text_support::HIDDEN], code_offset: offset, precision: Precision::Fixed8, bias: true };
    graph.nodes.push(format::Node { name: "cf".into(), inputs: vec![last], op: Op::Linear { weight, smooth: false } });
    graph.name = "tiny-cf".into();
    graph.task = task;
    let score = |metric: &str, base: f64| EvalResult {
        dataset: "made-up scores of a random model (tiny-cf fixture)".into(),
        metric: Some(metric.into()),
        n: 10,
        accuracy: (1..=8u8).rev().map(|w| (w, base * f64::from(w) / 8.0)).collect(),
    };
    graph.eval = vec![score("f1", 0.9), score("exact_match", 0.6)];
    format::write_with_tables(&graph, &codes, &tensors, &built.tables)
}

fn task() -> Task {
    Task::Counterfactual { thresholds: THRESHOLDS.to_vec() }
}

fn session() -> Session {
    Session::load(TINY_CF, 1).unwrap()
}

fn kind<T: std::fmt::Debug>(r: anybit::Result<T>) -> (ErrorKind, String) {
    let e = r.unwrap_err();
    (e.kind(), e.message().to_string())
}

/// The text of `s` between UTF-16 offsets, as JS `s.slice(a, b)` gives it.
fn js_slice(s: &str, a: usize, b: usize) -> String {
    let units: Vec<u16> = s.encode_utf16().collect();
    String::from_utf16(&units[a..b]).unwrap()
}

/// Characters `a..=b` (inclusive, as SemEval counts).
fn chars_inclusive(s: &str, a: usize, b: usize) -> String {
    s.chars().skip(a).take(b + 1 - a).collect()
}

#[test]
fn fixture_is_what_the_builder_writes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-cf.anybit");
    let bytes = build(CF_COLUMNS, Some(task()));
    if std::env::var_os("ANYBIT_BLESS").is_some() {
        std::fs::write(path, &bytes).unwrap();
    }
    let golden = std::fs::read(path).expect("missing fixture: run with ANYBIT_BLESS=1");
    assert!(golden == bytes, "tests/fixtures/tiny-cf.anybit differs from the builder's output");
    assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
}

// --- The decoding, on its own -----------------------------------------------------------------

/// Legal by SemEval's rules, checked without the decoder's automaton: runs of B-x I-x*, one
/// antecedent, at most one consequent, no I- without its B-, and the antecedent not a lone
/// one-character token (`one[i]`: token i is one character long).
fn legal(tags: &[Tag], one: &[bool]) -> bool {
    if let Some(b) = tags.iter().position(|&t| t == Tag::BAnt) {
        if one.get(b).copied().unwrap_or(false) && tags.get(b + 1) != Some(&Tag::IAnt) {
            return false;
        }
    }
    let (mut ants, mut cons, mut i) = (0, 0, 0);
    while i < tags.len() {
        let inner = match tags[i] {
            Tag::O => {
                i += 1;
                continue;
            }
            Tag::BAnt => {
                ants += 1;
                Tag::IAnt
            }
            Tag::BCon => {
                cons += 1;
                Tag::ICon
            }
            Tag::IAnt | Tag::ICon => return false,
        };
        i += 1;
        while i < tags.len() && tags[i] == inner {
            i += 1;
        }
    }
    ants == 1 && cons <= 1
}

fn score(scores: &[[f64; 5]], tags: &[Tag]) -> f64 {
    tags.iter().zip(scores).map(|(&t, row)| row[t as usize]).sum()
}

/// The best legal score by trying all 5^n labelings.
fn brute_force(scores: &[[f64; 5]], one: &[bool]) -> f64 {
    let n = scores.len();
    let mut best = f64::NEG_INFINITY;
    for mut code in 0..5usize.pow(n as u32) {
        let tags: Vec<Tag> = (0..n)
            .map(|_| {
                let t = Tag::ALL[code % 5];
                code /= 5;
                t
            })
            .collect();
        if legal(&tags, one) {
            best = best.max(score(scores, &tags));
        }
    }
    best
}

/// `best_tagging`'s answer is legal, scores what it says, and matches brute force (the texts
/// here always leave a legal antecedent: not every token is a lone one-character one).
fn check_against_brute_force(scores: &[[f64; 5]], one: &[bool], what: &str) {
    let t = best_tagging(scores, one);
    assert_eq!(t.tags.len(), scores.len(), "{what}");
    assert!(legal(&t.tags, one), "{what}: illegal {:?}", t.tags);
    assert!((score(scores, &t.tags) - t.score).abs() < 1e-9, "{what}");
    let want = brute_force(scores, one);
    assert!((t.score - want).abs() < 1e-9, "{what}: viterbi {} vs brute force {want} ({:?})", t.score, t.tags);
    // The reported spans are the runs of the labeling.
    let (first, last) = t.antecedent.unwrap();
    assert_eq!(t.tags[first], Tag::BAnt, "{what}");
    assert!(t.tags[first + 1..=last].iter().all(|&x| x == Tag::IAnt), "{what}");
    assert!(last + 1 == t.tags.len() || t.tags[last + 1] != Tag::IAnt, "{what}");
    assert_eq!(t.consequent.is_some(), t.tags.contains(&Tag::BCon), "{what}");
}

fn log_probs(rng: &mut Rng, n: usize, levels: Option<u64>) -> Vec<[f64; 5]> {
    (0..n)
        .map(|_| {
            let logits: Vec<f32> = (0..CF_COLUMNS)
                .map(|_| match levels {
                    // Few distinct values: many equal scores, to exercise ties.
                    Some(k) => (rng.next() % k) as f32,
                    None => rng.f32(-4.0, 4.0),
                })
                .collect();
            anybit::text::spans::tag_log_probs(&logits)
        })
        .collect()
}

suite! {
    fn viterbi_equals_brute_force_on_random_scores() {
        let mut rng = Rng(0x5ea1);
        for n in 1..=7 {
            let cases = if n <= 5 { 60 } else { 12 };
            for case in 0..cases {
                let levels = if case % 3 == 0 { Some(2 + case as u64 % 3) } else { None };
                let scores = log_probs(&mut rng, n, levels);
                // Every other case marks some tokens as one character long, never all of them.
                let one: Vec<bool> = (0..n).map(|i| case % 2 == 1 && i + 1 < n && rng.next() % 2 == 0).collect();
                check_against_brute_force(&scores, &one, &format!("n {n}, case {case}, one {one:?}"));
            }
        }
    }

    fn viterbi_edge_cases() {
        // One token: it must be the antecedent, whatever it prefers.
        let t = best_tagging(&[[0.0, -9.0, -1.0, -1.0, -1.0]], &[]);
        assert_eq!((t.tags, t.antecedent, t.consequent), (vec![Tag::BAnt], Some((0, 0)), None));
        // ... even a one-character one (no legal choice exists: the rule gives way).
        let t = best_tagging(&[[0.0, -9.0, -1.0, -1.0, -1.0]], &[true]);
        assert_eq!(t.antecedent, Some((0, 0)));
        // A one-character token that wants to be the antecedent alone takes its neighbour along.
        let s = [[-9.0, 0.0, -9.0, -9.0, -9.0], [0.0, -9.0, -3.0, -9.0, -9.0], [0.0, -9.0, -5.0, -9.0, -9.0]];
        assert_eq!(best_tagging(&s, &[false; 3]).antecedent, Some((0, 0)));
        assert_eq!(best_tagging(&s, &[true, false, false]).antecedent, Some((0, 1)));
        check_against_brute_force(&s, &[true, false, false], "one-character antecedent");
        // Every token favours O: still exactly one antecedent, on the token where B-Ant costs
        // least, and no consequent.
        let mut scores = vec![[0.0, -5.0, -5.0, -5.0, -5.0]; 6];
        scores[3][1] = -2.0;
        let t = best_tagging(&scores, &[]);
        assert_eq!((t.antecedent, t.consequent), (Some((3, 3)), None));
        assert_eq!(t.tags, [Tag::O, Tag::O, Tag::O, Tag::BAnt, Tag::O, Tag::O]);
        check_against_brute_force(&scores, &[], "all O");
        // Argmax would give two antecedents and an orphan I-Con: the legal best keeps one.
        let s = [
            [-3.0, 0.0, -3.0, -3.0, -3.0],
            [-3.0, -3.0, 0.0, -3.0, -3.0],
            [0.0, -3.0, -3.0, -3.0, -3.0],
            [-3.0, -0.5, -3.0, -3.0, -3.0],
            [-3.0, -3.0, -3.0, -3.0, 0.0],
        ];
        let t = best_tagging(&s, &[]);
        check_against_brute_force(&s, &[], "argmax illegal");
        assert_eq!(t.antecedent, Some((0, 1)));
        // Consequent before antecedent, adjacent spans.
        let s = [[-9.0, -9.0, -9.0, 0.0, -9.0], [-9.0, -9.0, -9.0, -9.0, 0.0], [-9.0, 0.0, -9.0, -9.0, -9.0]];
        let t = best_tagging(&s, &[]);
        assert_eq!((t.consequent, t.antecedent), (Some((0, 1)), Some((2, 2))));
        // Ties everywhere: an optimal legal labeling, the same one every time.
        let flat = vec![[0.0; 5]; 5];
        let t = best_tagging(&flat, &[]);
        check_against_brute_force(&flat, &[], "all equal");
        assert_eq!(best_tagging(&flat, &[]), t);
        // No taggable tokens: no spans.
        let t = best_tagging(&[], &[]);
        assert_eq!((t.antecedent, t.consequent), (None, None));
        // A long input is linear and still legal.
        let mut rng = Rng(7);
        let long = log_probs(&mut rng, 5000, None);
        let one: Vec<bool> = (0..5000).map(|i| i % 3 == 0).collect();
        let t = best_tagging(&long, &one);
        assert!(legal(&t.tags, &one));
    }

    fn detect_output_maps_tokens_to_inclusive_character_spans() {
        // "If 😀 had rained, home." -> [CLS] if [UNK] had rained , home . [SEP]
        let text = "If 😀 had rained, home.";
        let offsets = [(0, 0), (0, 2), (3, 4), (5, 8), (9, 15), (15, 16), (17, 21), (21, 22), (0, 0)];
        let mut out = vec![0.0f32; offsets.len() * CF_COLUMNS];
        let mut tag = |i: usize, t: Tag| out[i * CF_COLUMNS + 2 + t as usize] = 6.0;
        // [CLS] and [SEP] favour B-Ant: they cover no text and must not be tagged.
        for (i, t) in [(0, Tag::BAnt), (1, Tag::BAnt), (2, Tag::IAnt), (3, Tag::IAnt), (4, Tag::IAnt), (5, Tag::O)] {
            tag(i, t);
        }
        for (i, t) in [(6, Tag::BCon), (7, Tag::O), (8, Tag::BAnt)] {
            tag(i, t);
        }
        out[0] = -1.0;
        out[1] = 1.0;
        let d = detect_output(text, &out, &offsets, 0.5).unwrap();
        let p = 1.0 / (1.0 + (-2.0f64).exp());
        assert!((d.probability as f64 - p).abs() < 1e-6);
        assert!(d.counterfactual);
        let a = d.antecedent.unwrap();
        assert_eq!((a.start, a.end, a.text.as_str()), (0, 14, "If 😀 had rained"));
        assert_eq!(chars_inclusive(text, a.start, a.end), a.text);
        // The emoji is two UTF-16 units: the UTF-16 range is one longer than the characters.
        assert_eq!((a.start_utf16, a.end_utf16), (0, 16));
        assert_eq!(js_slice(text, a.start_utf16, a.end_utf16), a.text);
        let c = d.consequent.unwrap();
        assert_eq!((c.start, c.end, c.text.as_str()), (17, 20, "home"));
        assert_eq!(js_slice(text, c.start_utf16, c.end_utf16), "home");
        // The threshold decides the verdict, inclusively.
        assert!(!detect_output(text, &out, &offsets, 0.9).unwrap().counterfactual);
        assert!(detect_output(text, &out, &offsets, d.probability).unwrap().counterfactual);
        // No consequent when O wins there.
        out[6 * CF_COLUMNS + 2 + Tag::BCon as usize] = 0.0;
        out[6 * CF_COLUMNS + 2] = 6.0;
        assert_eq!(detect_output(text, &out, &offsets, 0.5).unwrap().consequent, None);
        // Only specials: no antecedent.
        let d = detect_output("\u{1}", &[0.0; 2 * CF_COLUMNS], &[(0, 0), (0, 0)], 0.5).unwrap();
        assert_eq!((d.antecedent, d.consequent, d.probability), (None, None, 0.5));
    }

    fn detect_output_refuses_what_it_cannot_read() {
        let text = "if it had";
        let offsets = [(0, 0), (0, 2), (3, 5), (6, 9), (0, 0)];
        let out = vec![0.5f32; offsets.len() * CF_COLUMNS];
        assert_eq!(kind(detect_output(text, &out[..out.len() - 1], &offsets, 0.5)).0, ErrorKind::ShapeMismatch);
        assert_eq!(kind(detect_output(text, &out[..5], &offsets[..1], 0.5)).0, ErrorKind::ShapeMismatch);
        assert_eq!(kind(sentence_probability(&[])).0, ErrorKind::ShapeMismatch);
        for bad in [f32::NAN, f32::INFINITY] {
            let mut o = out.clone();
            o[3 * CF_COLUMNS + 4] = bad;
            let (k, message) = kind(detect_output(text, &o, &offsets, 0.5));
            assert_eq!(k, ErrorKind::BadValue);
            assert!(message.contains("token 3, column 4"), "{message}");
            let mut o = out.clone();
            o[1] = bad;
            assert_eq!(kind(detect_output(text, &o, &offsets, 0.5)).0, ErrorKind::BadValue);
        }
        for t in [-0.1, 1.5, f32::NAN] {
            assert_eq!(kind(detect_output(text, &out, &offsets, t)).0, ErrorKind::InvalidArgument, "{t}");
        }
        let (k, message) = kind(detect_output(text, &out, &[(0, 0), (0, 2), (3, 5), (6, 10), (0, 0)], 0.5));
        assert_eq!(k, ErrorKind::InvalidArgument);
        assert!(message.contains("(6, 10)"), "{message}");
    }
}

// --- On a session -------------------------------------------------------------------------------

suite! {
    fn detect_is_the_decoding_of_encode() {
        let mut s = session();
        let now = clock();
        for text in [
            "If the pilots had been conscious, the plane would not have turned.",
            "I wish we had more time.",
            "Café 😀 was home.",
            "unknown words only",
        ] {
            let d = s.detect(text, &now).unwrap();
            let e = s.encode(text, &now).unwrap();
            let want = detect_output(text, &e.output, &e.char_offsets, d.threshold).unwrap();
            assert_eq!((d.counterfactual, d.probability, d.threshold), (want.counterfactual, want.probability, want.threshold), "{text}");
            assert_eq!((&d.antecedent, &d.consequent), (&want.antecedent, &want.consequent), "{text}");
            assert_eq!((d.tokens, d.truncated, d.width), (e.ids.len(), false, b(8)));
            assert!(d.ms > 0.0);
            assert_eq!(d.counterfactual, d.probability >= d.threshold);
            assert!((0.0..=1.0).contains(&d.probability));
            // Every text has words, so exactly one antecedent; spans slice back in both units.
            let a = d.antecedent.as_ref().unwrap();
            for span in [Some(a), d.consequent.as_ref()].into_iter().flatten() {
                assert!(span.start <= span.end, "{text}: {span:?}");
                assert_eq!(chars_inclusive(text, span.start, span.end), span.text, "{text}");
                assert_eq!(js_slice(text, span.start_utf16, span.end_utf16), span.text, "{text}");
                // A span starts at a token's start and ends at a token's end.
                assert!(e.char_offsets[1..].iter().any(|o| o.0 == span.start && o.1 > o.0), "{text}: {span:?}");
                assert!(e.char_offsets[1..].iter().any(|o| o.1 == span.end + 1 && o.1 > o.0), "{text}: {span:?}");
            }
            if let Some(c) = &d.consequent {
                assert!(c.end < a.start || a.end < c.start, "{text}: overlapping {a:?} {c:?}");
            }
        }
    }

    fn native_callers_get_the_same_detection() {
        let mut s = session();
        let mut model = Model::from_bytes(TINY_CF).unwrap();
        let text = model.graph().text.clone().unwrap();
        let tok = Tokenizer::new(text.vocab, text.tokenizer).unwrap();
        let now = clock();
        for w in [8, 3] {
            s.set_width(b(w)).unwrap();
            model.set_width(b(w)).unwrap();
            let sentence = "If it had rained, we would have stayed home.";
            let mut from_session = s.detect(sentence, &now).unwrap();
            let mut native = session::detect(&mut model, &tok, sentence, &now).unwrap();
            (from_session.ms, native.ms) = (0.0, 0.0);
            assert_eq!(from_session, native);
            assert_eq!(session::counterfactual_threshold(&model).unwrap(), native.threshold);
        }
    }

    fn the_threshold_follows_the_width() {
        let mut s = session();
        let now = clock();
        let text = "If it had rained, we would have stayed home.";
        let mut probabilities = Vec::new();
        for w in (1..=8).rev() {
            s.set_width(b(w)).unwrap();
            let d = s.detect(text, &now).unwrap();
            // The stored one, else the nearest wider width's.
            let want = match w {
                5..=8 => 0.5,
                4 | 3 => 0.45,
                _ => 0.4,
            };
            assert_eq!((d.width, d.threshold), (b(w), want));
            assert_eq!(d.counterfactual, d.probability >= want);
            probabilities.push(d.probability);
        }
        // Each width is its own model: the probabilities are not all the same.
        assert!(probabilities.iter().any(|&p| p != probabilities[0]), "{probabilities:?}");
    }

    fn long_text_is_truncated_and_spans_stay_inside() {
        let mut s = session();
        let sentence = "if it had rained , we would have stayed home . ";
        let text = sentence.repeat((1 << 20) / sentence.len() + 1);
        let d = s.detect(&text, &clock()).unwrap();
        assert!(d.truncated);
        assert_eq!(d.tokens, MAX_TOKENS);
        let seen = s.encode(&text, &clock()).unwrap().char_offsets[MAX_TOKENS - 2].1;
        for span in [d.antecedent.as_ref(), d.consequent.as_ref()].into_iter().flatten() {
            assert!(span.end < seen, "{span:?} past the {seen} characters the model saw");
        }
    }

    fn bad_text_and_the_wrong_model_are_refused() {
        let now = clock();
        let mut s = session();
        for text in ["", " ", "\n\t  \r\n", "\u{3000}\u{a0}"] {
            assert_eq!(kind(s.detect(text, &now)), (ErrorKind::InvalidArgument, "the text is empty".into()), "{text:?}");
        }
        let big = "a".repeat(MAX_TEXT_BYTES + 1);
        let (k, message) = kind(s.detect(&big, &now));
        assert_eq!(k, ErrorKind::LimitExceeded);
        assert!(message.contains(&(MAX_TEXT_BYTES + 1).to_string()), "{message}");
        // Text with nothing to tag: a verdict, no spans.
        let d = s.detect("\u{1}\u{2}", &now).unwrap();
        assert_eq!((d.tokens, d.antecedent, d.consequent), (2, None, None));
        // A model without the task: an image model, an embedding model; refused before the text
        // is looked at.
        for (bytes, what) in [(TINY_IMAGE, "image"), (TINY_TEXT, "text")] {
            let mut other = Session::load(bytes, 1).unwrap();
            for text in ["if it had rained", ""] {
                let (k, message) = kind(other.detect(text, &now));
                assert_eq!(k, ErrorKind::InvalidArgument);
                assert!(message.contains(&format!("this {what} model is not a counterfactual detector")), "{message}");
            }
        }
        // The session still works afterwards.
        assert!(s.detect("if it had rained", &now).unwrap().antecedent.is_some());
    }

    fn hostile_counterfactual_files_are_refused() {
        // A task whose model does not output 7 columns per token.
        for outputs in [5, 8] {
            let bytes = build(outputs, Some(task()));
            let (k, message) = kind(Session::load(&bytes, 1).map(|_| ()));
            assert_eq!(k, ErrorKind::BadShape, "{message}");
            assert!(message.contains("counterfactual model must output"), "{message}");
        }
        // Thresholds out of range: the writer refuses them, and so does the reader when a file's
        // header says so (the header is edited in place: same length, the digests cover the data).
        let good = build(CF_COLUMNS, Some(task()));
        for (from, to) in [("[8,0.5]", "[8,1.5]"), ("[8,0.5]", "[9,0.5]"), ("[8,0.5]", "[8,0.0]"), ("[8,0.5]", "[8,1e9]")] {
            let at = find(&good, from.as_bytes()).expect("the thresholds are in the header");
            let mut bad = good.clone();
            bad[at..at + from.len()].copy_from_slice(to.as_bytes());
            let (k, message) = kind(Session::load(&bad, 1).map(|_| ()));
            assert!(matches!(k, ErrorKind::BadValue | ErrorKind::BadGraph), "{to}: {k:?} {message}");
        }
        let out_of_range = Task::Counterfactual { thresholds: vec![(8, 1.0)] };
        assert_eq!(kind(try_build(CF_COLUMNS, Some(out_of_range))).0, ErrorKind::BadValue);
        // Without the task the same file is a plain tagger: detect refuses it, run_text needs labels.
        let mut plain = Session::load(&build(CF_COLUMNS, None), 1).unwrap();
        assert_eq!(kind(plain.detect("if it had rained", &clock())).0, ErrorKind::InvalidArgument);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
