//! `anybit tokenize`: the ids and character offsets a text model's own tokenizer gives, one JSON
//! line per input, for checking against any reference (docs/TEXT.md).

use std::io::Write;
use std::path::Path;

use anybit::text::{Encoding, Tokenizer};
use anyhow::{bail, Context, Result};

/// The tokenizer a `.anybit` text model carries.
pub fn tokenizer_of(model: &Path) -> Result<Tokenizer> {
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let file = anybit::format::read(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let Some(text) = &file.graph().text else {
        bail!("{} is not a text model: it carries no vocabulary", model.display());
    };
    Tokenizer::new(text.vocab.clone(), text.tokenizer.clone()).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))
}

/// One output line: `{"ids":[...],"offsets":[[start,end],...],"truncated":false}`.
pub fn json_line(e: &Encoding) -> String {
    let offsets: Vec<[usize; 2]> = e.offsets.iter().map(|&(s, t)| [s, t]).collect();
    serde_json::json!({ "ids": e.ids, "offsets": offsets, "truncated": e.truncated }).to_string()
}

/// The texts of column `column` of a CSV file with a header row; a malformed row is an error
/// naming its line.
pub fn csv_column(path: &Path, column: &str) -> Result<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: reading the header row", path.display()))?.clone();
    let Some(index) = headers.iter().position(|h| h == column) else {
        bail!("{}: no column {column:?} (columns: {})", path.display(), headers.iter().collect::<Vec<_>>().join(", "));
    };
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            anyhow::anyhow!("{}: line {line}: {e}", path.display())
        })?;
        match record.get(index) {
            Some(text) => out.push(text.to_string()),
            None => bail!(
                "{}: line {}: the row has {} fields, no {column:?}",
                path.display(),
                record.position().map_or(0, |p| p.line()),
                record.len()
            ),
        }
    }
    Ok(out)
}

/// Writes one JSON line per text.
pub fn run(tokenizer: &Tokenizer, texts: &[String], out: &mut impl Write) -> Result<()> {
    for t in texts {
        writeln!(out, "{}", json_line(&tokenizer.encode(t)))?;
    }
    Ok(())
}
