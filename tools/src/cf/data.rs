//! SemEval-2020 Task 5 CSVs (the official columns) and the dev split the trainer holds out.
//!
//! Subtask 1: `sentenceID,gold_label,sentence`. Subtask 2: `sentenceID,sentence,antecedent,
//! consequent,antecedent_startid,antecedent_endid,consequent_startid,consequent_endid` with
//! character offsets, end inclusive, -1/-1 where there is no consequent. The official test files
//! have the same columns, so every reader here accepts any file with them (extra columns ignored).

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// A character range of a sentence, end inclusive (SemEval's convention).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CharSpan {
    pub start: usize,
    pub end: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sentence1 {
    pub id: String,
    pub text: String,
    pub label: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sentence2 {
    pub id: String,
    pub text: String,
    pub antecedent: CharSpan,
    pub consequent: Option<CharSpan>,
}

/// A CSV with a header row, each row as `(line, fields by the named columns)`. Rows that do not
/// parse or miss a column are errors naming their line.
fn read_rows(path: &Path, columns: &[&str]) -> Result<Vec<(u64, Vec<String>)>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: reading the header row", path.display()))?.clone();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| {
            headers.iter().position(|h| h.trim_start_matches('\u{feff}') == *c).with_context(|| {
                format!("{}: no column {c:?} (columns: {})", path.display(), headers.iter().collect::<Vec<_>>().join(", "))
            })
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            anyhow::anyhow!("{}: line {line}: {e}", path.display())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let fields = index
            .iter()
            .zip(columns)
            .map(|(&i, c)| {
                record.get(i).map(str::to_string).with_context(|| {
                    format!("{}: line {line}: the row has {} fields, no {c:?}", path.display(), record.len())
                })
            })
            .collect::<Result<_>>()?;
        rows.push((line, fields));
    }
    Ok(rows)
}

/// Subtask-1 rows. Without `gold_label` (an unlabelled file) every label is false.
pub fn read_subtask1(path: &Path) -> Result<Vec<Sentence1>> {
    let labelled = has_column(path, "gold_label")?;
    let cols: &[&str] = if labelled { &["sentenceID", "sentence", "gold_label"] } else { &["sentenceID", "sentence"] };
    read_rows(path, cols)?
        .into_iter()
        .map(|(line, f)| {
            let label = match f.get(2).map(|s| s.trim()) {
                None | Some("0") => false,
                Some("1") => true,
                Some(other) => bail!("{}: line {line}: gold_label {other:?} is not 0 or 1", path.display()),
            };
            Ok(Sentence1 { id: f[0].clone(), text: f[1].clone(), label })
        })
        .collect()
}

/// Whether the CSV's header row names `column`.
pub fn has_column(path: &Path, column: &str) -> Result<bool> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: reading the header row", path.display()))?;
    Ok(headers.iter().any(|h| h.trim_start_matches('\u{feff}') == column))
}

/// Subtask-2 rows, offsets checked against the sentence (an antecedent is required; the
/// consequent is -1/-1 or a range inside the sentence).
pub fn read_subtask2(path: &Path) -> Result<Vec<Sentence2>> {
    let cols = ["sentenceID", "sentence", "antecedent_startid", "antecedent_endid", "consequent_startid", "consequent_endid"];
    read_rows(path, &cols)?
        .into_iter()
        .map(|(line, f)| {
            let chars = f[1].chars().count();
            let num = |i: usize| -> Result<i64> {
                f[i].trim().parse::<i64>().with_context(|| format!("{}: line {line}: {} {:?} is not an integer", path.display(), cols[i], f[i]))
            };
            let span = |a: i64, b: i64, what: &str| -> Result<Option<CharSpan>> {
                match (a, b) {
                    (-1, -1) => Ok(None),
                    (a, b) if 0 <= a && a <= b && (b as usize) < chars => Ok(Some(CharSpan { start: a as usize, end: b as usize })),
                    _ => bail!("{}: line {line}: {what} {a}..{b} is not a range of the {chars}-character sentence", path.display()),
                }
            };
            let Some(antecedent) = span(num(2)?, num(3)?, "antecedent")? else {
                bail!("{}: line {line}: the antecedent is -1/-1; subtask 2 sentences have one", path.display());
            };
            let consequent = span(num(4)?, num(5)?, "consequent")?;
            Ok(Sentence2 { id: f[0].clone(), text: f[1].clone(), antecedent, consequent })
        })
        .collect()
}

/// The numeric order of sentence ids (they are integers in the official files; others sort as
/// text after them).
fn id_key(id: &str) -> (u8, u64, String) {
    match id.trim().parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, id.to_string()),
    }
}

/// The last `fraction` of `items` by sentence id within each group `group(item)`: a stratified
/// hold-out that does not depend on file order. Returns (train, dev), each in id order.
pub fn split_last<T: Clone>(items: &[T], fraction: f64, id: impl Fn(&T) -> &str, group: impl Fn(&T) -> u8) -> (Vec<T>, Vec<T>) {
    let mut groups: Vec<u8> = items.iter().map(&group).collect();
    groups.sort_unstable();
    groups.dedup();
    let (mut train, mut dev) = (Vec::new(), Vec::new());
    for g in groups {
        let mut members: Vec<&T> = items.iter().filter(|t| group(t) == g).collect();
        members.sort_by_key(|t| id_key(id(t)));
        let n_dev = (members.len() as f64 * fraction).round() as usize;
        let cut = members.len() - n_dev;
        train.extend(members[..cut].iter().map(|t| (*t).clone()));
        dev.extend(members[cut..].iter().map(|t| (*t).clone()));
    }
    train.sort_by_key(|t| id_key(id(t)));
    dev.sort_by_key(|t| id_key(id(t)));
    (train, dev)
}

/// The dev fraction: the last 10% by sentence id.
pub const DEV_FRACTION: f64 = 0.1;

/// Both subtasks' train and dev sets. Subtask 1 is stratified by label, subtask 2 by whether a
/// consequent exists. A training sentence whose text is in either dev set is dropped, so that
/// neither task trains on the other's dev sentences (the two files share sentences).
pub struct Splits {
    pub train1: Vec<Sentence1>,
    pub dev1: Vec<Sentence1>,
    pub train2: Vec<Sentence2>,
    pub dev2: Vec<Sentence2>,
    /// Training sentences dropped because their text is a dev sentence.
    pub dropped: usize,
}

/// Subtask 1's (train, dev): the last 10% by id of each class.
pub fn split1(task1: &[Sentence1]) -> (Vec<Sentence1>, Vec<Sentence1>) {
    split_last(task1, DEV_FRACTION, |s| &s.id, |s| s.label as u8)
}

/// Subtask 2's (train, dev): the last 10% by id of the sentences with and without a consequent.
pub fn split2(task2: &[Sentence2]) -> (Vec<Sentence2>, Vec<Sentence2>) {
    split_last(task2, DEV_FRACTION, |s| &s.id, |s| s.consequent.is_some() as u8)
}

pub fn splits(task1: &[Sentence1], task2: &[Sentence2]) -> Splits {
    let (train1, dev1) = split1(task1);
    let (train2, dev2) = split2(task2);
    let dev_texts: HashSet<&str> = dev1.iter().map(|s| s.text.as_str()).chain(dev2.iter().map(|s| s.text.as_str())).collect();
    let (n1, n2) = (train1.len(), train2.len());
    let train1: Vec<Sentence1> = train1.iter().filter(|s| !dev_texts.contains(s.text.as_str())).cloned().collect();
    let train2: Vec<Sentence2> = train2.iter().filter(|s| !dev_texts.contains(s.text.as_str())).cloned().collect();
    let dropped = n1 - train1.len() + n2 - train2.len();
    Splits { train1, dev1, train2, dev2, dropped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_and_by_id() {
        let items: Vec<(String, u8)> = (0..40).map(|i| (format!("{}", 100 + (i * 7) % 40), (i % 4 == 0) as u8)).collect();
        let (train, dev) = split_last(&items, 0.1, |t| &t.0, |t| t.1);
        assert_eq!(train.len() + dev.len(), 40);
        assert_eq!(dev.iter().filter(|t| t.1 == 1).count(), 1);
        assert_eq!(dev.iter().filter(|t| t.1 == 0).count(), 3);
        // Each dev member has the largest ids of its group.
        for g in [0u8, 1] {
            let max_train = train.iter().filter(|t| t.1 == g).map(|t| t.0.parse::<u32>().unwrap()).max().unwrap();
            assert!(dev.iter().filter(|t| t.1 == g).all(|t| t.0.parse::<u32>().unwrap() > max_train));
        }
    }

    #[test]
    fn subtask2_rows_are_checked() {
        let dir = std::env::temp_dir().join(format!("anybit-cf-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let head = "sentenceID,sentence,antecedent,consequent,antecedent_startid,antecedent_endid,consequent_startid,consequent_endid\n";
        let good = dir.join("good.csv");
        std::fs::write(&good, format!("{head}1,\"If I had, I would.\",\"If I had\",I would,0,7,10,16\n2,If only.,If only,{{}},0,6,-1,-1\n")).unwrap();
        let rows = read_subtask2(&good).unwrap();
        assert_eq!(rows[0].antecedent, CharSpan { start: 0, end: 7 });
        assert_eq!(rows[0].consequent, Some(CharSpan { start: 10, end: 16 }));
        assert_eq!(rows[1].consequent, None);
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, format!("{head}1,Short.,x,y,0,3,4,40\n")).unwrap();
        let err = read_subtask2(&bad).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("consequent"), "{err}");
        let missing = dir.join("missing.csv");
        std::fs::write(&missing, "sentenceID,text\n1,x\n").unwrap();
        assert!(read_subtask1(&missing).unwrap_err().to_string().contains("no column \"sentence\""));
        std::fs::remove_dir_all(&dir).ok();
    }
}
