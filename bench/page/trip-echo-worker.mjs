// The floor of bench/trip.mjs: a worker that answers every message at once with what it got.
self.addEventListener('message', ({ data }) => self.postMessage(data));
