// The counterfactual scorer's CSV reader and writer (web/app/csv.js), in Node: quoted fields with
// commas, doubled quotes and line breaks, CRLF, a BOM, the SemEval files' columns, plain lines,
// malformed rows named by their line, and what the download writes reading back the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CsvError, parseRows, readSentences, RESULT_COLUMNS, resultRow, toCsv } from '../../web/app/csv.js';

test('quoted fields hold commas, doubled quotes and line breaks; rows start where they say', () => {
  const text = 'a,b,c\r\n1,"x, y","he said ""no"""\n2,"two\nlines",z\n3,,\n';
  const rows = parseRows(text);
  assert.deepEqual(rows.map((r) => r.fields), [['a', 'b', 'c'], ['1', 'x, y', 'he said "no"'], ['2', 'two\nlines', 'z'], ['3', '', '']]);
  assert.deepEqual(rows.map((r) => r.line), [1, 2, 3, 5]);
  // No final line break: the last row is still read; a final empty quoted field is a field.
  assert.deepEqual(parseRows('a,b\n1,""').map((r) => r.fields), [['a', 'b'], ['1', '']]);
});

test('malformed CSV: an unclosed quote and text after a closing quote name their line', () => {
  assert.throws(() => parseRows('a,b\n1,ok\n2,"never closed\n3,x\n'), (e) => e instanceof CsvError && e.line === 3 && /never closed/.test(e.message));
  assert.throws(() => parseRows('a,b\n1,"closed"then text\n'), (e) => e instanceof CsvError && e.line === 2 && /after the closing quote/.test(e.message));
  assert.throws(
    () => readSentences('sentenceID,sentence\n1,fine\n2,"a, b",extra\n'),
    (e) => e instanceof CsvError && e.line === 3 && /3 fields, the header has 2/.test(e.message),
  );
});

test('the SemEval subtask-1 file layout: sentenceID and sentence read, gold_label ignored, BOM tolerated', () => {
  const text = '\uFEFFsentenceID,gold_label,sentence\r\n100000,1,"If I had known, I would have come."\r\n100001,0,Plain text here.\r\n';
  const r = readSentences(text);
  assert.equal(r.format, 'csv');
  assert.deepEqual(r.items, [
    { id: '100000', sentence: 'If I had known, I would have come.', line: 2 },
    { id: '100001', sentence: 'Plain text here.', line: 3 },
  ]);
});

test('a CSV without sentenceID numbers its rows; empty sentences are skipped and reported', () => {
  const r = readSentences('sentence\nOne.\n""\n"Three, with a comma."\n');
  assert.equal(r.format, 'csv');
  assert.deepEqual(r.items.map((x) => [x.id, x.sentence]), [['1', 'One.'], ['3', 'Three, with a comma.']]);
  assert.deepEqual(r.skipped, [3]);
});

test('plain lines: one sentence each, blank lines skipped, commas and quotes kept as they are', () => {
  const r = readSentences('If I were you, I would go.\n\n"Had he known," she said.\r\nLast one');
  assert.equal(r.format, 'lines');
  assert.deepEqual(r.items, [
    { id: '1', sentence: 'If I were you, I would go.', line: 1 },
    { id: '3', sentence: '"Had he known," she said.', line: 3 },
    { id: '4', sentence: 'Last one', line: 4 },
  ]);
});

test('the download writes RESULT_COLUMNS and reads back to the same values', () => {
  const r = {
    counterfactual: true,
    probability: 0.9731234,
    antecedent: { start: 0, end: 14, text: 'If I had known,' },
    consequent: null,
  };
  const plain = { counterfactual: false, probability: 0.01, antecedent: null, consequent: null };
  const text = toCsv([RESULT_COLUMNS, resultRow('7', 'If I had known, "then"\nI would', r), resultRow('8', 'x', plain)]);
  const rows = parseRows(text).map((x) => x.fields);
  assert.deepEqual(rows[0], RESULT_COLUMNS);
  assert.deepEqual(rows[1], ['7', 'If I had known, "then"\nI would', '1', '0.973123', '0', '14', '-1', '-1', 'If I had known,', '']);
  assert.deepEqual(rows[2], ['8', 'x', '0', '0.010000', '-1', '-1', '-1', '-1', '', '']);
});
