// Starts the session before anything else on the page, as its own small module graph (index.html
// loads it with `async`, so it runs as soon as the package's modules are in, not after the whole
// app's), on the worker early.js started: a Web Worker takes long to start (150-400 ms cold on
// the busy 2-core test machine), and the first model's download (`prefetch`: the worker fetches
// it while it loads its wasm build and parses it once the runtime is up) should not wait for the
// app's own modules. main.js takes the session from here.
//
// URL parameters read here (main.js documents them all): ?model, ?build, ?threads, ?width.

import { createSession } from '../anybit/index.js';
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

// The worker early.js started (and warmed), when it could.
export const starting = createSession({ build: params.get('build') ?? 'auto', threads, prefetch, worker: self.anybitWorker });
starting.catch(() => {}); // reported by the model load, which awaits it
