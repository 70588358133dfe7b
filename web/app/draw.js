// The drawing pad. Pointer events (mouse, pen and touch alike) draw bright strokes on a transparent
// canvas, because MNIST digits are bright ink on black and the runtime reads transparent pixels as
// background; runImage with fit "mnist" then crops, scales and centres the ink as MNIST was made.

// Stroke width as a fraction of the pad: a digit drawn over most of the pad then has strokes about
// 2 px wide once scaled into MNIST's 20 px box, like the training digits.
const PEN = 1 / 12;

export class Pad {
  #canvas;
  #ctx;
  #last = null; // last point of the stroke in progress
  #onChange;
  strokes = 0; // strokes since the last clear; 0 means the pad is empty

  /** `onChange(final)` is called as a stroke grows (final false) and when it ends (final true). */
  constructor(canvas, onChange) {
    this.#canvas = canvas;
    this.#ctx = canvas.getContext('2d', { willReadFrequently: true });
    this.#onChange = onChange;
    canvas.addEventListener('pointerdown', (e) => this.#down(e));
    canvas.addEventListener('pointermove', (e) => this.#move(e));
    for (const type of ['pointerup', 'pointercancel']) canvas.addEventListener(type, (e) => this.#up(e));
  }

  #point(e) {
    const r = this.#canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * this.#canvas.width) / r.width, ((e.clientY - r.top) * this.#canvas.height) / r.height];
  }

  #down(e) {
    if (e.button !== 0) return;
    e.preventDefault();
    this.#canvas.setPointerCapture(e.pointerId);
    this.#last = this.#point(e);
    this.strokes++;
    this.#segment(this.#last, this.#last);
    this.#onChange(false);
  }

  #move(e) {
    if (!this.#last) return;
    // Coalesced events keep fast strokes smooth when the page delivers one event per frame.
    for (const ev of e.getCoalescedEvents?.() ?? [e]) {
      const p = this.#point(ev);
      this.#segment(this.#last, p);
      this.#last = p;
    }
    this.#onChange(false);
  }

  #up(e) {
    if (!this.#last) return;
    if (this.#canvas.hasPointerCapture(e.pointerId)) this.#canvas.releasePointerCapture(e.pointerId);
    this.#last = null;
    this.#onChange(true);
  }

  #segment([x0, y0], [x1, y1]) {
    const ctx = this.#ctx;
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = this.#canvas.width * PEN;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
  }

  clear() {
    this.#ctx.clearRect(0, 0, this.#canvas.width, this.#canvas.height);
    this.#last = null;
    this.strokes = 0;
  }

  image() {
    return this.#ctx.getImageData(0, 0, this.#canvas.width, this.#canvas.height);
  }
}
