//! BERT's normalizer, with every output character remembering which input character it came
//! from.
//!
//! A model only needs the ids, but a caller that highlights or explains a prediction needs to
//! point back into the text the user typed, after characters were dropped (controls, accents),
//! inserted (spaces around CJK ideographs) or multiplied (`İ` lowercases to two characters).
//! Carrying the original index alongside each character through every step keeps that mapping
//! exact without a second pass.
//!
//! The steps and their order follow Hugging Face `tokenizers`' `BertNormalizer`, and so do the
//! Unicode tables: `unicode_categories` and `unicode-normalization-alignments` are the crates HF
//! builds with (Unicode 9-era tables). Newer tables would be "more correct" and would also
//! disagree with the model's training-time tokenizer on every character assigned or
//! recategorised since, which is the one thing a tokenizer for an existing model must not do.
//! `chars.json.gz` in the tests holds HF's answer for every scalar value.

use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::char::{canonical_combining_class, decompose_canonical};

use super::TokenizerConfig;

/// A normalized character and the index (in Unicode scalar values) of the input character it
/// stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormChar {
    pub c: char,
    pub orig: usize,
}

/// `\t`, `\n`, `\r` are controls by category, but BERT treats them as the spaces they look like.
fn is_bert_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// "Other" in HF's sense: Cc, Cf and Co. Unassigned code points (Cn) are kept, as HF keeps them.
fn is_bert_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// The ideograph blocks BERT splits one character at a time; kana and hangul are not among them
/// because those scripts separate words with spaces.
pub fn is_cjk_ideograph(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

/// Runs the enabled steps in HF's order: clean, CJK spacing, accents (NFD, drop Mn), lowercase.
pub fn normalize(text: &str, config: &TokenizerConfig) -> Vec<NormChar> {
    let mut out: Vec<NormChar> = Vec::with_capacity(text.len());
    for (orig, c) in text.chars().enumerate() {
        let c = if !config.clean_text {
            c
        } else if c == '\0' || c == '\u{FFFD}' || is_bert_control(c) {
            continue;
        } else if is_bert_whitespace(c) {
            ' '
        } else {
            c
        };
        if config.handle_chinese_chars && is_cjk_ideograph(c) {
            // The spaces make each ideograph a word; all three point back at the ideograph.
            out.extend([' ', c, ' '].map(|c| NormChar { c, orig }));
        } else {
            out.push(NormChar { c, orig });
        }
    }
    if config.strip_accents {
        out = strip_accents(&out);
    }
    if config.lowercase {
        out = lowercase(&out);
    }
    out
}

/// NFD, then drop nonspacing marks.
///
/// The decomposition and combining classes come from HF's crate, but the iterator around them is
/// ours: the crate's `nfd()` iterator also reaches its compatibility (NFKD) tables, which would
/// add about 100 KB to every wasm build for a path BERT never takes.
///
/// NFD reorders the marks after each starter by combining class (a stable sort), so its output is
/// not one-to-one with its input. HF assigns origins by position: a char that is the tail of a
/// decomposition inherits the origin of the input char consumed last, any other output char
/// consumes the next input char. Doing the same keeps offsets identical to HF even for marks out
/// of canonical order.
fn strip_accents(chars: &[NormChar]) -> Vec<NormChar> {
    let mut out = Vec::with_capacity(chars.len());
    let mut next = 0usize;
    // (combining class, char, is the tail of a decomposition) since the last starter.
    let mut pending: Vec<(u8, char, bool)> = Vec::new();
    let mut parts: Vec<char> = Vec::new();
    let mut flush = |pending: &mut Vec<(u8, char, bool)>, out: &mut Vec<NormChar>| {
        pending.sort_by_key(|p| p.0);
        for (_, c, tail) in pending.drain(..) {
            let orig = if tail {
                next.checked_sub(1).and_then(|i| chars.get(i)).map_or(0, |n| n.orig)
            } else {
                let orig = chars.get(next).map_or(0, |n| n.orig);
                next += 1;
                orig
            };
            if !c.is_mark_nonspacing() {
                out.push(NormChar { c, orig });
            }
        }
    };
    for n in chars {
        parts.clear();
        decompose_canonical(n.c, |d| parts.push(d));
        for (i, &d) in parts.iter().enumerate() {
            let class = canonical_combining_class(d);
            if class == 0 {
                flush(&mut pending, &mut out);
            }
            pending.push((class, d, i > 0));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Full Unicode lowercasing: one char may become several (`İ` -> `i` + U+0307), each keeping the
/// origin of the char it came from.
fn lowercase(chars: &[NormChar]) -> Vec<NormChar> {
    let mut out = Vec::with_capacity(chars.len());
    for n in chars {
        out.extend(n.c.to_lowercase().map(|c| NormChar { c, orig: n.orig }));
    }
    out
}

/// The normalized text alone, as HF's `normalizer.normalize_str` returns it: what the tests
/// compare against HF for every scalar value.
pub fn normalize_str(text: &str, config: &TokenizerConfig) -> String {
    normalize(text, config).into_iter().map(|n| n.c).collect()
}
