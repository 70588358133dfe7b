//! Text on a session (crate/src/session/text.rs): `encode` gives the tokenizer's ids and offsets
//! (also as UTF-16 offsets that slice the text back), the model's output, and truncation of a
//! megabyte; `run_text` classifies a text or its tokens; empty, whitespace-only and enormous text
//! and the wrong kind of model are typed errors.
//!
//! The model is a tiny random BERT (hidden 8, 2 heads, 1 layer, mean-pooled) built here and
//! committed as fixtures/tiny-text.anybit (regenerate with ANYBIT_BLESS=1), so that the package
//! tests (pkg-tests/) load the same file; a classifier head and a tagger head on the same encoder
//! are built in memory.

use std::collections::BTreeMap;

use anybit::format::names::{self, BIAS, INPUT, LO, SCALE, STEP, WSCALE};
use anybit::format::{self, F32Tensor, Graph, Node, Op, Precision, QuantWeight, RowBits, Text, Width};
use anybit::session::{Session, TextClasses, MAX_TEXT_BYTES};
use anybit::text::{Tokenizer, TokenizerConfig};
use anybit::{Bits, ErrorKind};

mod common;
#[allow(dead_code, unused_imports)]
mod text_support;
use common::{clock, Rng};

const TINY_TEXT: &[u8] = include_bytes!("fixtures/tiny-text.anybit");
const TINY_IMAGE: &[u8] = include_bytes!("fixtures/tiny.anybit");
const VOCAB_TXT: &str = include_str!("fixtures/tokenizer/vocab.txt");

const HIDDEN: usize = 8;
const HEADS: usize = 2;
const FF: usize = 16;
const MAX_TOKENS: usize = 32;
/// Words the tests use, after the first 200 lines of BERT's vocabulary (which hold [PAD], [UNK],
/// [CLS], [SEP] and [MASK]).
const WORDS: [&str; 22] = [
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world", "un", "##believ", "##able",
    "cafe", "##s", ",", ".", "!", "?", "paris", "john", "lives",
];
const SENTIMENT: [&str; 3] = ["negative", "neutral", "positive"];
const TAGS: [&str; 5] = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];

#[derive(Clone, Copy, PartialEq)]
enum Head {
    /// Mean-pooled embedding `[hidden]`, no labels: the committed fixture.
    Embedding,
    /// `[3]` logits of the pooled vector, with labels.
    Sentence,
    /// `[tokens, 5]` logits, with BIO labels.
    Tagger,
}

fn vocab() -> Vec<String> {
    VOCAB_TXT.lines().take(200).chain(WORDS).map(String::from).collect()
}

fn tensor(data: Vec<f32>) -> F32Tensor {
    F32Tensor { shape: vec![data.len()], data }
}

struct Builder {
    rng: Rng,
    nodes: Vec<Node>,
    codes: Vec<u8>,
    tensors: BTreeMap<String, F32Tensor>,
}

impl Builder {
    fn node(&mut self, name: &str, inputs: &[&str], op: Op) -> String {
        self.nodes.push(Node { name: name.into(), inputs: inputs.iter().map(|s| s.to_string()).collect(), op });
        name.into()
    }

    fn linear(&mut self, name: &str, input: &str, out: usize, depth: usize) -> String {
        self.codes.resize(self.codes.len().div_ceil(8) * 8, 0);
        let offset = self.codes.len();
        let codes = self.rng.bytes(out * depth);
        self.codes.extend_from_slice(&codes);
        let e = (3.0 / depth as f32).sqrt();
        for w in Bits::all_desc() {
            let scales = self.rng.floats(out, 0.7 * e, 1.3 * e);
            self.tensors.insert(names::width_tensor(name, w, WSCALE), tensor(scales));
        }
        let bias = self.rng.floats(out, -0.3, 0.3);
        self.tensors.insert(names::shared_tensor(name, BIAS), tensor(bias));
        let weight = QuantWeight { shape: vec![out, depth], code_offset: offset, precision: Precision::Model, bias: true };
        self.node(name, &[input], Op::Linear { weight, smooth: false })
    }

    fn layer_norm(&mut self, name: &str, input: &str) -> String {
        for w in Bits::all_desc() {
            let scale = self.rng.floats(HIDDEN, 0.6, 1.4);
            let bias = self.rng.floats(HIDDEN, -0.2, 0.2);
            self.tensors.insert(names::width_tensor(name, w, SCALE), tensor(scale));
            self.tensors.insert(names::width_tensor(name, w, BIAS), tensor(bias));
        }
        self.node(name, &[input], Op::LayerNorm { eps: 1e-12 })
    }
}

/// One encoder layer wired as `anybit import` wires it (tools/src/import.rs), then the head.
fn build(head: Head) -> Vec<u8> {
    let mut b = Builder { rng: Rng(0x7e47), nodes: Vec::new(), codes: Vec::new(), tensors: BTreeMap::new() };
    let v = vocab();
    let runs = [(v.len(), 4u8), (MAX_TOKENS + 2, 8u8)];
    let (table, lo, step, _) = text_support::random_table(&mut b.rng, &runs, HIDDEN);
    b.tensors.insert(names::shared_tensor("embed", LO), tensor(lo));
    b.tensors.insert(names::shared_tensor("embed", STEP), tensor(step));
    let rows = runs.iter().map(|&(rows, n)| RowBits { rows, bits: Bits::new(n).unwrap() }).collect();
    let op = Op::Embed { vocab: v.len(), positions: MAX_TOKENS, types: 2, hidden: HIDDEN, rows };
    let mut x = b.node("embed", &[INPUT], op);
    x = b.layer_norm("embed.ln", &x);
    let q = b.linear("l0.q", &x, HIDDEN, HIDDEN);
    let k = b.linear("l0.k", &x, HIDDEN, HIDDEN);
    let val = b.linear("l0.v", &x, HIDDEN, HIDDEN);
    let att = b.node("l0.attn", &[&q, &k, &val, INPUT], Op::Attention { heads: HEADS });
    let o = b.linear("l0.attn.out", &att, HIDDEN, HIDDEN);
    let add = b.node("l0.attn.add", &[&o, &x], Op::Add);
    let mid = b.layer_norm("l0.attn.ln", &add);
    let up = b.linear("l0.ffn.in", &mid, FF, HIDDEN);
    let act = b.node("l0.ffn.gelu", &[&up], Op::Gelu);
    let down = b.linear("l0.ffn.out", &act, HIDDEN, FF);
    let add = b.node("l0.ffn.add", &[&down, &mid], Op::Add);
    x = b.layer_norm("l0.ffn.ln", &add);
    let labels = match head {
        Head::Embedding => {
            b.node("pool", &[&x, INPUT], Op::MeanPool);
            None
        }
        Head::Sentence => {
            let pooled = b.node("pool", &[&x, INPUT], Op::MeanPool);
            b.linear("classifier", &pooled, SENTIMENT.len(), HIDDEN);
            Some(SENTIMENT.map(String::from).to_vec())
        }
        Head::Tagger => {
            b.linear("classifier", &x, TAGS.len(), HIDDEN);
            Some(TAGS.map(String::from).to_vec())
        }
    };
    let name = match head {
        Head::Embedding => "tiny-text",
        Head::Sentence => "tiny-text-sentiment",
        Head::Tagger => "tiny-text-tagger",
    };
    let graph = Graph {
        format: format::FORMAT_NAME.into(),
        version: format::FORMAT_VERSION,
        name: name.into(),
        input_shape: vec![MAX_TOKENS, 3],
        text: Some(Text { vocab: v, tokenizer: TokenizerConfig::bert_uncased(MAX_TOKENS) }),
        labels,
        widths: Bits::all_desc().map(|w| Width { w, a: Bits::MAX }).collect(),
        nodes: b.nodes,
        task: None,
        eval: Vec::new(),
        sha256: None,
    };
    let tables = BTreeMap::from([("embed".to_string(), table)]);
    format::write_with_tables(&graph, &b.codes, &b.tensors, &tables).unwrap()
}

fn tokenizer() -> Tokenizer {
    Tokenizer::new(vocab(), TokenizerConfig::bert_uncased(MAX_TOKENS)).unwrap()
}

fn session() -> Session {
    Session::load(TINY_TEXT, 1).unwrap()
}

fn kind<T: std::fmt::Debug>(r: anybit::Result<T>) -> (ErrorKind, String) {
    let e = r.unwrap_err();
    (e.kind(), e.message().to_string())
}

/// The text of `s` between UTF-16 offsets, as JS `s.slice(a, b)` gives it.
fn js_slice(s: &str, (a, b): (usize, usize)) -> String {
    let units: Vec<u16> = s.encode_utf16().collect();
    String::from_utf16(&units[a..b]).unwrap()
}

fn char_slice(s: &str, (a, b): (usize, usize)) -> String {
    s.chars().skip(a).take(b - a).collect()
}

#[test]
fn fixture_is_what_the_builder_writes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-text.anybit");
    let bytes = build(Head::Embedding);
    if std::env::var_os("ANYBIT_BLESS").is_some() {
        std::fs::write(path, &bytes).unwrap();
    }
    let golden = std::fs::read(path).expect("missing fixture: run with ANYBIT_BLESS=1");
    assert!(golden == bytes, "tests/fixtures/tiny-text.anybit differs from the builder's output");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn encode_gives_the_tokenizers_ids_and_offsets() {
    let mut s = session();
    let tok = tokenizer();
    let now = clock();
    for text in [
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "unbelievable cafés",
        "Café 😀 in Paris? 𝔘nknown 中文",
        "  leading and trailing spaces  ",
    ] {
        let e = s.encode(text, &now).unwrap();
        let want = tok.encode(text);
        assert_eq!(e.ids, want.ids, "{text}");
        assert_eq!(e.char_offsets, want.offsets, "{text}");
        assert_eq!((e.truncated, e.pieces_total, e.max_tokens), (false, want.pieces_total, MAX_TOKENS));
        assert_eq!(e.tokens, want.ids.iter().map(|&i| tok.vocab()[i as usize].clone()).collect::<Vec<_>>());
        assert_eq!(e.offsets.len(), e.ids.len());
        // Both kinds of offsets cut the same text out.
        for (&u, &c) in e.offsets.iter().zip(&e.char_offsets) {
            assert_eq!(js_slice(text, u), char_slice(text, c), "{text}: {u:?} vs {c:?}");
        }
        assert_eq!(e.shape, vec![HIDDEN]);
        assert_eq!(e.output.len(), HIDDEN);
        assert!(e.output.iter().all(|v| v.is_finite()), "{:?}", e.output);
        assert_eq!(e.width, Bits::MAX);
        assert!(e.ms > 0.0);
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn offsets_slice_back_to_the_words() {
    let mut s = session();
    let text = "😀 Hello, World! Unbelievable";
    let e = s.encode(text, &clock()).unwrap();
    assert_eq!(e.tokens, ["[CLS]", "[UNK]", "hello", ",", "world", "!", "un", "##believ", "##able", "[SEP]"]);
    let words: Vec<String> = e.offsets.iter().map(|&o| js_slice(text, o)).collect();
    assert_eq!(words, ["", "😀", "Hello", ",", "World", "!", "Un", "believ", "able", ""]);
    // The emoji is one character but two UTF-16 units.
    assert_eq!((e.char_offsets[1], e.offsets[1]), ((0, 1), (0, 2)));
    assert_eq!((e.char_offsets[2], e.offsets[2]), ((2, 7), (3, 8)));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_megabyte_is_truncated_and_reported() {
    let mut s = session();
    let sentence = "the quick brown fox jumps over the lazy dog. ";
    let text = sentence.repeat((1 << 20) / sentence.len() + 1);
    assert!(text.len() > 1 << 20);
    #[cfg(not(target_arch = "wasm32"))]
    let started = std::time::Instant::now();
    let e = s.encode(&text, &clock()).unwrap();
    #[cfg(not(target_arch = "wasm32"))]
    assert!(started.elapsed().as_secs_f64() < 5.0, "{:?}", started.elapsed());
    assert!(e.truncated);
    assert_eq!(e.ids.len(), MAX_TOKENS);
    assert_eq!(e.pieces_total, 10 * text.matches(sentence).count());
    assert_eq!(e.tokens[1..4], ["the", "quick", "brown"]);
    assert_eq!(e.tokens.last().unwrap(), "[SEP]");
    assert_eq!(js_slice(&text, e.offsets[MAX_TOKENS - 2]), ".");
    assert_eq!(e.output.len(), HIDDEN);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn empty_whitespace_and_enormous_text_are_refused() {
    let mut s = session();
    let now = clock();
    for text in ["", " ", "\n\t  \r\n", "\u{3000}\u{a0}"] {
        assert_eq!(kind(s.encode(text, &now)), (ErrorKind::InvalidArgument, "the text is empty".into()), "{text:?}");
    }
    let big = "a".repeat(MAX_TEXT_BYTES + 1);
    let (k, message) = kind(s.encode(&big, &now));
    assert_eq!(k, ErrorKind::LimitExceeded);
    assert!(message.contains(&(MAX_TEXT_BYTES + 1).to_string()), "{message}");
    // The session still works afterwards.
    assert_eq!(s.encode("hello", &now).unwrap().tokens, ["[CLS]", "hello", "[SEP]"]);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_wrong_kind_of_model_is_refused() {
    let now = clock();
    let mut image = Session::load(TINY_IMAGE, 1).unwrap();
    let (k, message) = kind(image.encode("hello", &now));
    assert_eq!(k, ErrorKind::InvalidArgument);
    assert!(message.contains("takes images"), "{message}");
    assert_eq!(kind(image.run_text("hello", &now)).0, ErrorKind::InvalidArgument);

    let mut text = session();
    let (k, message) = kind(text.run_image(&[0; 4 * 4 * 4], 4, 4, Default::default(), &now));
    assert_eq!(k, ErrorKind::InvalidArgument);
    assert!(message.contains("takes text"), "{message}");
    // An embedding model has no classes.
    let (k, message) = kind(text.run_text("hello", &now));
    assert_eq!(k, ErrorKind::InvalidArgument);
    assert!(message.contains("use encode()"), "{message}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn run_text_classifies_a_sentence() {
    let mut s = Session::load(&build(Head::Sentence), 1).unwrap();
    let now = clock();
    let text = "the quick brown fox";
    let r = s.run_text(text, &now).unwrap();
    let TextClasses::Text(c) = &r.classes else { panic!("expected one class per text") };
    assert_eq!(r.encoded.shape, vec![3]);
    assert_eq!(c.logits, r.encoded.output);
    assert_eq!(c.probabilities.len(), 3);
    assert!((c.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!(c.top.len(), 3);
    assert_eq!(c.top[0].index, c.predicted);
    assert_eq!(c.label.as_deref(), Some(SENTIMENT[c.predicted]));
    assert_eq!(r.encoded.ids, tokenizer().encode(text).ids);
    // The same as encode's output, at every width.
    for w in [8, 3, 1] {
        s.set_width(Bits::new(w).unwrap()).unwrap();
        let r = s.run_text(text, &now).unwrap();
        assert_eq!(r.encoded.output, s.encode(text, &now).unwrap().output);
        let TextClasses::Text(c) = r.classes else { panic!() };
        assert_eq!(c.width.get(), w);
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn run_text_tags_every_token() {
    let mut s = Session::load(&build(Head::Tagger), 1).unwrap();
    let text = "John lives in Paris";
    let r = s.run_text(text, &clock()).unwrap();
    let n = r.encoded.ids.len();
    assert_eq!(r.encoded.shape, vec![n, TAGS.len()]);
    let TextClasses::Tokens(t) = &r.classes else { panic!("expected a class per token") };
    assert_eq!((t.classes, t.logits.len(), t.probabilities.len()), (TAGS.len(), n * TAGS.len(), n * TAGS.len()));
    assert_eq!((t.predicted.len(), t.labels.len(), t.probability.len()), (n, n, n));
    for i in 0..n {
        let p = &t.probabilities[i * TAGS.len()..(i + 1) * TAGS.len()];
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let best = t.predicted[i] as usize;
        assert!(p.iter().all(|&x| x <= p[best]));
        assert_eq!(t.probability[i], p[best]);
        assert_eq!(t.labels[i].as_deref(), Some(TAGS[best]));
    }
    // "in" is not in the vocabulary: [UNK], still sliced back by its offsets.
    assert_eq!(r.encoded.tokens, ["[CLS]", "john", "lives", "[UNK]", "paris", "[SEP]"]);
    assert_eq!(js_slice(text, r.encoded.offsets[3]), "in");
}
