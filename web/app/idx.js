// Reader for the IDX files of MNIST-style test images (big-endian header, unsigned bytes).

/** Parses an IDX file of unsigned bytes; returns {dims, data}. Throws on anything else. */
export function parseIdx(buffer, rank) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 4 + 4 * rank || bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08 || bytes[3] !== rank) {
    throw new Error(`not an IDX file of rank ${rank} with unsigned bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.length !== start + count) throw new Error(`IDX size ${bytes.length} does not match dims ${dims}`);
  return { dims, data: bytes.subarray(start) };
}

/** Fetches images (.idx3) and labels (.idx1); returns [{pixels: Uint8Array, label}] . */
export async function loadSamples(imagesUrl, labelsUrl) {
  const get = async (url) => {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`could not fetch ${url}: HTTP ${res.status}`);
    return res.arrayBuffer();
  };
  const [imgBuf, labBuf] = await Promise.all([get(imagesUrl), get(labelsUrl)]);
  const images = parseIdx(imgBuf, 3);
  const labels = parseIdx(labBuf, 1);
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) throw new Error(`${n} images but ${labels.dims[0]} labels`);
  return Array.from({ length: n }, (_, i) => ({
    pixels: images.data.subarray(i * h * w, (i + 1) * h * w),
    width: w,
    height: h,
    label: labels.data[i],
  }));
}

/**
 * Model input for a greyscale sample: pixel / 255 in [0, 1], NHWC with one channel. Made once per
 * sample and kept (a click on an image runs it again and again); callers only read it (the
 * package sends a copy to its worker).
 */
export function toInput(sample) {
  if (!sample.input) {
    const input = new Float32Array(sample.pixels.length);
    for (let i = 0; i < input.length; i++) input[i] = sample.pixels[i] / 255;
    sample.input = input;
  }
  return sample.input;
}
