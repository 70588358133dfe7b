// A strict TypeScript consumer of the package's public API (compiled with tsc --noEmit only).
import { AnybitError, createSession, type AttackResult, type BuildInfo, type ClassScore, type CounterfactualTask, type Detection, type Encoding, type EvalResult, type ModelInfo, type Progress, type RunResult, type Span, type TextRunResult, type TokenRunResult } from 'anybit';

const session = await createSession({ build: 'auto', threads: 2, prefetch: '/models/mnist.anybit' });
const build: BuildInfo = session.build;
// No worker: the runtime on this thread.
const inPlace = await createSession({ worker: false, build: 'relaxed' });
await inPlace.dispose();
const info: ModelInfo = await session.load('/models/mnist.anybit', {
  onProgress: ({ loaded, total }: Progress) => console.log(loaded, total ?? '?'),
});
await session.setWidth(info.widths[info.widths.length - 1].w);
const result: RunResult = await session.run(new Float32Array(info.inputShape.reduce((a, b) => a * b, 1)));
const best: string | null = result.top[0].label;
const image = await session.run({ width: 2, height: 2, data: new Uint8ClampedArray(16) }, { invert: true, fit: 'mnist' });
const canvas: RunResult = await session.run(new ImageData(28, 28));
const batch: RunResult[] = await session.runMany([new Float32Array(784), new ImageData(28, 28)], {
  onProgress: ({ done, total }) => console.log(done, total),
  signal: new AbortController().signal,
  imageOptions: { fit: 'mnist' },
});
const abort = new AbortController();
const attacked: AttackResult = await session.attack(
  { image: new Float32Array(784), attack: 'pgd-linf', eps: 0.1, width: 1, round: false },
  { onProgress: ({ done, total }) => console.log(done, total), signal: abort.signal },
);
const scores: ClassScore[] = attacked.predictions.map((p) => p.adversarial);
const eps: number | null = attacked.settings.eps;
console.log(attacked.success, attacked.adversarial[0], attacked.target ?? 'untargeted', scores.length, eps);
try {
  await session.load(new Uint8Array(8));
} catch (e) {
  if (e instanceof AnybitError && (e.code === 'bad_magic' || e.code === 'aborted')) console.log(e.message);
}
console.log(build.variant, build.threadCount, result.probabilities[0], best, image.predicted, canvas.label);
const encoded: Encoding = await session.encode('Hello, world!');
const word: string = 'Hello, world!'.slice(encoded.offsets[2], encoded.offsets[3]);
const ids: Uint32Array = encoded.ids;
const classified: TextRunResult | TokenRunResult = await session.runText('John lives in Paris');
if (classified.kind === 'tokens') console.log(classified.labels[1], classified.predicted[1], classified.probability[1]);
else console.log(classified.top[0].label, classified.piecesTotal);
const textInfo: { maxTokens: number; vocabSize: number } | null = info.text;
console.log(word, ids.length, encoded.output.length, encoded.truncated, textInfo?.maxTokens);
const task: CounterfactualTask | null = info.task;
const evals: EvalResult[] = info.eval;
const metric: string | undefined = evals[0]?.metric;
const detection: Detection = await session.detect('If it had rained, we would have stayed home.');
const ant: Span | null = detection.antecedent;
const antText: string | undefined = ant ? 'If it had rained'.slice(ant.startUtf16, ant.endUtf16) : undefined;
const detections: Detection[] = await session.detectMany(['a', 'b'], {
  onProgress: ({ done, total }) => console.log(done, total),
  signal: abort.signal,
});
console.log(batch[0].predicted, task?.thresholds[0][1], metric, detection.counterfactual, detection.consequent?.end, antText, detections.length);
await session.dispose();
