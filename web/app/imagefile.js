// An image file (chosen or dropped) turned into the ImageData that runImage takes.

// Larger files are refused before decoding; larger images are scaled down first (the models take
// 28x28, so detail beyond this is averaged away anyway, and the copy to the worker stays small).
const MAX_BYTES = 32 * 2 ** 20;
const MAX_SIDE = 512;

function badImage(message) {
  return Object.assign(new Error(message), { name: 'AnybitError', code: 'bad_image' });
}

function canvas(w, h) {
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  return c;
}

/**
 * Decodes `file`; resolves to {image: ImageData, invert, canvas}. `invert` is true when the image
 * is dark on light (its border is mostly bright), so the model still sees bright on dark. With
 * `square`, the image is centred on a transparent square (read as background) so that stretching
 * it to the model's square input keeps its proportions.
 */
export async function decodeImageFile(file, { square = false } = {}) {
  if (file.size > MAX_BYTES) throw badImage(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB; images up to ${MAX_BYTES / 2 ** 20} MiB are accepted`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw badImage(`${file.name || 'the file'} is not an image this browser can decode${file.type ? ` (type ${file.type})` : ''}`);
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * scale));
  const h = Math.max(1, Math.round(bitmap.height * scale));
  const flat = canvas(w, h);
  const ctx = flat.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  const data = ctx.getImageData(0, 0, w, h);
  const invert = darkOnLight(data);
  if (!square) return { image: data, invert, canvas: flat };
  const side = Math.max(w, h);
  const sq = canvas(side, side);
  const sctx = sq.getContext('2d', { willReadFrequently: true });
  sctx.drawImage(flat, Math.floor((side - w) / 2), Math.floor((side - h) / 2));
  return { image: sctx.getImageData(0, 0, side, side), invert, canvas: sq };
}

const luminance = (d, i) => 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];

/**
 * Whether the picture is dark on light: its border (the background, usually) is bright; or, on a
 * transparent background, the visible pixels are dark.
 */
function darkOnLight({ width: w, height: h, data }) {
  let lum = 0;
  let alpha = 0;
  let n = 0;
  const add = (x, y) => {
    const i = 4 * (y * w + x);
    lum += luminance(data, i);
    alpha += data[i + 3];
    n++;
  };
  for (let x = 0; x < w; x++) {
    add(x, 0);
    add(x, h - 1);
  }
  for (let y = 1; y < h - 1; y++) {
    add(0, y);
    add(w - 1, y);
  }
  if (alpha / n >= 128) return lum / n > 127;
  let ink = 0;
  let weight = 0;
  for (let i = 0; i < data.length; i += 4) {
    ink += luminance(data, i) * data[i + 3];
    weight += data[i + 3];
  }
  return weight > 0 && ink / weight < 128;
}
