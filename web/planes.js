// Which bit planes of an .anybit file have arrived while it downloads. The planes are the last
// tensors of the file, most significant first (docs/FORMAT.md), so they complete in that order;
// this reads only the safetensors header, the runtime validates the whole file afterwards.

/**
 * Absolute end offsets of the plane tensors, ascending, from the first bytes of a file; null while
 * the header is incomplete, [] when the bytes are not an .anybit header (the load will say why).
 */
export function planeEnds(head) {
  if (head.length < 8) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (head.length < 8 + n) return n > 16 * 2 ** 20 ? [] : null;
  try {
    const header = JSON.parse(new TextDecoder().decode(head.subarray(8, 8 + n)));
    return Object.entries(header)
      .filter(([name, t]) => name.startsWith('planes.') && Array.isArray(t?.data_offsets))
      .map(([, t]) => 8 + n + Number(t.data_offsets[1]))
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** Counts download progress in planes: feed it each chunk, read {planes, planeTotal}. */
export class PlaneCounter {
  #head = [];
  #headLen = 0;
  #ends = null;

  add(chunk, loaded) {
    if (this.#ends === null) {
      this.#head.push(chunk);
      this.#headLen += chunk.length;
      const head = new Uint8Array(this.#headLen);
      let at = 0;
      for (const c of this.#head) {
        head.set(c, at);
        at += c.length;
      }
      this.#ends = planeEnds(head);
      if (this.#ends !== null) this.#head = [];
    }
    const ends = this.#ends ?? [];
    return { planes: ends.filter((e) => e <= loaded).length, planeTotal: ends.length };
  }
}
