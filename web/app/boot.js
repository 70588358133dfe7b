// Starts the page's session before anything else on the page, as its own small module graph
// (index.html loads it with `async`, so it runs as soon as the package's modules are in, not after
// the whole app's). The session runs on the page's own thread (`worker: false`): an image pass
// takes well under a millisecond, and a Web Worker takes long to start (110-150 ms from `new
// Worker` to its first line cold on the 2-core test machine, and its modules and build after
// that), which was the largest step on the way to the first prediction (BENCHMARKS.md, "First
// prediction"). The first model's download (`prefetch`) runs while the build loads, and is parsed
// once the runtime is up. The first model's test images are asked for here too: main.js's graph
// comes in later, and the first prediction needs one of them. Attacks and Auto's calibration,
// which take seconds, run in a worker twin of this session (main.js, twinSession); the text demo
// has a worker session of its own (text.js). main.js takes the session from here.
//
// URL parameters read here (main.js documents them all): ?model, ?build, ?threads, ?width.

import { createSession } from '../anybit/index.js';
import { loadSamples } from './idx.js';
import { DEFAULT_MODEL, MODELS } from './models.js';

export const params = new URLSearchParams(location.search);
const requested = params.get('model');
/** The shipped model to start with, and a model given by URL instead (none of the listed ones). */
export const startKey = MODELS[requested] ? requested : DEFAULT_MODEL;
export const customUrl = requested && !MODELS[requested] ? requested : undefined;
export const threads = params.has('threads') ? Number(params.get('threads')) : undefined;
export const startWidth = params.has('width') ? Number(params.get('width')) : undefined;

// A progressive start (?width) fetches only some bit planes, by Range requests: nothing to
// prefetch whole.
const prefetch = startWidth === undefined ? customUrl ?? MODELS[startKey].url : undefined;

// The build asked for: ?build, or the threads build when ?threads asks for more than one.
const build = params.get('build') ?? (threads > 1 ? 'threads' : 'auto');

// On this thread; with the threads build it leads its pool's workers (and spins, never blocks,
// while they finish their parts).
export const starting = createSession({ build, threads, prefetch, worker: false });
starting.catch(() => {}); // reported by the model load, which awaits it

// The test images of the first model (a model by URL is shown with the default model's).
let firstSamples = loadSamples(MODELS[startKey].samples.images, MODELS[startKey].samples.labels);
firstSamples.catch(() => {}); // reported by the model load that takes it

/** The test images asked for at boot, for the first load of `key` only; else null. */
export function takeFirstSamples(key) {
  const p = key === startKey ? firstSamples : null;
  firstSamples = null;
  return p;
}
