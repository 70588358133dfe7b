// The adversarial-example demo: the visitor picks an image (a test image, the drawing on the pad
// or an image file), an attack and its settings and the width to attack at; attack() runs in a
// worker session of the same model (progress, Cancel through an AbortSignal), and the page shows the
// original, the perturbation on a diverging colour scale with its L2 and Linf norms, the
// adversarial image, the prediction at every width for both, and a PNG of the adversarial image.
//
// Elements carry data-* attributes with the raw values (state, class per width, norms), which the
// e2e tests read instead of parsing text. Settings the page cannot even parse (no number where one
// is needed) are refused here; ranges (eps, steps, target) are the runtime's to check, and its
// `invalid_argument` message is shown as it is, in the section's alert.

import { toInput } from './idx.js';
import { renderRunProgress } from './view.js';
import { decodeImageFile } from './imagefile.js';
import { drawDiverging, drawImage, imagePng, NEGATIVE, POSITIVE } from './heatmap.js';

/** The attacks and their defaults (the runtime's; shown prefilled so the visitor sees them). */
export const ATTACKS = {
  fgsm: { name: 'FGSM', about: 'one signed-gradient step of size eps (L∞)', eps: 0.3, steps: 1, norm: 'L∞', oneStep: true },
  bim: { name: 'BIM', about: 'iterated FGSM steps within the L∞ ball of radius eps', eps: 0.3, steps: 10, norm: 'L∞' },
  'pgd-linf': { name: 'PGD L∞', about: 'projected gradient steps from a random start in the L∞ ball', eps: 0.3, steps: 40, norm: 'L∞' },
  'pgd-l2': { name: 'PGD L2', about: 'projected gradient steps within the L2 ball of radius eps', eps: 2.0, steps: 50, norm: 'L2' },
  'mi-fgsm': { name: 'MI-FGSM', about: 'iterated signed steps with momentum, within the L∞ ball', eps: 0.3, steps: 10, norm: 'L∞' },
  deepfool: { name: 'DeepFool', about: 'the smallest L2 step across the nearest linearized class boundary; untargeted', eps: null, steps: 50, norm: 'L2', untargeted: true },
  'cw-l2': { name: 'C&W L2', about: 'Carlini & Wagner: the smallest L2 perturbation found by optimization (slow)', eps: null, steps: 100, norm: 'L2' },
};

const $ = (id) => document.getElementById(id);
const bits = (w) => `${w} bit${w === 1 ? '' : 's'}`;
const bitsList = (ws) => `${ws.join(', ')} bit${ws.length === 1 && ws[0] === 1 ? '' : 's'}`;
const pct = (p) => `${(p * 100).toFixed(1)}%`;

/** A problem with the settings, found by the page before asking the runtime. */
function badSetting(message) {
  return Object.assign(new Error(message), { code: 'invalid_argument' });
}

/** `text` as a finite number, or null (empty, "NaN", "1e999", "0.3x" are not numbers). */
function parseNumber(text) {
  const s = text.trim();
  if (s === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

export class AttackDemo {
  #ctx;
  #running = null; // {controller, done, total} while an attack runs
  #file = null; // the decoded image file: {image, invert, canvas, name}
  #png = null; // object URL of the last adversarial PNG
  #ready = false;
  #attacks = 0;

  /**
   * `ctx`: {session(): a promise of the worker Session with the page's model loaded, model():
   * {info, labels, samples, entry}, pad: the Pad}. The demo reads them when it runs, so a model
   * switch needs only reset() and ready().
   */
  constructor(ctx) {
    this.#ctx = ctx;
    const kind = $('attack-kind');
    for (const [key, a] of Object.entries(ATTACKS)) kind.add(new Option(a.name, key));
    kind.value = 'pgd-linf';
    kind.addEventListener('change', () => this.#prefill());
    this.#prefill();
    $('attack-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.run();
    });
    $('attack-cancel').addEventListener('click', () => this.cancel());
    $('attack-sample').addEventListener('input', () => this.#showSource());
    for (const r of document.querySelectorAll('input[name="attack-source"]')) r.addEventListener('change', () => this.#showSource());
    const file = $('attack-file');
    file.addEventListener('change', () => {
      this.#useFile(file.files[0]);
      file.value = '';
    });
    const legend = $('attack-legend');
    legend.style.backgroundImage = `linear-gradient(to right, rgb(${NEGATIVE}), #fff, rgb(${POSITIVE}))`;
    this.reset();
  }

  /** A new model is loading: stops an attack in progress, forgets the result and the file. */
  reset(entry) {
    this.#running?.controller.abort();
    this.#running = null;
    this.#ready = false;
    this.#file = null;
    this.#setState('idle');
    this.#clearAlert();
    $('attack-result').hidden = true;
    $('attack-status').textContent = 'The model is loading…';
    $('attack-run').disabled = true;
    if (entry) {
      const draw = $('attack-source-drawing');
      draw.disabled = !entry.draw;
      if (!entry.draw && draw.checked) $('attack-source-sample').checked = true;
    }
    this.#showSource();
  }

  /** The model and its test images are in: fills in the widths and the test image range. */
  ready() {
    const { info, samples } = this.#ctx.model();
    const width = $('attack-width');
    width.replaceChildren();
    for (const w of [...info.widths].map((x) => x.w).sort((a, b) => b - a)) width.add(new Option(bits(w), String(w)));
    width.value = String(info.width);
    const n = $('attack-sample');
    n.max = String(samples.length);
    if (!(Number(n.value) >= 1 && Number(n.value) <= samples.length)) n.value = '1';
    $('attack-target-hint').textContent = this.#classHint();
    this.#ready = true;
    $('attack-run').disabled = false;
    $('attack-status').textContent = 'Pick an image and an attack, then press Attack.';
    this.#showSource();
  }

  /**
   * Starts the worker session attacks run in at the section's first use (focus, a press, a file
   * dragged over it), so that the first attack waits less for it; not at its first sight, which
   * would load the model a second time for visitors who never attack. Called once the page's first
   * prediction is on screen: the worker's start would compete with it. A failure is shown by the
   * attack that needs the session.
   */
  watch() {
    const card = $('attack-card');
    const start = () => this.#ctx.session().catch(() => {});
    for (const ev of ['focusin', 'pointerdown', 'dragenter']) card.addEventListener(ev, start, { once: true });
  }

  /** The test image picked in the input strip becomes the one to attack (unless one runs). */
  followSample(index) {
    if (this.#running) return;
    $('attack-sample').value = String(index + 1);
    if ($('attack-source-sample').checked) this.#showSource();
  }

  cancel() {
    if (!this.#running) return;
    this.#running.controller.abort();
    $('attack-progress-text').textContent = `Cancelling after ${this.#running.done} of ${this.#running.total} gradient steps…`;
  }

  #classHint() {
    const { labels } = this.#ctx.model();
    if (!labels) return 'A class number; empty: any class but the current prediction.';
    const named = labels.some((l, i) => l !== String(i));
    const list = named ? labels.map((l, i) => `${i} ${l}`).join(', ') : `0 to ${labels.length - 1}`;
    return `A class number (${list}); empty: any class but the current prediction.`;
  }

  #prefill() {
    const a = ATTACKS[$('attack-kind').value];
    const eps = $('attack-eps');
    eps.value = a.eps == null ? '' : String(a.eps);
    eps.disabled = a.eps == null;
    eps.placeholder = a.eps == null ? 'none: minimal' : '';
    $('attack-eps-label').textContent = a.eps == null ? 'eps (none: this attack finds the smallest perturbation)' : `eps (${a.norm} budget, pixels in 0..1)`;
    const steps = $('attack-steps');
    steps.value = String(a.steps);
    steps.disabled = Boolean(a.oneStep);
    const target = $('attack-target');
    target.disabled = Boolean(a.untargeted);
    if (a.untargeted) target.value = '';
    $('attack-about').textContent = `${a.name}: ${a.about}.`;
  }

  #source() {
    return document.querySelector('input[name="attack-source"]:checked')?.value ?? 'sample';
  }

  /** Shows the image the attack will start from, beside the source choice. */
  #showSource() {
    const kind = this.#source();
    $('attack-sample-row').hidden = kind !== 'sample';
    $('attack-file-row').hidden = kind !== 'file';
    const canvas = $('attack-source-preview');
    const caption = $('attack-source-caption');
    const ctx = canvas.getContext('2d');
    const blank = () => {
      canvas.width = canvas.height = 28;
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, 28, 28);
    };
    const { samples, labels } = this.#ready ? this.#ctx.model() : {};
    if (kind === 'sample') {
      const i = Number($('attack-sample').value) - 1;
      const s = samples?.[i];
      if (!s) {
        blank();
        caption.textContent = samples ? `There is no test image ${i + 1}: pick 1 to ${samples.length}.` : '';
        return;
      }
      drawImage(canvas, toInput(s), [s.height, s.width, 1]);
      caption.textContent = `Test image ${i + 1}, labelled ${labels?.[s.label] ?? s.label}`;
    } else if (kind === 'drawing') {
      const pad = this.#ctx.pad;
      blank();
      if (pad.strokes > 0) ctx.drawImage($('pad'), 0, 0, 28, 28);
      caption.textContent = pad.strokes > 0 ? 'The drawing on the pad (cropped, scaled and centred as MNIST digits were)' : 'The pad is empty: draw a digit on it first.';
    } else {
      blank();
      if (this.#file) ctx.drawImage(this.#file.canvas, 0, 0, 28, 28);
      caption.textContent = this.#file ? `${this.#file.name} (${this.#file.invert ? 'dark on light, inverted for the model' : 'light on dark'})` : 'No file chosen yet.';
    }
  }

  async #useFile(file) {
    if (!file) return;
    const { entry } = this.#ctx.model();
    try {
      const decoded = await decodeImageFile(file, { square: entry?.fit === 'stretch' });
      this.#file = { ...decoded, name: file.name };
      this.#clearAlert();
    } catch (e) {
      this.#file = null;
      this.#alert(e, `Could not use ${file.name || 'that file'}`);
    }
    $('attack-source-file').checked = true;
    this.#showSource();
  }

  /** The request from the form; throws badSetting for what cannot be sent at all. */
  #request() {
    const { samples, labels, entry } = this.#ctx.model();
    const key = $('attack-kind').value;
    const a = ATTACKS[key];
    const request = { attack: key, advRelu: $('attack-advrelu').checked, width: Number($('attack-width').value) };
    if (a.eps != null) {
      const text = $('attack-eps').value;
      const eps = parseNumber(text);
      if (eps == null) {
        throw badSetting(text.trim() === ''
          ? `eps is empty: ${a.name} needs a budget (its default is ${a.eps}).`
          : `eps must be a number, got "${text.trim()}" (${a.name}'s default is ${a.eps}).`);
      }
      request.eps = eps;
    }
    if (!a.oneStep) {
      const text = $('attack-steps').value.trim();
      if (!/^[+-]?\d+$/.test(text)) throw badSetting(`steps must be a whole number, got "${text}" (${a.name}'s default is ${a.steps}).`);
      request.steps = Number(text);
    }
    const t = $('attack-target').value.trim();
    if (t !== '' && !a.untargeted) {
      const byName = labels?.findIndex((l) => l.toLowerCase() === t.toLowerCase()) ?? -1;
      if (/^[+-]?\d+$/.test(t)) request.target = Number(t);
      else if (byName >= 0) request.target = byName;
      else throw badSetting(`the target must be a class number${labels ? ` (0 to ${labels.length - 1}) or a class name` : ''}, got "${t}".`);
    }
    const kind = this.#source();
    let what;
    if (kind === 'sample') {
      const i = Number($('attack-sample').value) - 1;
      const s = samples[i];
      if (!Number.isInteger(i) || !s) throw badSetting(`there is no test image ${$('attack-sample').value}: pick one from 1 to ${samples.length}.`);
      request.image = toInput(s);
      what = { name: `Test image ${i + 1}`, file: `test${i + 1}` };
    } else if (kind === 'drawing') {
      if (!this.#ctx.pad.strokes) throw badSetting('the pad is empty: draw a digit on it first, or pick a test image.');
      request.image = this.#ctx.pad.image();
      request.imageOptions = { fit: 'mnist' };
      what = { name: 'Your drawing', file: 'drawing' };
    } else {
      if (!this.#file) throw badSetting('no image file chosen: choose one first, or pick a test image.');
      // A copy: the request may be transferred to the worker, and the file can be attacked again.
      const { image } = this.#file;
      request.image = new ImageData(new Uint8ClampedArray(image.data), image.width, image.height);
      request.imageOptions = { invert: this.#file.invert, fit: entry.fit };
      what = { name: this.#file.name, file: 'file' };
    }
    return { request, what };
  }

  /** Runs the attack in the form; resolves when it has finished, failed or been cancelled. */
  async run() {
    if (this.#running || !this.#ready) return;
    this.#clearAlert();
    let request;
    let what;
    try {
      ({ request, what } = this.#request());
    } catch (e) {
      this.#alert(e, 'Check the attack settings');
      return;
    }
    const me = { controller: new AbortController(), done: 0, total: 0 };
    this.#running = me;
    // Attack is disabled while it runs: a keyboard user's focus moves to Cancel, and back after.
    const keyboard = document.activeElement === $('attack-run');
    this.#setState('running');
    if (keyboard) $('attack-cancel').focus();
    this.#progress(0, 0);
    $('attack-status').textContent = `Running ${ATTACKS[request.attack].name} on ${what.name} at ${bits(request.width)}…`;
    let result;
    try {
      // The first attack starts the worker and loads the model into it (a cancel meanwhile makes
      // attack() refuse at once).
      const session = await this.#ctx.session();
      if (this.#running !== me) return; // a model switch dropped it
      if (typeof session?.attack !== 'function') {
        throw Object.assign(new Error('this build of the runtime has no attack()'), { code: 'runtime_unavailable' });
      }
      result = await session.attack(request, {
        signal: me.controller.signal,
        onProgress: ({ done, total }) => {
          if (this.#running === me) this.#progress(done, total);
        },
      });
    } catch (e) {
      if (this.#running !== me) return; // a model switch dropped it
      this.#running = null;
      this.#setState('idle');
      if (e?.code === 'aborted') {
        $('attack-status').textContent = `Cancelled after ${me.done} of ${me.total} gradient steps.`;
      } else if (e?.code === 'invalid_argument') {
        this.#alert(e, 'Check the attack settings');
      } else if (e?.code === 'runtime_unavailable') {
        this.#alert(e, 'Attacks are not available');
      } else {
        this.#alert(e ?? {}, 'The attack failed');
      }
      return;
    }
    if (this.#running !== me) return;
    this.#running = null;
    await this.#render(result, what);
    this.#setState('done');
  }

  #setState(state) {
    const card = $('attack-card');
    const refocus = state !== 'running' && document.activeElement === $('attack-cancel');
    card.dataset.state = state;
    const busy = state === 'running';
    card.setAttribute('aria-busy', String(busy));
    $('attack-run').disabled = busy || !this.#ready;
    $('attack-cancel').hidden = !busy;
    $('attack-cancel').disabled = !busy;
    $('attack-progress-box').hidden = !busy;
    for (const el of document.querySelectorAll('#attack-form fieldset.settings')) el.disabled = busy;
    if (refocus) $('attack-run').focus();
  }

  #progress(done, total) {
    if (this.#running) Object.assign(this.#running, { done, total });
    renderRunProgress('attack-progress', 'attack-progress-text', done, total, total ? `${done} of ${total} gradient steps` : 'Starting…');
  }

  #alert(err, context) {
    const box = $('attack-error');
    box.replaceChildren();
    const title = document.createElement('strong');
    title.textContent = `${context}: `;
    const msg = document.createElement('span');
    msg.textContent = err.message ?? String(err);
    box.append(title, msg);
    box.dataset.code = err.code ?? 'error';
    box.hidden = false;
    this.#setState('idle');
    $('attack-status').textContent = `${context}.`;
  }

  #clearAlert() {
    const box = $('attack-error');
    box.hidden = true;
    box.replaceChildren();
    delete box.dataset.code;
  }

  async #render(r, what) {
    const name = (p) => p.label ?? String(p.index);
    const shape = r.inputShape;
    const at = r.predictions.find((p) => p.width === r.width);
    this.#attacks += 1;
    drawImage($('attack-original'), r.original, shape);
    drawImage($('attack-adversarial'), r.adversarial, shape);
    const max = drawDiverging($('attack-perturbation'), r.perturbation, shape);
    $('attack-original-caption').textContent = at ? `Original: ${name(at.original)} (${pct(at.original.probability)} at ${bits(r.width)})` : 'Original';
    $('attack-adversarial-caption').textContent = at ? `Adversarial: ${name(at.adversarial)} (${pct(at.adversarial.probability)} at ${bits(r.width)})` : 'Adversarial';
    const l2 = $('attack-l2');
    l2.textContent = r.l2.toFixed(4);
    l2.dataset.value = String(r.l2);
    const linf = $('attack-linf');
    linf.textContent = r.linf.toFixed(4);
    linf.dataset.value = String(r.linf);
    $('attack-legend-min').textContent = `−${max.toFixed(3)}`;
    $('attack-legend-max').textContent = `+${max.toFixed(3)}`;
    $('attack-perturbation').setAttribute('aria-label', `The perturbation: blue darkens a pixel, red brightens it, scaled to its largest change, ${max.toFixed(3)}`);

    // Widest first, as the width picker lists them.
    const rows = [...r.predictions].sort((a, b) => b.width - a.width);
    const body = $('attack-table').tBodies[0];
    body.replaceChildren();
    const changed = [];
    for (const p of rows) {
      const moved = p.adversarial.index !== p.original.index;
      if (moved) changed.push(p.width);
      const tr = document.createElement('tr');
      tr.dataset.width = String(p.width);
      tr.dataset.original = String(p.original.index);
      tr.dataset.adversarial = String(p.adversarial.index);
      tr.dataset.changed = String(moved);
      tr.classList.toggle('changed', moved);
      tr.classList.toggle('attacked', p.width === r.width);
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = String(p.width);
      if (p.width === r.width) {
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = '(attacked)';
        th.append(tag);
      }
      const cell = (q) => {
        const td = document.createElement('td');
        const c = document.createElement('span');
        c.className = 'cls';
        c.textContent = name(q);
        const conf = document.createElement('span');
        conf.className = 'conf';
        conf.textContent = pct(q.probability);
        td.append(c, ' ', conf);
        return td;
      };
      const flag = document.createElement('td');
      flag.className = 'flag';
      flag.textContent = moved ? 'changed' : 'same';
      tr.append(th, cell(p.original), cell(p.adversarial), flag);
      body.append(tr);
    }

    const a = ATTACKS[r.attack]?.name ?? r.attack;
    const goal = r.target == null ? `away from ${at ? name(at.original) : r.label}` : `towards class ${r.target}`;
    const outcome = r.success ? 'succeeded' : 'did not succeed';
    const cost = `${r.gradients} gradient${r.gradients === 1 ? '' : 's'}, ${r.ms.toFixed(0)} ms`;
    const relu = r.advRelu ? ', with ADV-ReLU gradients' : '';
    const summary = $('attack-summary');
    summary.textContent = `${a} on ${what.name} at ${bits(r.width)}${relu}, ${goal}: ${outcome} (${cost}).`;
    summary.dataset.success = String(r.success);
    const stays = rows.filter((p) => !changed.includes(p.width)).map((p) => p.width);
    const across = $('attack-across');
    if (changed.length === rows.length) across.textContent = `The prediction changed at every width (${rows.length}): switching precision does not undo this attack.`;
    else if (!changed.length) across.textContent = 'The prediction changed at no width.';
    else across.textContent = `The prediction changed at ${changed.length} of ${rows.length} widths (${bitsList(changed)}); at ${bitsList(stays)} it is what it was.`;
    across.dataset.changed = changed.join(',');

    // The adversarial image as a PNG at model resolution, for the Download link.
    const link = $('attack-download');
    if (this.#png) URL.revokeObjectURL(this.#png);
    this.#png = null;
    link.removeAttribute('href');
    try {
      this.#png = URL.createObjectURL(await imagePng(r.adversarial, shape));
      link.href = this.#png;
      link.download = `anybit-adversarial-${what.file}-${r.attack}-${r.width}bit.png`;
      link.hidden = false;
    } catch (e) {
      link.hidden = true;
      this.#alert(e, 'Could not make the PNG');
    }
    $('attack-result').hidden = false;
    $('attack-result').dataset.attacks = String(this.#attacks);
    $('attack-status').textContent = `Done: ${a} ${outcome} at ${bits(r.width)}.`;
  }
}
