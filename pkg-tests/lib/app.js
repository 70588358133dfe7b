// Where scripts/pkg-test.sh installed the packed tarball (ANYBIT_PKG_APP), and the real data the
// tests classify: the shipped MNIST model and the first test digits of the MNIST test set.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const APP = process.env.ANYBIT_PKG_APP;
if (!APP) throw new Error('ANYBIT_PKG_APP is not set: run the tests with scripts/pkg-test.sh');
export const MODEL = join(ROOT, 'models', 'mnist.anybit');

/** The first `n` MNIST test digits as 784 bytes each (0..255), and their labels. */
export async function digits(n) {
  const images = (await readFile(join(ROOT, 'fixtures', 'mnist-t100-images.idx3'))).subarray(16);
  const labels = (await readFile(join(ROOT, 'fixtures', 'mnist-t100-labels.idx1'))).subarray(8);
  return Array.from({ length: n }, (_, i) => ({ pixels: images.subarray(i * 784, (i + 1) * 784), label: labels[i] }));
}
