// Hand-drawn digits as pointer strokes, in pad coordinates from 0 to 1 (x right, y down), drawn
// with page.mouse point by point as a person would: press, move, release.

function arc(cx, cy, r, fromDeg, toDeg, n = 24) {
  return Array.from({ length: n + 1 }, (_, i) => {
    const t = ((fromDeg + ((toDeg - fromDeg) * i) / n) * Math.PI) / 180;
    return [cx + r * Math.cos(t), cy + r * Math.sin(t)];
  });
}

export const DIGITS = {
  // One stroke: an upper bowl open to the left, then a lower one (angles clockwise, y down).
  3: [[...arc(0.5, 0.33, 0.16, 200, 450), ...arc(0.5, 0.65, 0.16, 270, 520).slice(1)]],
  // A slightly slanted vertical bar.
  1: [[[0.53, 0.15], [0.51, 0.5], [0.49, 0.85]]],
  // Two strokes: the slanted bar of a 7 drawn after its top.
  7: [[[0.28, 0.2], [0.72, 0.2]], [[0.72, 0.2], [0.45, 0.85]]],
};

/**
 * Draws `strokes` on the element matched by `selector`, with mouse events between the points;
 * `scale` and `offset` shrink and move the digit within the pad.
 */
export async function drawStrokes(page, selector, strokes, { scale = 1, offset = [0, 0] } = {}) {
  const box = await page.locator(selector).boundingBox();
  const at = ([x, y]) => [box.x + (offset[0] + x * scale) * box.width, box.y + (offset[1] + y * scale) * box.height];
  for (const stroke of strokes) {
    await page.mouse.move(...at(stroke[0]));
    await page.mouse.down();
    for (const p of stroke.slice(1)) await page.mouse.move(...at(p), { steps: 3 });
    await page.mouse.up();
  }
}
