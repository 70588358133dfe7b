//! WordPiece: each word becomes the longest vocabulary entry that starts it, then the longest
//! `##` continuation after that, and so on; a word with any unmatched rest, or longer than
//! `max_input_chars_per_word`, becomes one `[UNK]`.
//!
//! Greedy longest-match is what the model was trained with, so it is reproduced exactly rather
//! than improved on. Two things keep it linear in the text length where a literal reading is
//! not: continuations live in their own map without the prefix (no string is built per try),
//! and no candidate longer than the longest vocabulary entry is ever looked up, so each
//! character is the start of at most that many tries.

use std::collections::HashMap;
use std::ops::Range;

use super::normalize::NormChar;

/// One word piece: its id and its character range in the original text.
pub type Piece = (u32, (usize, usize));

#[derive(Clone)]
pub struct WordPiece {
    /// Every token, as written in the vocabulary: the candidates for a word's first piece.
    initial: HashMap<String, u32>,
    /// Tokens that start with the continuing prefix, stored without it.
    continuing: HashMap<String, u32>,
    max_initial_bytes: usize,
    max_continuing_bytes: usize,
    unk: u32,
    max_chars: usize,
}

impl WordPiece {
    /// `vocab` has already been checked (no duplicates, `unk` present) by `Tokenizer::new`.
    pub fn new(vocab: &[String], prefix: &str, unk: u32, max_chars: usize) -> WordPiece {
        let mut initial = HashMap::with_capacity(vocab.len());
        let mut continuing = HashMap::new();
        for (id, token) in vocab.iter().enumerate() {
            let id = id as u32;
            initial.insert(token.clone(), id);
            if let Some(rest) = token.strip_prefix(prefix) {
                // With an empty prefix every token continues a word, which is what HF does too.
                continuing.entry(rest.to_string()).or_insert(id);
            }
        }
        let max_initial_bytes = initial.keys().map(String::len).max().unwrap_or(0);
        let max_continuing_bytes = continuing.keys().map(String::len).max().unwrap_or(0);
        WordPiece { initial, continuing, max_initial_bytes, max_continuing_bytes, unk, max_chars }
    }

    /// The id of a token exactly as the vocabulary spells it.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.initial.get(token).copied()
    }

    /// Appends the pieces of one word (a non-empty range of `chars`) to `out`. `scratch` holds
    /// the word's UTF-8 and char boundaries; it is passed in so a long text reuses one buffer.
    pub fn push_word(&self, chars: &[NormChar], range: Range<usize>, scratch: &mut Scratch, out: &mut Vec<Piece>) {
        let word = &chars[range];
        let (Some(first), Some(last)) = (word.first(), word.last()) else { return };
        let whole = (first.orig, last.orig + 1);
        if word.len() > self.max_chars {
            out.push((self.unk, whole));
            return;
        }
        scratch.text.clear();
        scratch.bounds.clear();
        for n in word {
            scratch.bounds.push(scratch.text.len());
            scratch.text.push(n.c);
        }
        scratch.bounds.push(scratch.text.len());

        let mark = out.len();
        let mut start = 0;
        while start < word.len() {
            let (map, max_bytes) = if start == 0 {
                (&self.initial, self.max_initial_bytes)
            } else {
                (&self.continuing, self.max_continuing_bytes)
            };
            let from = scratch.bounds[start];
            // The longest candidate that could be in the map at all.
            let limit = from.saturating_add(max_bytes);
            let mut end = start + scratch.bounds[start..].partition_point(|&b| b <= limit) - 1;
            let found = loop {
                if end <= start {
                    break None;
                }
                if let Some(&id) = map.get(&scratch.text[from..scratch.bounds[end]]) {
                    break Some(id);
                }
                end -= 1;
            };
            match found {
                Some(id) => {
                    out.push((id, (word[start].orig, word[end - 1].orig + 1)));
                    start = end;
                }
                None => {
                    out.truncate(mark);
                    out.push((self.unk, whole));
                    return;
                }
            }
        }
    }
}

/// Buffers one word's text and character boundaries between calls.
#[derive(Default)]
pub struct Scratch {
    text: String,
    bounds: Vec<usize>,
}
