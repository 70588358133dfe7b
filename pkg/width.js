// The one check of a width (bits per weight) that the package makes before a request reaches wasm:
// every API taking a width (setWidth, load with {width}) goes through it, so each refuses alike.

import { AnybitError } from './errors.js';

/** `width` if it is an integer in 1..=8, else an AnybitError with code `unsupported_width`. */
export function checkWidth(width) {
  if (!(Number.isInteger(width) && width >= 1 && width <= 8)) {
    throw new AnybitError('unsupported_width', `width must be an integer in 1..=8, got ${JSON.stringify(width)}`);
  }
  return width;
}
