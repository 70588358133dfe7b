// The counterfactual-detection demo (SemEval-2020 Task 5): a sentence is scored by the text model
// (session.detect) and shown with its verdict, probability, antecedent and consequent marked, the
// latency, and, at a width other than 8, whether the verdict or spans changed from the 8-bit
// result. The width switch and Auto work as for images, on this model's own session.
//
// The text model has its own session (its own worker): a session holds one model, and the image
// demo above keeps its MNIST model loaded. It is created lazily, when this section is scrolled to
// or first used, so that the text model's ~20 MB do not compete with the first digit prediction.
//
// URL parameters: ?cf=<url> loads another counterfactual .anybit file (the e2e tests use it for a
// small fixture and for a missing file); ?cf-width=<bits> starts at that width and fetches only
// the bit planes it needs (HTTP Range), a wider width picked later fetching the rest. Elements carry data-* attributes with the raw values
// (verdict, probability, width, character offsets), which the e2e tests read.

import { createSession } from '../anybit/index.js';
import { renderAccuracy } from './charts.js';
import { EXAMPLES } from './examples.js';
import { CsvScorer } from './scorer.js';
import { describe, differs, pct, renderMarked } from './spans.js';

export const DEFAULT_URL = 'models/counterfactual.anybit';

const $ = (id) => document.getElementById(id);
const bits = (w) => `${w} bit${w === 1 ? '' : 's'}`;
const size = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
// Results kept for the "changed from ... at 8 bits" comparison (width and text as the key).
const KEEP_RESULTS = 64;
const TYPING_PAUSE_MS = 400;

export class TextDemo {
  #opts;
  #url;
  #loading = null; // the promise of {session, info} once the load has started
  #session = null;
  #info = null;
  #gen = 0; // bumped per text or width change; older results are dropped
  #running = false;
  #dirty = false;
  #results = new Map(); // `${width}\n${text}` -> result
  #auto = false;
  #calibrated = false;
  #busy = false; // the CSV scorer runs: the width is fixed until it ends
  #scorer;
  #typing = 0; // the timer that scores once typing pauses
  // Width changes, Auto and the 8-bit comparison run one at a time, and the CSV scorer holds this
  // for its whole run: a detection must never see the width another step set for a moment.
  #lock = Promise.resolve();

  /**
   * `opts`: {build, threads} for createSession (the page's ?build and ?threads), url (?cf), width
   * (?cf-width: a progressive load).
   */
  constructor(opts = {}) {
    this.#opts = opts;
    this.#url = opts.url ?? DEFAULT_URL;
    this.#scorer = new CsvScorer({
      model: () => this.ensure(),
      width: () => this.#info?.width,
      busy: (on) => this.#setBusy(on),
      exclusive: (fn) => this.#exclusive(fn),
    });
    this.#renderExamples();
    $('cf-text').value = EXAMPLES[0].text;
    $('cf-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.#score();
    });
    // Typing re-scores once it pauses (a detection takes tens of ms; the pump drops stale ones).
    $('cf-text').addEventListener('input', () => {
      clearTimeout(this.#typing);
      if (this.#session) this.#typing = setTimeout(() => this.#score(), TYPING_PAUSE_MS);
    });
    // Ctrl/Cmd+Enter scores from the text box; Enter alone is a new line.
    $('cf-text').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.#score();
      }
    });
    $('cf-budget').addEventListener('change', () => {
      if (this.#auto) this.#pickAuto();
    });
    // As for images: back from a hidden tab the device may be busy with other work, so Auto times
    // the model again and re-decides.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible' || !this.#auto || this.#busy) return;
      this.#calibrated = false;
      this.#pickAuto();
    });
    // Lazy: the first use or the first sight of the section starts the load.
    const card = $('cf-card');
    for (const ev of ['focusin', 'pointerdown', 'dragenter']) card.addEventListener(ev, () => this.ensure().catch(() => {}), { once: true });
    if ('IntersectionObserver' in window) {
      const seen = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        seen.disconnect();
        this.ensure().catch(() => {});
      }, { threshold: 0.05 });
      seen.observe(card);
    }
  }

  /**
   * Starts the session and loads the model once; resolves to {session, info} or rejects with the
   * error already shown in the section. The first sentence is scored when it is in.
   */
  ensure() {
    this.#loading ??= this.#load();
    return this.#loading;
  }

  async #load() {
    const card = $('cf-card');
    card.dataset.state = 'loading';
    this.#status(`Loading the counterfactual model (${this.#url})…`);
    $('cf-load').hidden = false;
    performance.mark('anybit:cf-load-start');
    let session;
    let info;
    try {
      session = await createSession({ build: this.#opts.build ?? 'auto', threads: this.#opts.threads });
      const width = this.#opts.width;
      info = await session.load(this.#url, { onProgress: (p) => this.#progress(p), ...(width ? { width } : {}) });
      if (info.task?.type !== 'counterfactual' || !info.text) {
        throw Object.assign(new Error(`${this.#url} is ${info.text ? 'a text model' : 'an image model'} without a counterfactual head (its task: ${info.task?.type ?? 'none'})`), { code: 'not_counterfactual' });
      }
      if (typeof session.detect !== 'function' || typeof session.detectMany !== 'function') {
        throw Object.assign(new Error('this build of the runtime has no detect() or detectMany()'), { code: 'runtime_unavailable' });
      }
    } catch (e) {
      session?.dispose().catch(() => {});
      card.dataset.state = 'error';
      this.#alert(e, e.code === 'fetch_failed' ? 'The counterfactual model is not available' : 'Could not load the counterfactual model');
      $('cf-load').hidden = true;
      throw e;
    }
    performance.mark('anybit:cf-loaded');
    this.#session = session;
    this.#info = info;
    card.dataset.state = 'ready';
    card.dataset.model = info.name;
    $('cf-run').disabled = false;
    this.#renderWidths();
    this.#renderModelNote();
    this.#status(`${info.name}: ready. Type a sentence or pick an example.`);
    this.#pump();
    return { session, info };
  }

  #progress({ loaded, total, planes, planeTotal }) {
    const bar = $('cf-load-bar');
    bar.max = total || loaded || 1;
    bar.value = loaded;
    const bytes = total ? `${size(loaded)} of ${size(total)}` : size(loaded);
    const pl = planeTotal ? `, ${planes ?? 0} of ${planeTotal} bit planes` : '';
    $('cf-load-text').textContent = `Counterfactual model: ${bytes}${pl}`;
    $('cf-load').dataset.planes = String(planes ?? 0);
  }

  #renderExamples() {
    const list = $('cf-examples');
    for (const ex of EXAMPLES) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'example';
      b.textContent = ex.text;
      b.title = `SemEval train sentence ${ex.id}: ${ex.gold}`;
      b.dataset.id = ex.id;
      b.addEventListener('click', () => {
        $('cf-text').value = ex.text;
        this.#score();
      });
      list.append(b);
    }
  }

  /** Model, eval table and thresholds under the widths: what the file says it can do. */
  #renderModelNote() {
    const info = this.#info;
    const f1 = this.#f1Table();
    const bytes = info.transfer?.bytes ?? $('cf-load-bar').max;
    const planes = info.planesLoaded < 8 ? ` (${info.planesLoaded} of 8 bit planes fetched: a wider width fetches the rest)` : '';
    const parts = [`${info.name}, up to ${info.text.maxTokens} tokens, ${size(bytes)}${planes}`];
    if (f1) parts.push(`${f1.metric} on ${f1.dataset}${f1.n ? ` (${f1.n} sentences)` : ''} by width: ${f1.rows.map(([w, s]) => `${w}: ${s.toFixed(3)}`).join(', ')}`);
    $('cf-model-note').textContent = parts.join('. ') + '.';
    renderAccuracy($('cf-chart'), info.eval, info.width, { unit: 'sentences', split: 'dev' });
  }

  /** The eval table's first entry (subtask-1 F1, which the precision policy weighs), if any. */
  #f1Table() {
    const e = this.#info?.eval?.[0];
    if (!e?.accuracy?.length) return null;
    return { dataset: e.dataset ?? 'dev', metric: e.metric ?? 'accuracy', n: e.n, rows: [...e.accuracy].sort((a, b) => b[0] - a[0]) };
  }

  #renderWidths() {
    const set = $('cf-widths');
    set.querySelectorAll('label').forEach((l) => l.remove());
    const supported = new Set(this.#info.widths.map((w) => w.w));
    const add = (value, text, title, disabled = false) => {
      const label = document.createElement('label');
      const input = document.createElement('input');
      input.type = 'radio';
      input.name = 'cf-width';
      input.value = value;
      input.disabled = disabled;
      input.checked = value === String(this.#info.width);
      input.addEventListener('change', () => this.#pickWidth(value === 'auto' ? 'auto' : Number(value)));
      label.append(input, ` ${text}`);
      label.title = title;
      set.append(label);
    };
    for (let w = 8; w >= 1; w--) add(String(w), String(w), supported.has(w) ? `${w}-bit weights` : `this model has no ${w}-bit variant`, !supported.has(w));
    add('auto', 'Auto', 'the precision policy picks the width for the latency budget, from this device\'s measured speed');
    set.disabled = this.#busy;
  }

  #exclusive(fn) {
    const run = this.#lock.then(() => fn());
    this.#lock = run.catch(() => {});
    return run;
  }

  #setBusy(on) {
    this.#busy = on;
    $('cf-widths').disabled = on || !this.#info;
    $('cf-auto').classList.toggle('disabled', on);
    $('cf-budget').disabled = on;
  }

  async #pickWidth(width) {
    if (width === 'auto') return this.#pickAuto();
    this.#auto = false;
    $('cf-decision').hidden = true;
    return this.#switchTo(width);
  }

  async #switchTo(width) {
    const { session } = await this.ensure();
    try {
      // A width picked by hand runs with the whole pool again (Auto may have chosen one thread).
      await this.#exclusive(async () => {
        if (this.#info.threads !== this.#poolThreads()) await session.setThreads(this.#poolThreads());
        this.#info = await session.setWidth(width);
      });
    } catch (e) {
      this.#alert(e, `Could not switch to ${bits(width)}`);
      return;
    }
    this.#checkWidth();
    this.#renderModelNote();
    this.#gen++;
    this.#pump();
  }

  #poolThreads() {
    return this.#session?.build?.threadCount ?? this.#info.threads;
  }

  #checkWidth() {
    const r = document.querySelector(`#cf-widths input[value="${this.#auto ? 'auto' : this.#info.width}"]`);
    if (r) r.checked = true;
  }

  // Auto: time the model on this device once, then let the policy pick the width (and threads)
  // whose predicted latency per sentence fits the budget, most accurate first by the eval table.
  async #pickAuto() {
    const { session } = await this.ensure();
    this.#auto = true;
    const budget = Number($('cf-budget').value);
    const box = $('cf-decision');
    try {
      const stale = await this.#exclusive(async () => {
        if (!this.#calibrated) {
          this.#status('Auto: timing the model at every width on this device…');
          await session.calibrate(5);
          this.#calibrated = true;
        }
        const d = await session.decide(budget > 0 ? { latencyMs: budget } : {});
        if (!this.#auto) return true;
        this.#renderDecision(box, d, budget);
        await session.setThreads(d.threads);
        this.#info = await session.setWidth(d.width);
        return false;
      });
      if (stale) return;
    } catch (e) {
      this.#alert(e, 'The precision policy could not decide');
      return;
    }
    this.#checkWidth();
    this.#renderModelNote();
    this.#gen++;
    this.#pump();
  }

  #renderDecision(box, d, budget) {
    box.hidden = false;
    box.replaceChildren();
    box.dataset.width = String(d.width);
    box.dataset.budget = String(budget);
    const head = document.createElement('p');
    head.className = 'decision';
    head.textContent = `Auto chose ${d.width}-bit weights (${d.isa}, ${d.threads} thread${d.threads === 1 ? '' : 's'}).`;
    const reasons = document.createElement('ul');
    reasons.className = 'reasons';
    for (const r of d.reasons) reasons.append(Object.assign(document.createElement('li'), { textContent: r }));
    const table = document.createElement('table');
    table.className = 'options';
    const cap = table.createCaption();
    cap.textContent = 'Each width on this device';
    const headRow = table.createTHead().insertRow();
    for (const h of ['bits', 'threads', 'predicted ms', 'dev score']) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = h;
      headRow.append(th);
    }
    const body = table.createTBody();
    for (const o of d.options) {
      const tr = body.insertRow();
      if (o.width === d.width) tr.className = 'chosen';
      for (const text of [String(o.width), String(o.threads), o.predictedMs.toFixed(1), o.accuracy == null ? '–' : o.accuracy.toFixed(3)]) {
        tr.insertCell().textContent = text;
      }
    }
    box.append(head, reasons, table);
  }

  /** Scores the text in the box (loading the model first if needed). */
  async #score() {
    clearTimeout(this.#typing);
    this.#gen++;
    try {
      await this.ensure();
    } catch {
      return; // shown by the load
    }
    this.#pump();
  }

  // One detection at a time; a text or width change during one marks the state dirty and the
  // latest input runs next (typing fast never queues up stale sentences).
  async #pump() {
    if (this.#running) {
      this.#dirty = true;
      return;
    }
    this.#running = true;
    $('cf-card').setAttribute('aria-busy', 'true');
    try {
      do {
        this.#dirty = false;
        await this.#runCurrent();
      } while (this.#dirty);
    } finally {
      this.#running = false;
      $('cf-card').setAttribute('aria-busy', 'false');
    }
  }

  async #runCurrent() {
    const session = this.#session;
    if (!session) return;
    const text = $('cf-text').value;
    const gen = this.#gen;
    if (text.trim() === '') {
      $('cf-result').hidden = true;
      this.#status('Type a sentence, or pick an example, then press Detect.');
      return;
    }
    const t0 = performance.now();
    let r;
    try {
      r = await session.detect(text);
    } catch (e) {
      this.#alert(e, 'Could not score the sentence');
      return;
    }
    const roundTrip = performance.now() - t0;
    this.#remember(r.width, text, r);
    if (gen !== this.#gen) return; // a newer text or width runs next
    this.#clearAlert();
    this.#show(text, r, roundTrip);
    // The 8-bit result of the same sentence, for "changed from ... at 8 bits". Switching costs a
    // repack of the weights, no download; not while the CSV scorer runs (its rows must all be
    // scored at one width), and not when the 8-bit planes are not loaded.
    let ref = this.#results.get(`8\n${text}`);
    if (!ref && r.width !== 8 && !this.#busy && this.#info.loadedWidths?.includes(8)) {
      try {
        ref = await this.#exclusive(async () => {
          const back = this.#info.width;
          await session.setWidth(8);
          try {
            return await session.detect(text);
          } finally {
            this.#info = await session.setWidth(back);
          }
        });
        this.#remember(8, text, ref);
      } catch (e) {
        this.#alert(e, 'Could not score the sentence at 8 bits for the comparison');
      }
      if (gen !== this.#gen) return;
    }
    this.#showChange(r, ref);
    this.#status(`${r.counterfactual ? 'Counterfactual' : 'Not counterfactual'} at ${bits(r.width)}, ${r.ms.toFixed(1)} ms.`);
    $('cf-result').dataset.scored = String(Number($('cf-result').dataset.scored ?? 0) + 1);
  }

  #remember(width, text, r) {
    const key = `${width}\n${text}`;
    this.#results.delete(key);
    this.#results.set(key, r);
    if (this.#results.size > KEEP_RESULTS) this.#results.delete(this.#results.keys().next().value);
  }

  #show(text, r, roundTrip) {
    const out = $('cf-verdict');
    out.textContent = `${r.counterfactual ? 'Counterfactual' : 'Not counterfactual'} (${pct(r.probability)})`;
    out.dataset.counterfactual = String(r.counterfactual);
    out.dataset.probability = String(r.probability);
    out.dataset.width = String(r.width);
    const res = $('cf-result');
    res.hidden = false;
    res.dataset.counterfactual = String(r.counterfactual);
    res.dataset.width = String(r.width);
    res.dataset.text = text;
    $('cf-threshold').textContent = `probability that the sentence is counterfactual; the threshold at ${bits(r.width)} is ${pct(r.threshold)} (chosen on the dev split)`;
    renderMarked($('cf-marked'), text, r.counterfactual ? r : null);
    // The decoder finds spans in every sentence (subtask 2 takes each as counterfactual); they are
    // marked only where the verdict is counterfactual.
    $('cf-legend').hidden = !r.counterfactual;
    $('cf-no-consequent').hidden = !(r.counterfactual && !r.consequent);
    const lat = $('cf-latency');
    lat.textContent = `${r.ms.toFixed(1)} ms in the worker (${roundTrip.toFixed(1)} ms with the trip to it), ${r.tokens} tokens, ${bits(r.width)}`;
    lat.dataset.ms = String(r.ms);
    const trunc = $('cf-truncated');
    trunc.hidden = !r.truncated;
    trunc.textContent = r.truncated
      ? `This sentence is longer than the model takes (${this.#info.text.maxTokens} tokens with [CLS] and [SEP]): only its beginning was scored, and spans can only be found there.`
      : '';
  }

  #showChange(r, ref) {
    const el = $('cf-change');
    if (r.width === 8 || !ref) {
      el.textContent = r.width === 8 ? '' : 'No 8-bit result to compare with (the 8-bit planes are not loaded, or the CSV scorer is running).';
      delete el.dataset.changed;
      return;
    }
    const changed = differs(r, ref);
    el.dataset.changed = String(changed);
    el.textContent = changed ? `Changed from ${describe(ref)} at 8 bits.` : `Same verdict and spans as at 8 bits (${pct(ref.probability)} there).`;
  }

  #status(text) {
    $('cf-status').textContent = text;
  }

  #alert(err, context) {
    const box = $('cf-error');
    box.replaceChildren();
    const title = document.createElement('strong');
    title.textContent = `${context}: `;
    const msg = document.createElement('span');
    msg.textContent = err?.message ?? String(err);
    const hint = document.createElement('p');
    hint.className = 'hint';
    hint.textContent = hintFor(err?.code, this.#url);
    box.append(title, msg, hint);
    box.dataset.code = err?.code ?? 'error';
    box.hidden = false;
    this.#status(`${context}.`);
  }

  #clearAlert() {
    $('cf-error').hidden = true;
    delete $('cf-error').dataset.code;
  }
}

function hintFor(code, url) {
  switch (code) {
    case 'fetch_failed':
      return `${url} is not on this server. The shipped model is models/counterfactual.anybit, fine-tuned by the anybit trainer; trunk build copies it into dist/models/ when it exists. The digit demos above do not need it.`;
    case 'runtime_unavailable':
      return 'This browser could not run the text model. Try a current Chrome, Firefox or Safari.';
    case 'not_counterfactual':
      return 'Give ?cf= a counterfactual model (a text model with a counterfactual task), or drop the parameter.';
    case 'bad_magic': case 'unsupported_version': case 'truncated': case 'bad_layout':
    case 'bad_graph': case 'bad_shape': case 'bad_value': case 'limit_exceeded':
      return `${url} is not a model this page's runtime can read: damaged, incomplete, or written by a newer anybit than the runtime (rebuild the page with trunk build). Copy the file again or reload.`;
    case 'corrupt':
      return 'The downloaded bytes do not match the checksums the model file records. Reload the page; if it persists, copy the model file to the server again.';
    default:
      return 'Reload the page to try again.';
  }
}
