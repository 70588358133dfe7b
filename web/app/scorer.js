// The CSV scorer of the counterfactual demo: a dropped or chosen CSV file (a `sentence` column,
// optionally `sentenceID`; SemEval's files work as they are) or pasted lines (one sentence each)
// are scored in the worker with session.detectMany, with progress and Cancel; the table shows
// each verdict and span, and the download holds both subtasks' outputs (csv.js RESULT_COLUMNS).
//
// The input is checked before the model is asked for anything, so an empty or oversized input or
// a malformed row gets its message at once, even while the model is still loading.

import { CsvError, readSentences, RESULT_COLUMNS, resultRow, toCsv } from './csv.js';
import { pct } from './spans.js';
import { renderRunProgress } from './view.js';

/** The most text scored at once (1 MiB): about 5,000 typical SemEval sentences, minutes of work. */
export const MAX_BYTES = 1024 * 1024;
/** Rows drawn in the table (the download has them all): thousands of rows slow the page down. */
const SHOW_ROWS = 1000;

const $ = (id) => document.getElementById(id);
const bits = (w) => `${w} bit${w === 1 ? '' : 's'}`;
const mib = (n) => `${(n / 1048576).toFixed(2)} MiB (${n.toLocaleString('en-US')} bytes)`;

function inputError(message, code = 'invalid_argument') {
  return Object.assign(new Error(message), { code });
}

export class CsvScorer {
  #ctx;
  #running = null; // {controller, done, total}
  #source = { name: 'pasted' }; // where the text came from, for the download's name
  #url = null; // object URL of the last download
  #runs = 0;

  /**
   * `ctx`: {model(): Promise<{session, info}> (loads it once), width(): the current width,
   * busy(on): fixes the width while scoring, exclusive(fn): runs fn with width changes held off}.
   */
  constructor(ctx) {
    this.#ctx = ctx;
    $('cf-score').addEventListener('click', () => this.run());
    $('cf-cancel').addEventListener('click', () => this.cancel());
    $('cf-lines').addEventListener('input', () => {
      this.#source = { name: 'pasted' };
    });
    const file = $('cf-file');
    file.addEventListener('change', () => {
      this.useFile(file.files[0]);
      file.value = '';
    });
    const drop = $('cf-scorer');
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('dragging');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('dragging');
      this.useFile(e.dataTransfer?.files?.[0]);
    });
  }

  /** A chosen or dropped file: checked for size, read as UTF-8 text into the box, then scored. */
  async useFile(file) {
    if (!file || this.#running) return;
    this.#clearAlert();
    if (file.size > MAX_BYTES) {
      this.#alert(inputError(`${file.name} is ${mib(file.size)}; the scorer takes at most 1 MiB (1,048,576 bytes) at a time (about 5,000 sentences). Split the file and score the parts one after another.`, 'limit_exceeded'), 'Too much text');
      return;
    }
    let text;
    try {
      text = await file.text();
    } catch (e) {
      this.#alert(inputError(`could not read ${file.name}: ${e.message}`), 'Could not read the file');
      return;
    }
    if (text.includes('\0')) {
      this.#alert(inputError(`${file.name} is not a text file (it holds NUL bytes); give a CSV file or plain text, one sentence per line.`), 'Not a CSV file');
      return;
    }
    $('cf-lines').value = text;
    this.#source = { name: file.name.replace(/\.[^.]*$/, '') || 'file' };
    await this.run();
  }

  cancel() {
    if (!this.#running) return;
    this.#running.controller.abort();
    $('cf-score-text').textContent = `Cancelling after ${this.#running.done} of ${this.#running.total} sentences…`;
  }

  /** The sentences in the box, or throws a message for the visitor. */
  #sentences() {
    const text = $('cf-lines').value;
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > MAX_BYTES) {
      throw inputError(`that is ${mib(bytes)} of text; the scorer takes at most 1 MiB (1,048,576 bytes) at a time (about 5,000 sentences). Split it and score the parts one after another.`, 'limit_exceeded');
    }
    if (text.trim() === '') throw inputError('nothing to score: paste sentences, one per line, or choose or drop a CSV file with a sentence column.');
    const read = readSentences(text); // throws CsvError naming the line
    if (!read.items.length) {
      const why = read.skipped.length ? `its ${read.skipped.length} row${read.skipped.length === 1 ? ' has' : 's have'} an empty sentence` : 'it has a header row and no rows';
      throw inputError(`nothing to score in the CSV: ${why}.`);
    }
    return read;
  }

  /** Scores every sentence in the box; resolves when done, cancelled or failed. */
  async run() {
    if (this.#running) return;
    this.#clearAlert();
    let read;
    try {
      read = this.#sentences();
    } catch (e) {
      this.#alert(e, e instanceof CsvError ? 'A row of the CSV is malformed' : e.code === 'limit_exceeded' ? 'Too much text' : 'Nothing to score');
      return;
    }
    const me = { controller: new AbortController(), done: 0, total: read.items.length };
    this.#running = me;
    this.#setState('running');
    this.#progress(0, read.items.length);
    let model;
    try {
      $('cf-score-status').textContent = 'Loading the model…';
      model = await this.#ctx.model();
    } catch {
      this.#running = null;
      this.#setState('idle');
      $('cf-score-status').textContent = 'The model could not be loaded (see above).';
      return;
    }
    // The width is fixed for the whole run: every row is scored at the width the table names.
    this.#ctx.busy(true);
    let results;
    let width;
    const t0 = performance.now();
    try {
      results = await this.#ctx.exclusive(async () => {
        width = this.#ctx.width();
        $('cf-score-status').textContent = `Scoring ${read.items.length} sentence${read.items.length === 1 ? '' : 's'} at ${bits(width)}…`;
        return model.session.detectMany(read.items.map((it) => it.sentence), {
          signal: me.controller.signal,
          onProgress: (p) => {
            if (this.#running === me) this.#progress(p.done ?? 0, p.total ?? me.total);
          },
        });
      });
    } catch (e) {
      this.#running = null;
      this.#ctx.busy(false);
      this.#setState('idle');
      if (e?.code === 'aborted') $('cf-score-status').textContent = `Cancelled after ${me.done} of ${me.total} sentences; nothing was kept.`;
      else this.#alert(e ?? {}, 'Scoring failed');
      return;
    }
    const seconds = (performance.now() - t0) / 1000;
    this.#running = null;
    this.#ctx.busy(false);
    this.#render(read, results, width, seconds);
    this.#setState('done');
  }

  #setState(state) {
    const box = $('cf-scorer');
    box.dataset.state = state;
    const busy = state === 'running';
    box.setAttribute('aria-busy', String(busy));
    const refocus = !busy && document.activeElement === $('cf-cancel');
    $('cf-score').disabled = busy;
    $('cf-cancel').hidden = !busy;
    $('cf-cancel').disabled = !busy;
    $('cf-score-progress-box').hidden = !busy;
    $('cf-lines').readOnly = busy;
    if (busy && document.activeElement === $('cf-score')) $('cf-cancel').focus();
    if (refocus) $('cf-score').focus();
  }

  #progress(done, total) {
    if (this.#running) Object.assign(this.#running, { done, total });
    renderRunProgress('cf-score-progress', 'cf-score-text', done, total, `${done} of ${total} sentences`);
  }

  #render(read, results, width, seconds) {
    this.#runs += 1;
    const rows = read.items.map((it, i) => resultRow(it.id, it.sentence, results[i]));
    const truncated = read.items.filter((_, i) => results[i].truncated).map((it) => it.line);
    const positives = results.filter((r) => r.counterfactual).length;

    const body = $('cf-table').tBodies[0];
    body.replaceChildren();
    read.items.slice(0, SHOW_ROWS).forEach((it, i) => {
      const r = results[i];
      const tr = body.insertRow();
      tr.dataset.id = it.id;
      tr.dataset.label = r.counterfactual ? '1' : '0';
      tr.classList.toggle('positive', r.counterfactual);
      const cells = [
        it.id,
        it.sentence,
        r.counterfactual ? 'counterfactual' : 'no',
        pct(r.probability),
        r.antecedent ? r.antecedent.text : '–',
        r.consequent ? r.consequent.text : '–',
        r.truncated ? 'truncated' : '',
      ];
      for (const text of cells) tr.insertCell().textContent = text;
      tr.cells[1].className = 'sentence';
      // Spans of a sentence judged not counterfactual are subtask 2's answer if it were one (the
      // download has them, as the CLI writes them); greyed here.
      if (!r.counterfactual) for (const c of [tr.cells[4], tr.cells[5]]) c.className = 'muted';
    });

    const csv = toCsv([RESULT_COLUMNS, ...rows]);
    const link = $('cf-download');
    if (this.#url) URL.revokeObjectURL(this.#url);
    this.#url = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
    link.href = this.#url;
    link.download = `${this.#source.name}-counterfactual-${width}bit.csv`;

    const n = results.length;
    const parts = [`${n} sentence${n === 1 ? '' : 's'} scored at ${bits(width)} in ${seconds.toFixed(1)} s (${(n / Math.max(seconds, 1e-3)).toFixed(1)} per second): ${positives} counterfactual.`];
    if (n > SHOW_ROWS) parts.push(`The table shows the first ${SHOW_ROWS}; the download has all ${n}.`);
    if (read.skipped.length) parts.push(`Skipped ${read.skipped.length} row${read.skipped.length === 1 ? '' : 's'} with an empty sentence (line${read.skipped.length === 1 ? '' : 's'} ${read.skipped.slice(0, 10).join(', ')}${read.skipped.length > 10 ? ', …' : ''}).`);
    const summary = $('cf-score-summary');
    summary.textContent = parts.join(' ');
    summary.dataset.n = String(n);
    summary.dataset.width = String(width);
    const trunc = $('cf-score-truncated');
    trunc.hidden = !truncated.length;
    trunc.dataset.lines = truncated.join(',');
    trunc.textContent = truncated.length
      ? `${truncated.length} sentence${truncated.length === 1 ? ' was' : 's were'} longer than the model takes and scored on ${truncated.length === 1 ? 'its' : 'their'} beginning only (line${truncated.length === 1 ? '' : 's'} ${truncated.slice(0, 10).join(', ')}${truncated.length > 10 ? ', …' : ''}; marked “truncated” in the table).`
      : '';
    const res = $('cf-score-result');
    res.hidden = false;
    res.dataset.runs = String(this.#runs);
    $('cf-score-status').textContent = `Done: ${n} sentence${n === 1 ? '' : 's'} at ${bits(width)}.`;
  }

  #alert(err, context) {
    const box = $('cf-score-error');
    box.replaceChildren();
    const title = document.createElement('strong');
    title.textContent = `${context}: `;
    const msg = document.createElement('span');
    msg.textContent = err.message ?? String(err);
    box.append(title, msg);
    box.dataset.code = err.code ?? 'error';
    if (err.line) box.dataset.line = String(err.line);
    else delete box.dataset.line;
    box.hidden = false;
    $('cf-score-status').textContent = `${context}.`;
  }

  #clearAlert() {
    const box = $('cf-score-error');
    box.hidden = true;
    box.replaceChildren();
    delete box.dataset.code;
    delete box.dataset.line;
  }
}
