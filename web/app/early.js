// Starts the runtime's worker first thing, as a classic script: the parser waits only for this
// small file, while a module script (boot.js) runs after the page's first style and layout
// (40-120 ms of a cold start on the 2-core test machine), and a worker takes another 100-200 ms
// from `new Worker` to running its code. Told {type: 'warm'}, the worker fetches and compiles the
// build that auto-detection will pick before boot.js's createSession (which takes this worker as
// its `worker`) has asked for it. With ?build the page forces a build: nothing is warmed.
'use strict';
try {
  const worker = new Worker('anybit/worker.js', { type: 'module', name: 'anybit' });
  if (!new URLSearchParams(location.search).has('build')) worker.postMessage({ type: 'warm' });
  self.anybitWorker = worker;
  // A worker that fails before boot.js takes it would fail unheard (createSession listens from
  // then on): boot.js then starts one of its own, whose failure the page reports.
  worker.addEventListener('error', () => {
    if (self.anybitWorker === worker) self.anybitWorker = undefined;
  }, { once: true });
} catch {
  // createSession starts its own worker, or says why it cannot.
}
