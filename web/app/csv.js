// CSV in and out for the counterfactual scorer (scorer.js). Pure functions, no DOM, so the e2e
// suite tests them in Node too (e2e-tests/tests/csv.test.js).
//
// The reader follows RFC 4180 as the SemEval files use it: fields separated by commas, a field in
// double quotes may hold commas, newlines and doubled quotes (""), rows end with LF or CRLF. A
// malformed row is an error that names its line (1-based, the line the row starts on), never a
// silent guess: the visitor must be able to find it in the file.

/** A malformed input, with the line it was found on. */
export class CsvError extends Error {
  constructor(line, message) {
    super(`line ${line}: ${message}`);
    this.code = 'bad_csv';
    this.line = line;
  }
}

/**
 * Splits `text` into rows of fields: [{line, fields}], `line` being where the row starts. A
 * quoted field left open at the end, or text after a closing quote, is a CsvError.
 */
export function parseRows(text) {
  const rows = [];
  let fields = [];
  let field = '';
  let line = 1; // the current line
  let rowLine = 1; // where the current row started
  let quoted = false; // inside a quoted field
  let quoteLine = 0; // where that quoted field opened
  let afterQuote = false; // a quoted field just closed: only , or a line end may follow
  let fieldStarted = false;
  const endRow = () => {
    fields.push(field);
    rows.push({ line: rowLine, fields });
    fields = [];
    field = '';
    afterQuote = false;
    fieldStarted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
          afterQuote = true;
        }
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === ',') {
      fields.push(field);
      field = '';
      afterQuote = false;
      fieldStarted = false;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else if (afterQuote) {
      throw new CsvError(line, `text after the closing quote of field ${fields.length + 1} (a quote inside a quoted field is written "")`);
    } else if (c === '"' && !fieldStarted) {
      quoted = true;
      quoteLine = line;
      fieldStarted = true;
    } else {
      // A quote inside an unquoted field is kept as it is (as Rust's csv crate, which the CLI
      // uses, reads it).
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted) throw new CsvError(quoteLine, `a quoted field opens here and is never closed (field ${fields.length + 1})`);
  // The last row, unless the text ended with a line break.
  if (field !== '' || fields.length > 0 || afterQuote) endRow();
  return rows;
}

/** `header` names: is this a CSV header with a `sentence` column (not a sentence itself)? */
function sentenceColumn(fields) {
  return fields.findIndex((f, i) => (i === 0 ? f.replace(/^\uFEFF/, '') : f).trim().toLowerCase() === 'sentence');
}

/**
 * The sentences to score in `text`: a CSV with a header row that has a `sentence` column (and
 * optionally `sentenceID`; other columns, e.g. gold_label, are ignored), or else one sentence per
 * line. Returns {format: 'csv'|'lines', items: [{id, sentence, line}], skipped: [line]} where
 * `skipped` are rows whose sentence is empty or only spaces (there is nothing to score). The id
 * of a plain line is its line number. Throws CsvError for a malformed CSV.
 */
export function readSentences(text) {
  const firstEnd = text.search(/\r?\n|\r/);
  const first = firstEnd < 0 ? text : text.slice(0, firstEnd);
  // Only a first line that parses as a row and names a `sentence` column makes the input a CSV;
  // a plain sentence with a comma stays a sentence.
  let header = null;
  try {
    const rows = parseRows(first);
    if (rows.length && sentenceColumn(rows[0].fields) >= 0) header = rows[0].fields;
  } catch {
    header = null;
  }
  const items = [];
  const skipped = [];
  if (!header) {
    text.split(/\r?\n|\r/).forEach((s, i) => {
      if (s.trim() === '') return; // blank lines separate nothing
      items.push({ id: String(i + 1), sentence: s, line: i + 1 });
    });
    return { format: 'lines', items, skipped };
  }
  const rows = parseRows(text);
  const col = sentenceColumn(header);
  const idCol = header.findIndex((f, i) => (i === 0 ? f.replace(/^\uFEFF/, '') : f).trim() === 'sentenceID');
  for (const { line, fields } of rows.slice(1)) {
    // An empty line between rows is no row (a one-column CSV's empty sentence is skipped below).
    if (fields.length === 1 && fields[0] === '' && header.length > 1) continue;
    if (fields.length !== header.length) {
      throw new CsvError(line, `the row has ${fields.length} field${fields.length === 1 ? '' : 's'}, the header has ${header.length} (a field with a comma, quote or line break must be in double quotes)`);
    }
    const sentence = fields[col];
    if (sentence.trim() === '') {
      skipped.push(line);
      continue;
    }
    items.push({ id: idCol >= 0 ? fields[idCol] : String(items.length + skipped.length + 1), sentence, line });
  }
  return { format: 'csv', items, skipped };
}

/** One CSV field: quoted when it holds a comma, quote, line break or edge spaces. */
export function csvField(value) {
  const s = String(value);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows (arrays of values) as CSV text, CRLF line ends as RFC 4180 writes them. */
export function toCsv(rows) {
  return rows.map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** The columns of the scorer's download: subtask 1's label and both spans of subtask 2. */
export const RESULT_COLUMNS = [
  'sentenceID', 'sentence', 'pred_label', 'probability',
  'antecedent_startid', 'antecedent_endid', 'consequent_startid', 'consequent_endid',
  'antecedent', 'consequent',
];

/**
 * One result row for the download: `r` is a detect() result. Offsets are characters (code
 * points), end inclusive, -1/-1 for a missing span, as SemEval's files carry them.
 */
export function resultRow(id, sentence, r) {
  const span = (s) => (s ? [s.start, s.end] : [-1, -1]);
  return [
    id, sentence, r.counterfactual ? 1 : 0, r.probability.toFixed(6),
    ...span(r.antecedent), ...span(r.consequent),
    r.antecedent?.text ?? '', r.consequent?.text ?? '',
  ];
}
