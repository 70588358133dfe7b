//! BERT's pre-tokenizer: words are split at whitespace, and every punctuation character is a word
//! of its own.
//!
//! This runs on the normalized text, so "whitespace" is Rust's `char::is_whitespace` (the
//! normalizer has already turned BERT's wider notion into plain spaces when `clean_text` is on),
//! and "punctuation" is ASCII punctuation (which includes symbols such as `$`, `+`, `^`) or any
//! Unicode P* category in HF's tables.

use unicode_categories::UnicodeCategories;

use super::normalize::NormChar;

/// What the pre-tokenizer does with one character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharClass {
    /// Ends the current word and is dropped.
    Space,
    /// Ends the current word and is a word by itself.
    Punct,
    /// Extends the current word.
    Word,
}

pub fn classify(c: char) -> CharClass {
    if c.is_whitespace() {
        CharClass::Space
    } else if c.is_ascii_punctuation() || c.is_punctuation() {
        CharClass::Punct
    } else {
        CharClass::Word
    }
}

/// Calls `word` with each word as a non-empty index range into `chars`, in order. A callback
/// rather than a `Vec` so a megabyte of text costs no list of its words.
pub fn for_each_word(chars: &[NormChar], mut word: impl FnMut(std::ops::Range<usize>)) {
    let mut start = 0;
    for (i, n) in chars.iter().enumerate() {
        match classify(n.c) {
            CharClass::Word => continue,
            CharClass::Space => {
                if start < i {
                    word(start..i);
                }
            }
            CharClass::Punct => {
                if start < i {
                    word(start..i);
                }
                word(i..i + 1);
            }
        }
        start = i + 1;
    }
    if start < chars.len() {
        word(start..chars.len());
    }
}
