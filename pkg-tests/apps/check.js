// What a web developer's page does with the package, used by the plain ES-module page and by the
// Vite app alike: start a session, load the model from a URL with progress, classify digits as
// Float32Array and as ImageData, and show that a broken model file is a typed error.
import { AnybitError, createSession } from 'anybit';

window.anybitCheck = async (digits, options) => {
  const progress = [];
  const session = await createSession(options);
  const info = await session.load('mnist.anybit', { onProgress: (p) => progress.push(p) });
  const predicted = [];
  // The threads build's pool comes up in the background: these first runs may be on one thread.
  const early = await session.run(Float32Array.from(digits[0], (p) => p / 255));
  for (const px of digits) predicted.push((await session.run(Float32Array.from(px, (p) => p / 255))).predicted);
  const rgba = new Uint8ClampedArray(784 * 4);
  digits[0].forEach((p, i) => rgba.set([p, p, p, 255], 4 * i));
  const fromImage = (await session.run(new ImageData(rgba, 28, 28))).predicted;
  await session.setWidth(1);
  const oneBit = (await session.run(Float32Array.from(digits[0], (p) => p / 255))).width;
  // The policy picks a thread count too; following it sets the session's.
  const cal = await session.calibrate(1);
  const decision = await session.decide();
  const followed = await session.setThreads(decision.threads);
  const policy = {
    calThreads: cal.threads,
    oneThreadWidths: cal.oneThreadMs.map(([w]) => w),
    threads: decision.threads,
    optionThreads: decision.options.map((o) => o.threads),
    reasons: decision.reasons,
    infoThreads: followed.threads,
    runThreads: (await session.run(Float32Array.from(digits[0], (p) => p / 255))).predicted === predicted[0],
  };
  // Calibration waited for the pool: at 8 bits on every thread now, the first run's values exactly.
  await session.setWidth(8);
  const all = await session.setThreads((await session.buildInfo()).threadCount);
  const late = await session.run(Float32Array.from(digits[0], (p) => p / 255));
  const sameLate = { threads: all.threads, equal: late.probabilities.every((v, i) => v === early.probabilities[i]) };
  const modelBytes = new Uint8Array(await (await fetch('mnist.anybit')).arrayBuffer());
  let error = null;
  try {
    await session.load(modelBytes.subarray(0, 300));
  } catch (e) {
    error = { isAnybitError: e instanceof AnybitError, code: e.code, message: e.message };
  }
  const build = await session.buildInfo();
  const probe = await session.probe();
  await session.dispose();
  const afterDispose = await session.info().then(() => null, (e) => e.code);
  const badThreads = await createSession({ threads: 0 }).then(() => null, (e) => e instanceof AnybitError && e.code);
  // Without a worker, more than one thread needs the threads build asked for by name: an error,
  // not a silent single thread.
  const inPlaceThreads = await createSession({ worker: false, threads: 2 }).then(() => null, (e) => e instanceof AnybitError && e.code);
  // A second session on the page's thread with the threads build shares the first one's pool
  // (one per wasm instance) and classifies alike.
  let secondInPlace = null;
  if (options?.worker === false && options.build === 'threads') {
    const second = await createSession(options);
    await second.load('mnist.anybit');
    await second.setThreads((await second.buildInfo()).threadCount);
    const r = await second.run(Float32Array.from(digits[0], (p) => p / 255));
    secondInPlace = { threads: (await second.info()).threads, predicted: r.predicted, equal: r.probabilities.every((v, i) => v === early.probabilities[i]) };
    await second.dispose();
  }
  const widths = info.widths.map((w) => w.w);
  return { build, probe, widths, progress, predicted, fromImage, oneBit, policy, sameLate, error, afterDispose, badThreads, inPlaceThreads, secondInPlace };
};
document.body.dataset.ready = 'yes';
