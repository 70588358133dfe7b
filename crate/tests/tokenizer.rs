//! The WordPiece tokenizer against Hugging Face `tokenizers`, the tokenizer the text models were
//! trained with: every id and every offset must be identical. The references were written by HF
//! itself (`scripts/tokenizer-fixture.py`; `fixtures/tokenizer/README.md` says what each file
//! holds). The edge corpus and truncation cases are compiled in, so they run natively and as wasm
//! (Node and Chromium, `scripts/wasm-test.sh`); the all-code-points table and SemEval-2020 task 5
//! (16,551 sentences, read from `shared/data` when present) are native only.

use anybit::text::normalize::normalize_str;
use anybit::text::{Encoding, Tokenizer, TokenizerConfig};
use anybit::ErrorKind;
use serde_json::Value;

const VOCAB: &str = include_str!("fixtures/tokenizer/vocab.txt");
const EDGE: &str = include_str!("fixtures/tokenizer/edge.jsonl");
const VARIANTS: &str = include_str!("fixtures/tokenizer/variants.jsonl");
const TRUNCATION: &str = include_str!("fixtures/tokenizer/truncation.jsonl");

/// MiniLM's tokenizer with no length limit worth the name, as the fixtures were made with HF's
/// truncation off.
fn tokenizer() -> Tokenizer {
    Tokenizer::from_vocab_txt(VOCAB, TokenizerConfig::bert_uncased(usize::MAX)).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn offsets(v: &Value) -> Vec<(usize, usize)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize))
        .collect()
}

/// The first index where two lists differ, or their common length when one is a prefix of the
/// other.
fn first_difference<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}

/// None when `got` equals HF's ids and offsets, else a report naming the text and the first
/// differing position.
fn compare(what: &str, text: &str, got: &Encoding, want_ids: &[u32], want_offsets: &[(usize, usize)]) -> Option<String> {
    if got.ids == want_ids && got.offsets == want_offsets {
        return None;
    }
    let shown: String = text.chars().take(300).collect();
    Some(format!(
        "{what}: {shown:?}\n  ours: {:?}\n  HF:   {:?}\n  offsets ours: {:?}\n  offsets HF:   {:?}\n  first difference: ids at {}, offsets at {}",
        got.ids,
        want_ids,
        got.offsets,
        want_offsets,
        first_difference(&got.ids, want_ids),
        first_difference(&got.offsets, want_offsets)
    ))
}

#[path = "common/suite.rs"]
#[macro_use]
mod suite;

suite! {
    fn edge_corpus_matches_hf() {
        let tok = tokenizer();
        let mut failures = Vec::new();
        let mut n = 0;
        for line in EDGE.lines() {
            let rec: Value = serde_json::from_str(line).unwrap();
            let text = match rec.get("text") {
                Some(t) => t.as_str().unwrap().to_string(),
                None => rec["repeat"].as_str().unwrap().repeat(rec["n"].as_u64().unwrap() as usize),
            };
            let got = tok.encode(&text);
            let (want_ids, want_offsets) = (ids(&rec["ids"]), offsets(&rec["offsets"]));
            failures.extend(compare("edge", &text, &got, &want_ids, &want_offsets));
            if let Some(want) = rec.get("normalized") {
                let ours = normalize_str(&text, tok.config());
                if ours != want.as_str().unwrap() {
                    failures.push(format!("normalized {text:?}: ours {ours:?} HF {want}"));
                }
            }
            assert_eq!(got.pieces_total, want_ids.len() - 2);
            assert!(!got.truncated);
            n += 1;
        }
        assert!(n >= 70, "the edge corpus lost lines: {n}");
        assert!(failures.is_empty(), "{} of {n} edge texts differ from HF:\n{}", failures.len(), failures.join("\n"));
    }

    fn other_normalizer_settings_match_hf() {
        let vocab: Vec<String> = tokenizer().vocab().to_vec();
        let mut failures = Vec::new();
        let mut tokenizers = std::collections::HashMap::new();
        let mut n = 0;
        for line in VARIANTS.lines() {
            let rec: Value = serde_json::from_str(line).unwrap();
            let flag = |name: &str| rec[name].as_bool().unwrap();
            let mut config = TokenizerConfig::bert_uncased(usize::MAX);
            config.clean_text = flag("clean_text");
            config.handle_chinese_chars = flag("handle_chinese_chars");
            config.strip_accents = flag("strip_accents");
            config.lowercase = flag("lowercase");
            let key = format!("{config:?}");
            let tok = tokenizers.entry(key).or_insert_with(|| Tokenizer::new(vocab.clone(), config.clone()).unwrap());
            let text = rec["text"].as_str().unwrap();
            let what = format!("clean {} chinese {} accents {} lower {}", config.clean_text, config.handle_chinese_chars, config.strip_accents, config.lowercase);
            failures.extend(compare(&what, text, &tok.encode(text), &ids(&rec["ids"]), &offsets(&rec["offsets"])));
            let ours = normalize_str(text, &config);
            if ours != rec["normalized"].as_str().unwrap() {
                failures.push(format!("{what}: normalized {text:?}: ours {ours:?} HF {}", rec["normalized"]));
            }
            n += 1;
        }
        assert_eq!(tokenizers.len(), 15);
        assert!(failures.is_empty(), "{} of {n} differ from HF:\n{}", failures.len(), failures.join("\n"));
    }

    fn truncation_matches_hf() {
        let tok = tokenizer();
        let mut n = 0;
        for line in TRUNCATION.lines() {
            let rec: Value = serde_json::from_str(line).unwrap();
            let text = rec["text"].as_str().unwrap();
            let max_length = rec["max_length"].as_u64().unwrap() as usize;
            let total = rec["pieces_total"].as_u64().unwrap() as usize;
            let got = tok.encode_with_max(text, max_length);
            let (want_ids, want_offsets) = (ids(&rec["ids"]), offsets(&rec["offsets"]));
            if let Some(report) = compare(&format!("max_length {max_length}"), text, &got, &want_ids, &want_offsets) {
                panic!("{report}");
            }
            assert_eq!(got.ids.len(), max_length.min(total + 2));
            assert_eq!((got.truncated, got.pieces_total), (total + 2 > max_length, total));
            // The same limit through the config instead of the argument.
            let mut config = tok.config().clone();
            config.max_length = max_length.max(2);
            let limited = Tokenizer::new(tok.vocab().to_vec(), config).unwrap();
            assert_eq!(limited.encode(text), got);
            n += 1;
        }
        assert_eq!(n, 16);
    }

    fn truncation_flags_and_tiny_limits() {
        let tok = tokenizer();
        let (cls, sep) = (tok.token_id("[CLS]").unwrap(), tok.token_id("[SEP]").unwrap());
        let full = tok.encode("hello world, again");
        assert_eq!((full.pieces_total, full.truncated), (4, false));
        let exact = tok.encode_with_max("hello world, again", 6);
        assert_eq!((exact.ids.clone(), exact.truncated), (full.ids.clone(), false));
        let cut = tok.encode_with_max("hello world, again", 5);
        assert_eq!(cut.ids, [&full.ids[..4], &[sep]].concat());
        assert_eq!((cut.truncated, cut.pieces_total), (true, 4));
        for max in [0, 1, 2] {
            let e = tok.encode_with_max("hello", max);
            assert_eq!((e.ids, e.offsets, e.truncated, e.pieces_total), (vec![cls, sep], vec![(0, 0); 2], true, 1));
        }
        let empty = tok.encode_with_max("", 2);
        assert_eq!((empty.ids, empty.truncated, empty.pieces_total), (vec![cls, sep], false, 0));
    }

    fn a_megabyte_comes_back_truncated() {
        let tok = Tokenizer::from_vocab_txt(VOCAB, TokenizerConfig::bert_uncased(128)).unwrap();
        // Words, punctuation, ideographs, emoji, accents and one 100 KB word: every path at scale.
        let unit = "Lorem ipsum, dolor sit amet! 北京欢迎你 😀👨‍👩‍👧 naïve cafe\u{301} ";
        let mut text = unit.repeat((1 << 20) / unit.len());
        text.push_str(&"x".repeat(100 * 1024));
        assert!(text.len() > 1 << 20);
        let e = tok.encode(&text);
        assert_eq!((e.ids.len(), e.offsets.len(), e.truncated), (128, 128, true));
        let per_unit = tok.encode_with_max(unit, usize::MAX).pieces_total;
        assert_eq!(e.pieces_total, per_unit * ((1 << 20) / unit.len()) + 1);
        assert_eq!(e.ids[1..127], tok.encode(&unit.repeat(20)).ids[1..127]);
    }

    fn constructor_rejects_bad_vocabularies() {
        let v = |tokens: &[&str]| tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];
        let config = || TokenizerConfig::bert_uncased(16);
        let kind = |r: anybit::Result<Tokenizer>| r.map(|_| ()).unwrap_err().kind();

        assert!(Tokenizer::new(v(&specials), config()).is_ok());
        assert_eq!(kind(Tokenizer::new(vec![], config())), ErrorKind::InvalidArgument);
        assert_eq!(kind(Tokenizer::new(v(&["[PAD]", "[CLS]", "[SEP]", "a"]), config())), ErrorKind::InvalidArgument);
        assert_eq!(kind(Tokenizer::new(v(&["[PAD]", "[UNK]", "[SEP]"]), config())), ErrorKind::InvalidArgument);
        assert_eq!(kind(Tokenizer::new(v(&["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a"]), config())), ErrorKind::BadValue);
        assert_eq!(kind(Tokenizer::new(v(&["[PAD]", "[UNK]", "", "[CLS]", "[SEP]"]), config())), ErrorKind::BadValue);
        let long = "x".repeat(257);
        assert_eq!(kind(Tokenizer::new(v(&["[PAD]", "[UNK]", "[CLS]", "[SEP]", &long]), config())), ErrorKind::BadValue);
        assert!(Tokenizer::new(v(&["[PAD]", "[UNK]", "[CLS]", "[SEP]", &long[..256]]), config()).is_ok());
        let mut short = config();
        short.max_length = 1;
        assert_eq!(kind(Tokenizer::new(v(&specials), short)), ErrorKind::InvalidArgument);
        let too_many: Vec<String> = specials.iter().map(|s| s.to_string()).chain((0..(1 << 20)).map(|i| i.to_string())).collect();
        assert_eq!(kind(Tokenizer::new(too_many, config())), ErrorKind::BadValue);

        // vocab.txt: CRLF and one final newline are fine; a blank line inside would shift ids.
        let crlf = Tokenizer::from_vocab_txt("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\n", config()).unwrap();
        assert_eq!((crlf.vocab().len(), crlf.token_id("hello")), (5, Some(4)));
        assert_eq!(kind(Tokenizer::from_vocab_txt("[PAD]\n\n[UNK]\n[CLS]\n[SEP]\n", config())), ErrorKind::BadValue);
        assert_eq!(kind(Tokenizer::from_vocab_txt("", config())), ErrorKind::InvalidArgument);
        let full = tokenizer();
        assert_eq!((full.vocab().len(), full.token_id("[UNK]"), full.token_id("##s"), full.token_id("nope-not-a-token")), (30522, Some(100), Some(2015), None));
    }

    fn config_round_trips_and_rejects_unknown_fields() {
        let config = TokenizerConfig::bert_uncased(128);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<TokenizerConfig>(&json).unwrap(), config);
        let extra = json.replacen('{', "{\"do_basic_tokenize\":true,", 1);
        assert!(serde_json::from_str::<TokenizerConfig>(&extra).is_err());
    }

    fn tiny_vocabularies_follow_the_rules() {
        // A hand-made vocabulary where the expected pieces can be read off directly.
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "##a", "un##", "!"];
        let mut config = TokenizerConfig::bert_uncased(64);
        config.max_input_chars_per_word = 10;
        let tok = Tokenizer::new(vocab.iter().map(|s| s.to_string()).collect(), config).unwrap();
        let e = tok.encode("UNAFFABLE! unaffablea unaffableaa unafx");
        // "unaffableaa" is 11 chars: [UNK] by length; "unafx" has no piece for "fx": [UNK] whole,
        // not "un ##a [UNK]".
        assert_eq!(e.ids, [2, 4, 5, 6, 9, 4, 5, 6, 7, 1, 1, 3]);
        assert_eq!(e.offsets, [(0, 0), (0, 2), (2, 5), (5, 9), (9, 10), (11, 13), (13, 16), (16, 20), (20, 21), (22, 33), (34, 39), (0, 0)]);
    }
}

/// Native only: the gzipped fixtures need flate2, and SemEval is read from disk.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;
    use anybit::text::pretokenize::{classify, CharClass};
    use std::collections::HashMap;
    use std::io::Read;
    use std::path::Path;

    fn gunzip(path: &Path) -> String {
        let mut out = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut out).unwrap();
        out
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer").join(name)
    }

    fn in_ranges(ranges: &[(u32, u32)], cp: u32) -> bool {
        let i = ranges.partition_point(|&(_, end)| end < cp);
        ranges.get(i).is_some_and(|&(start, _)| start <= cp)
    }

    fn ranges(v: &Value) -> Vec<(u32, u32)> {
        v.as_array().unwrap().iter().map(|r| (r[0].as_u64().unwrap() as u32, r[1].as_u64().unwrap() as u32)).collect()
    }

    /// Every Unicode scalar value through the normalizer and the pre-tokenizer's classifier:
    /// a Unicode-table difference anywhere in the code space fails here, not in production.
    #[test]
    fn every_code_point_matches_hf() {
        let table: Value = serde_json::from_str(&gunzip(&fixture("chars.json.gz"))).unwrap();
        let (removed, spaced) = (ranges(&table["removed"]), ranges(&table["spaced"]));
        let (punct, space) = (ranges(&table["punct"]), ranges(&table["space"]));
        let mapped: HashMap<u32, &str> =
            table["mapped"].as_array().unwrap().iter().map(|m| (m[0].as_u64().unwrap() as u32, m[1].as_str().unwrap())).collect();
        let config = TokenizerConfig::bert_uncased(512);
        let mut bad = Vec::new();
        let mut checked = 0;
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let cp = c as u32;
            let want = if in_ranges(&removed, cp) {
                String::new()
            } else if in_ranges(&spaced, cp) {
                format!(" {c} ")
            } else {
                mapped.get(&cp).map_or_else(|| c.to_string(), |s| s.to_string())
            };
            let got = normalize_str(&c.to_string(), &config);
            if got != want {
                bad.push(format!("U+{cp:04X}: normalized ours {got:?} HF {want:?}"));
            }
            let want_class = if in_ranges(&space, cp) {
                CharClass::Space
            } else if in_ranges(&punct, cp) {
                CharClass::Punct
            } else {
                CharClass::Word
            };
            if classify(c) != want_class {
                bad.push(format!("U+{cp:04X}: pre-tokenizer ours {:?} HF {want_class:?}", classify(c)));
            }
            checked += 1;
        }
        assert_eq!(checked, 0x110000 - 0x800);
        assert!(bad.is_empty(), "{} code points differ from HF:\n{}", bad.len(), bad.iter().take(50).cloned().collect::<Vec<_>>().join("\n"));
    }

    /// The columns of a CSV file as Python's `csv` reads them: quoted fields may hold commas,
    /// doubled quotes and line breaks.
    fn csv_records(text: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let (mut record, mut field) = (Vec::new(), String::new());
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => record.push(std::mem::take(&mut field)),
                (false, '\r') if chars.peek() == Some(&'\n') => {}
                (false, '\n') => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (false, c) => field.push(c),
            }
        }
        if !field.is_empty() || !record.is_empty() {
            record.push(field);
            records.push(record);
        }
        records
    }

    /// sentenceID -> sentence for one SemEval file.
    fn sentences(path: &Path) -> HashMap<String, String> {
        let records = csv_records(&std::fs::read_to_string(path).unwrap());
        let header = &records[0];
        let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{}: no column {name}", path.display()));
        let (id, sentence) = (col("sentenceID"), col("sentence"));
        records[1..].iter().map(|r| (r[id].clone(), r[sentence].clone())).collect()
    }

    #[test]
    fn semeval_matches_hf() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/semeval2020-task5");
        let files = ["subtask1_train.csv", "subtask2_train.csv"];
        let missing: Vec<String> = files.iter().map(|f| dir.join(f)).filter(|p| !p.exists()).map(|p| p.display().to_string()).collect();
        if !missing.is_empty() {
            println!("SKIPPED semeval_matches_hf: missing {}", missing.join(", "));
            return;
        }
        let texts: HashMap<&str, HashMap<String, String>> = files.iter().map(|f| (*f, sentences(&dir.join(f)))).collect();
        let tok = tokenizer();
        let (mut same, mut total, mut truncated_checked) = (0, 0, 0);
        let mut failures = Vec::new();
        for line in gunzip(&fixture("semeval.jsonl.gz")).lines() {
            let rec: Value = serde_json::from_str(line).unwrap();
            let (file, id) = (rec["file"].as_str().unwrap(), rec["id"].as_str().unwrap());
            let text = texts[file].get(id).unwrap_or_else(|| panic!("{file} has no sentence {id}"));
            assert_eq!(text.chars().count() as u64, rec["chars"].as_u64().unwrap(), "{file} {id}: the CSV was read differently from Python's csv");
            let mut at = 0i64;
            let flat: Vec<usize> = rec["offset_deltas"].as_array().unwrap().iter().map(|d| {
                at += d.as_i64().unwrap();
                at as usize
            }).collect();
            let want_offsets: Vec<(usize, usize)> = flat.chunks(2).map(|p| (p[0], p[1])).collect();
            let want_ids = ids(&rec["ids"]);
            let got = tok.encode(text);
            total += 1;
            match compare(&format!("{file} {id}"), text, &got, &want_ids, &want_offsets) {
                None => same += 1,
                Some(report) => failures.push(report),
            }
            if let Some(want) = rec.get("ids128") {
                let cut = tok.encode_with_max(text, 128);
                assert_eq!(cut.ids, ids(want), "{file} {id}: truncated to 128");
                assert!(cut.truncated && cut.pieces_total == want_ids.len() - 2);
                truncated_checked += 1;
            }
        }
        for f in failures.iter().take(20) {
            println!("{f}");
        }
        println!("{same} of {total} sentences identical (ids and offsets); {truncated_checked} longer than 128 tokens also identical truncated");
        assert_eq!(total, 16551);
        assert_eq!(same, total, "{} sentences differ from HF", total - same);
    }
}
