// Summaries shared by the browser benchmark runners (bench/text.mjs, bench/cf.mjs).
import { availableParallelism, loadavg } from 'node:os';

export const sorted = (xs) => [...xs].sort((a, b) => a - b);
export const median = (xs) => {
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
// Nearest rank: the smallest timing that at least 95% of the repetitions do not exceed.
export const p95 = (xs) => sorted(xs)[Math.ceil(0.95 * xs.length) - 1];

/** The load average (1/5/15 min) as one string. */
export const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** The machine is shared (2 cores, other builds): true (and a warning on stderr) when it is busy. */
export function busy(tag) {
  if (loadavg()[0] <= availableParallelism() / 2) return false;
  console.error(`${tag}: WARNING: the machine is busy; figures will be slow and noisy`);
  return true;
}
