// Model inputs drawn on canvases: images in [0, 1] in grey (or RGB), and signed values (an
// adversarial perturbation) on a diverging colour scale, blue negative / white zero / red
// positive, scaled to the largest magnitude so that even a tiny perturbation is visible.
// Values are NHWC without the batch dimension, `shape` = [height, width, channels].

// The two ends of the scale (ColorBrewer RdBu's outer colours); zero is white.
export const NEGATIVE = [33, 102, 172];
export const POSITIVE = [178, 24, 43];

/** The colour of `t` in [-1, 1] (clamped) as [r, g, b]: white at 0, NEGATIVE at -1, POSITIVE at 1. */
export function diverging(t) {
  const end = t < 0 ? NEGATIVE : POSITIVE;
  const a = Math.min(1, Math.abs(t)) || 0;
  return end.map((c) => Math.round(255 + (c - 255) * a));
}

function pixels(canvas, shape) {
  const [h, w] = shape;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  return { ctx, img: ctx.createImageData(w, h) };
}

const byte = (v) => Math.round(255 * Math.min(1, Math.max(0, v)));

/**
 * Draws an image with values in [0, 1]: grey for one channel, RGB for three (other channel
 * counts: the mean, in grey). Each pixel is round(255 * value), as in the downloaded PNG.
 */
export function drawImage(canvas, values, shape) {
  const [h, w, c = 1] = shape;
  const { ctx, img } = pixels(canvas, shape);
  for (let i = 0; i < h * w; i++) {
    let rgb;
    if (c === 3) rgb = [values[3 * i], values[3 * i + 1], values[3 * i + 2]].map(byte);
    else {
      let s = 0;
      for (let k = 0; k < c; k++) s += values[c * i + k];
      const g = byte(s / c);
      rgb = [g, g, g];
    }
    img.data.set([...rgb, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

/** The largest magnitude in `values` (0 for none). */
export function maxAbs(values) {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m;
}

/**
 * Draws signed values on the diverging scale, scaled to their largest magnitude (several channels:
 * their mean per pixel). Returns that magnitude, which the legend shows; all zeros draw white.
 */
export function drawDiverging(canvas, values, shape) {
  const [h, w, c = 1] = shape;
  const { ctx, img } = pixels(canvas, shape);
  const mean = new Float32Array(h * w);
  for (let i = 0; i < h * w; i++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += values[c * i + k];
    mean[i] = s / c;
  }
  const max = maxAbs(mean);
  for (let i = 0; i < h * w; i++) img.data.set([...diverging(max > 0 ? mean[i] / max : 0), 255], 4 * i);
  ctx.putImageData(img, 0, 0);
  return max;
}

/**
 * A PNG of an image with values in [0, 1] at model resolution (one pixel per input pixel,
 * round(255 * value), opaque), as a Blob.
 */
export function imagePng(values, shape) {
  const canvas = document.createElement('canvas');
  drawImage(canvas, values, shape);
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('the browser could not encode the PNG'))), 'image/png');
  });
}
