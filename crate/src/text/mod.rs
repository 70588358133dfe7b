//! Text to token ids for BERT-family encoders (MiniLM and kin), inside the runtime.
//!
//! A text model in the browser must tokenize exactly as the model was trained, or it silently
//! answers a different question; so this is not "a WordPiece tokenizer" but Hugging Face
//! `tokenizers`' BertNormalizer + BertPreTokenizer + WordPiece, reproduced id for id and offset
//! for offset (`crate/tests/tokenizer.rs` checks it against fixtures HF wrote,
//! `scripts/tokenizer-fixture.py`). It is plain Rust with no I/O, so the same code runs natively
//! and in every wasm build; the vocabulary arrives as strings from whoever loaded it.
//!
//! Time and memory are linear in the text: user input is arbitrary, and a pasted megabyte must
//! come back truncated, not hang the page. Nothing here panics on any input.
//!
//! - `normalize`: cleaning, CJK spacing, accent stripping, lowercasing, each character keeping
//!   the index of the input character it came from (for offsets).
//! - `pretokenize`: whitespace and punctuation splits.
//! - `wordpiece`: greedy longest-match pieces.
//! - `spans`: counterfactual detection's output decoded into a verdict and character spans.

pub mod normalize;
pub mod pretokenize;
pub mod spans;
pub mod wordpiece;

use std::collections::HashSet;
use std::fmt;

use crate::error::{ErrorKind, Result};

/// How text is cut into tokens: the fields of HF's `BertNormalizer` and `WordPiece` a BERT
/// tokenizer needs, with `tokenizer.json`'s `strip_accents: null` already resolved.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    /// BertNormalizer.lowercase.
    pub lowercase: bool,
    /// Resolved: tokenizer.json's `null` means "= lowercase".
    pub strip_accents: bool,
    pub clean_text: bool,
    pub handle_chinese_chars: bool,
    pub unk_token: String,
    pub cls_token: String,
    pub sep_token: String,
    pub pad_token: String,
    /// "##" for BERT.
    pub continuing_subword_prefix: String,
    /// 100 for BERT; a longer word is one `unk_token`.
    pub max_input_chars_per_word: usize,
    /// Tokens including `[CLS]` and `[SEP]`; longer encodings are truncated.
    pub max_length: usize,
}

impl TokenizerConfig {
    /// The settings of `bert-base-uncased` and the MiniLM sentence encoders built on its
    /// vocabulary.
    pub fn bert_uncased(max_length: usize) -> Self {
        TokenizerConfig {
            lowercase: true,
            strip_accents: true,
            clean_text: true,
            handle_chinese_chars: true,
            unk_token: "[UNK]".into(),
            cls_token: "[CLS]".into(),
            sep_token: "[SEP]".into(),
            pad_token: "[PAD]".into(),
            continuing_subword_prefix: "##".into(),
            max_input_chars_per_word: 100,
            max_length,
        }
    }
}

/// The most entries a vocabulary may have: BERT's has 30,522 and the largest multilingual ones
/// about 250,000; the cap stops a hostile file from making us build a giant map.
pub const MAX_VOCAB: usize = 1 << 20;
/// The longest token, in UTF-8 bytes.
pub const MAX_TOKEN_BYTES: usize = 256;

/// A checked vocabulary and configuration, ready to encode.
#[derive(Clone)]
pub struct Tokenizer {
    vocab: Vec<String>,
    config: TokenizerConfig,
    wordpiece: wordpiece::WordPiece,
    cls: u32,
    sep: u32,
}

impl fmt::Debug for Tokenizer {
    /// The vocabulary is tens of thousands of strings; its size says enough.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer").field("vocab_len", &self.vocab.len()).field("config", &self.config).finish()
    }
}

/// Token ids for one text, with where each token came from.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Encoding {
    pub ids: Vec<u32>,
    /// Character offsets (Unicode scalar values, like Python str indices) into the ORIGINAL text,
    /// end exclusive; `[CLS]`/`[SEP]` get (0, 0) like HF.
    pub offsets: Vec<(usize, usize)>,
    pub truncated: bool,
    /// Word pieces the text had before truncation (excluding `[CLS]`/`[SEP]`).
    pub pieces_total: usize,
}

impl Tokenizer {
    /// Checks: vocab non-empty, <= 1<<20 entries, no empty/duplicate token, each token <= 256
    /// bytes, the four special tokens present, max_length >= 2.
    pub fn new(vocab: Vec<String>, config: TokenizerConfig) -> Result<Tokenizer> {
        if vocab.is_empty() {
            crate::bail!(ErrorKind::InvalidArgument, "the vocabulary is empty");
        }
        if vocab.len() > MAX_VOCAB {
            crate::bail!(ErrorKind::BadValue, "the vocabulary has {} tokens, more than the {} allowed", vocab.len(), MAX_VOCAB);
        }
        let mut seen = HashSet::with_capacity(vocab.len());
        for (i, token) in vocab.iter().enumerate() {
            if token.is_empty() {
                crate::bail!(ErrorKind::BadValue, "vocabulary entry {i} is empty");
            }
            if token.len() > MAX_TOKEN_BYTES {
                crate::bail!(ErrorKind::BadValue, "vocabulary entry {i} is {} bytes long, more than {MAX_TOKEN_BYTES}", token.len());
            }
            if !seen.insert(token.as_str()) {
                crate::bail!(ErrorKind::BadValue, "vocabulary entry {i} ({token:?}) appears twice");
            }
        }
        drop(seen);
        if config.max_length < 2 {
            crate::bail!(ErrorKind::InvalidArgument, "max_length is {}, but [CLS] and [SEP] alone need 2", config.max_length);
        }
        let find = |what: &str, token: &str| -> Result<u32> {
            match vocab.iter().position(|t| t == token) {
                Some(id) => Ok(id as u32),
                None => crate::bail!(ErrorKind::InvalidArgument, "the {what} token {token:?} is not in the vocabulary"),
            }
        };
        let unk = find("unknown", &config.unk_token)?;
        let cls = find("CLS", &config.cls_token)?;
        let sep = find("SEP", &config.sep_token)?;
        find("padding", &config.pad_token)?;
        let wordpiece = wordpiece::WordPiece::new(&vocab, &config.continuing_subword_prefix, unk, config.max_input_chars_per_word);
        Ok(Tokenizer { vocab, config, wordpiece, cls, sep })
    }

    /// A `vocab.txt`: one token per line, the line number being its id. `\r\n` endings and one
    /// final newline are accepted; any other empty line is an error, as it would shift every id
    /// after it.
    pub fn from_vocab_txt(text: &str, config: TokenizerConfig) -> Result<Tokenizer> {
        let body = text.strip_suffix('\n').unwrap_or(text);
        let vocab = if body.is_empty() {
            Vec::new()
        } else {
            body.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line).to_string()).collect()
        };
        Tokenizer::new(vocab, config)
    }

    pub fn vocab(&self) -> &[String] {
        &self.vocab
    }

    pub fn config(&self) -> &TokenizerConfig {
        &self.config
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.wordpiece.id(token)
    }

    /// `[CLS]` tokens `[SEP]`, truncated to config.max_length (keeping the first max_length-2 word
    /// pieces).
    pub fn encode(&self, text: &str) -> Encoding {
        self.encode_with_max(text, self.config.max_length)
    }

    /// As [`Tokenizer::encode`] with another length limit; below 2 it is taken as 2.
    pub fn encode_with_max(&self, text: &str, max_length: usize) -> Encoding {
        let keep = max_length.max(2) - 2;
        let chars = normalize::normalize(text, &self.config);
        let mut ids = Vec::with_capacity(keep.min(chars.len()) + 2);
        let mut offsets = Vec::with_capacity(ids.capacity());
        ids.push(self.cls);
        offsets.push((0, 0));
        let mut pieces_total = 0usize;
        let mut scratch = wordpiece::Scratch::default();
        let mut word_pieces = Vec::new();
        // Every word is still split after the limit: `pieces_total` reports what was cut.
        pretokenize::for_each_word(&chars, |range| {
            word_pieces.clear();
            self.wordpiece.push_word(&chars, range, &mut scratch, &mut word_pieces);
            for &(id, offset) in &word_pieces {
                if pieces_total < keep {
                    ids.push(id);
                    offsets.push(offset);
                }
                pieces_total += 1;
            }
        });
        ids.push(self.sep);
        offsets.push((0, 0));
        Encoding { ids, offsets, truncated: pieces_total > keep, pieces_total }
    }
}
