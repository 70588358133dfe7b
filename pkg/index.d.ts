// Types of the public API (hand-written: the wasm-bindgen ones type every result as `any`).
// The same API in browsers (index.js, a Web Worker per session) and Node (node.js, in-process).

/** The wasm builds in the package (`threads` is built with relaxed SIMD too). */
export type BuildName = 'scalar' | 'simd' | 'relaxed' | 'threads';

/** Stable error codes: the runtime's (model parsing and running) and the package's own. */
export type ErrorCode =
  | 'bad_magic'
  | 'unsupported_version'
  | 'truncated'
  | 'bad_layout'
  | 'bad_graph'
  | 'bad_shape'
  | 'bad_value'
  | 'shape_mismatch'
  | 'unsupported_width'
  | 'invalid_argument'
  | 'limit_exceeded'
  /** Model bytes do not match the digest in the file's header. */
  | 'corrupt'
  /** No build could start here (missing feature, worker failed to load). */
  | 'runtime_unavailable'
  /** A model URL could not be fetched or read. */
  | 'fetch_failed'
  /** A request that needs a model came before load(). */
  | 'no_model'
  /** The session was disposed. */
  | 'disposed'
  /** The wasm instance trapped; create a new session. */
  | 'crashed'
  /** The request was cancelled through its AbortSignal (attack). */
  | 'aborted'
  | 'internal';

export declare class AnybitError extends Error {
  constructor(code: ErrorCode, message: string);
  readonly name: 'AnybitError';
  readonly code: ErrorCode;
}

export interface SessionOptions {
  /** Which build to load; 'auto' (default): threads when cross-origin isolated (with relaxed SIMD), else relaxed SIMD, else SIMD, else scalar. */
  build?: 'auto' | BuildName;
  /** Pool size of the threads build (browsers only; default min(hardwareConcurrency, 8)). */
  threads?: number;
  /** A Worker already running 'anybit/worker' (browsers; by default the session starts its own;
   * one started early may be sent `{type: 'warm'}` at once, to compile the build 'auto' picks
   * before the session asks), or false: no worker, the runtime runs on the calling thread (no message round
   * trip per call, but each call blocks that thread for its pass): one thread, or with build 'threads' (a
   * cross-origin isolated page) the calling thread leads the pool's workers, spinning while they
   * finish; a page's `worker: false` sessions share one pool, sized by the first. */
  worker?: WorkerLike | false;
  /** A model URL (relative to the page) that the worker downloads while it loads its build and
   * parses right after the session starts; the first load() of the same URL without `width` resolves to that
   * model instead of fetching again (a failed download is fetched again by that load, which
   * reports the failure). Any other first load drops it. Browsers only; Node ignores it. */
  prefetch?: string | URL;
}

/** The parts of a DOM Worker the package uses (so the types need no DOM lib in Node). */
export interface WorkerLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message' | 'error', listener: (event: any) => void): void;
  terminate(): void;
}

export interface BuildInfo {
  variant: BuildName;
  simd: boolean;
  relaxed: boolean;
  /** Compiled with threads (the threads build). */
  threads: boolean;
  /** Threads a run may use (the pool size; 1 without threads). Runs before the pool's workers are
   * up use the calling thread alone. */
  threadCount: number;
  /** Kernel instruction set in use, e.g. 'simd128' or 'scalar'. */
  isa: string;
  version: string;
  /** Why this build was chosen. */
  reason: string;
}

/** A supported width: weight bits `w` and the activation bits `a` used with them. */
export interface Width {
  w: number;
  a: number;
}

export interface ModelInfo {
  name: string;
  /** Input shape without the batch dimension, NHWC: [height, width, channels]. */
  inputShape: number[];
  labels: string[] | null;
  widths: Width[];
  /** Current weight width in bits. */
  width: number;
  /** Widths the loaded bit planes serve: all of `widths` unless loaded progressively. */
  loadedWidths: number[];
  /** Bit planes loaded (8 for a whole file). */
  planesLoaded: number;
  threads: number;
  /** Scores per width stored in the model file (may be empty); the first is the one decide() weighs. */
  eval: EvalResult[];
  /** A text model (its input is tokens: use encode() and runText()): the most tokens it takes
   * ([CLS] and [SEP] included) and its vocabulary's size; null for an image model. */
  text: { maxTokens: number; vocabSize: number } | null;
  /** What the output means beyond one class per label: a counterfactual detector (use detect()
   * and detectMany()); null for any other model. */
  task: CounterfactualTask | null;
  /** For a progressive load (load(url, {width})): bytes received so far and whether every request was
   * answered with a Range (false: the server sent the whole file). null otherwise. */
  transfer: { bytes: number; ranged: boolean } | null;
}

export interface Progress {
  /** Bytes received so far. */
  loaded: number;
  /** Bytes in all, or null when the server does not say. */
  total: number | null;
  /**
   * Bit planes complete so far (most significant first: a width of b bits needs b of them), once
   * the file's header is in (absent before that; a load of bytes given directly reports them in
   * its one event).
   */
  planes?: number;
  /** Bit planes in the file (8). */
  planeTotal?: number;
}

export interface LoadOptions {
  onProgress?: (progress: Progress) => void;
  /**
   * Progressive loading (URLs only): fetch just the header, the tensors and the bit planes this
   * width needs, by HTTP Range requests, and start at it (or the widest narrower width the model
   * has). setWidth() to a wider width fetches the missing planes. Every piece is checked against
   * the file's SHA-256 digests before use (error code 'corrupt'). A server that ignores Range
   * sends the whole file, which is then used whole.
   */
  width?: number;
}

/** A canvas ImageData or any RGBA image of that shape. */
export interface ImageLike {
  width: number;
  height: number;
  data: Uint8ClampedArray | Uint8Array;
}

export interface ImageOptions {
  /** Dark ink on a light background (the model expects bright ink on dark). */
  invert?: boolean;
  /** 'stretch' (default): resample to the input size; 'mnist': crop, fit 20x20, centre by mass. */
  fit?: 'stretch' | 'mnist';
}

export interface RunOutput {
  /**
   * An array as long as the model's output that receives it and comes back as `logits`, instead
   * of a new array per run: for a large output (a 28x28x64 map, 200 KB) allocating a fresh array
   * costs about 0.1 ms in Chromium. Only a session on the caller's thread (Node, or `worker:
   * false`) takes it; a worker session rejects it ('invalid_argument'), as runMany does. A wrong
   * length rejects with 'shape_mismatch' before the run.
   */
  output?: Float32Array;
}

export interface TopClass {
  index: number;
  label: string | null;
  probability: number;
}

/** One run. A model whose output is not a vector of class scores (a feature map) gets its output
 * in `logits` with `probabilities` and `top` empty and `predicted` the index of its largest value. */
export interface RunResult {
  logits: Float32Array;
  probabilities: Float32Array;
  /** The five most probable classes, most probable first. */
  top: TopClass[];
  predicted: number;
  label: string | null;
  /** Weight width the run used. */
  width: number;
  /** Inference time in milliseconds. */
  ms: number;
}

/**
 * One text through a text model (Session.encode). Token i came from
 * `text.slice(offsets[2 * i], offsets[2 * i + 1])`.
 */
export interface Encoding {
  /** Token ids, [CLS] first and [SEP] last. */
  ids: Uint32Array;
  /** Per token a [start, end) pair, flattened (2 values per token): UTF-16 code-unit indices into
   * the text, what String.prototype.slice takes. [CLS] and [SEP] have (0, 0). */
  offsets: Uint32Array;
  /** The same pairs in Unicode code points (Python str indices, as the anybit CLI and Hugging Face
   * tokenizers print them); they differ from `offsets` after any character outside the BMP (emoji). */
  charOffsets: Uint32Array;
  /** The vocabulary strings of `ids` ('[UNK]' for an unknown word; '##' marks a word's continuation). */
  tokens: string[];
  /** Word pieces were dropped to fit `maxTokens` (the text is too long for the model). */
  truncated: boolean;
  /** Word pieces of the whole text before truncation ([CLS] and [SEP] not counted). */
  piecesTotal: number;
  /** The most tokens the model takes, [CLS] and [SEP] included. */
  maxTokens: number;
  /** The model's output: for a sentence-embedding model the pooled embedding (`shape` [hidden]);
   * for a tagger `[tokens, classes]` logits, row-major. */
  output: Float32Array;
  shape: number[];
  /** Weight width the run used. */
  width: number;
  /** Tokenizing and running, in milliseconds. */
  ms: number;
}

/** One row of a model file's eval table. */
export interface EvalResult {
  dataset: string;
  /** What the scores are when they are not top-1 accuracy: 'f1', 'exact_match', ...; absent means accuracy. */
  metric?: string;
  /** Examples scored. */
  n: number;
  /** [width, score in [0, 1]] pairs. */
  accuracy: [number, number][];
}

/** A counterfactual detector's task (SemEval-2020 Task 5): its output is [tokens, 7]. */
export interface CounterfactualTask {
  type: 'counterfactual';
  /** [width, threshold] pairs: from this probability a text is called counterfactual at that width
   * (a width without its own uses the nearest wider one's, else 0.5). */
  thresholds: [number, number][];
}

/** A span of the text that detect() was given. */
export interface Span {
  /** First code point (Python str index, as SemEval's CSVs count). */
  start: number;
  /** Last code point, INCLUSIVE (SemEval's convention). */
  end: number;
  /** The same span in UTF-16 code units, end exclusive: `text.slice(startUtf16, endUtf16)`. */
  startUtf16: number;
  endUtf16: number;
  /** The span's text. */
  text: string;
}

/** What detect() says about one text. */
export interface Detection {
  /** `probability >= threshold`. */
  counterfactual: boolean;
  /** The model's probability that the text is counterfactual. */
  probability: number;
  /** The model's threshold at `width`. */
  threshold: number;
  /** The antecedent: always one (decoded as the best legal tagging), except for a text with no
   * word to tag; given whatever the verdict. */
  antecedent: Span | null;
  /** The consequent, or null when there is none (SemEval's -1, -1). */
  consequent: Span | null;
  /** Tokens the model saw, [CLS] and [SEP] included. */
  tokens: number;
  /** The text was longer than the model takes and was cut; the spans lie in the part it saw. */
  truncated: boolean;
  /** Weight width the run used. */
  width: number;
  /** Tokenizing, running and decoding, in milliseconds. */
  ms: number;
}

export interface DetectManyOptions {
  /** After each chunk of texts: how many are done of how many. */
  onProgress?: (progress: { done: number; total: number }) => void;
  /** An AbortSignal: aborting it rejects at once with code 'aborted'; the worker stops after the
   * chunk in hand (16 texts). Already aborted: rejects before anything is sent. */
  signal?: AbortSignalLike;
}

export interface RunManyOptions {
  /** After each chunk of inputs (32): how many are done of how many. */
  onProgress?: (progress: { done: number; total: number }) => void;
  /** An AbortSignal: aborting it rejects at once with code 'aborted'; the worker stops after the
   * chunk in hand. Already aborted: rejects before anything is sent. */
  signal?: AbortSignalLike;
  /** run()'s image options, for the inputs that are images. */
  imageOptions?: ImageOptions;
}

/** What runText says besides the classes: the encoding, without `output` (it is `logits`). */
export type TextEncodingFields = Omit<Encoding, 'output' | 'width' | 'ms'>;

/** runText on a sentence classifier (output [classes]): as run() says, plus the encoding. */
export interface TextRunResult extends RunResult, TextEncodingFields {
  kind: 'text';
}

/** runText on a token classifier (output [tokens, classes], e.g. BIO tags): a class per token. */
export interface TokenRunResult extends TextEncodingFields {
  kind: 'tokens';
  /** Classes per token. */
  classes: number;
  /** [tokens, classes], row-major. */
  logits: Float32Array;
  probabilities: Float32Array;
  /** Per token: the most probable class, its label (null without labels) and its probability. */
  predicted: Uint32Array;
  labels: (string | null)[];
  probability: Float32Array;
  width: number;
  ms: number;
}

export interface Probe {
  simd: boolean;
  relaxedSimd: boolean;
  crossOriginIsolated: boolean;
  sharedMemory: boolean;
  workers: boolean;
  /** navigator.hardwareConcurrency as reported, or null. */
  reportedCores: number | null;
  /** The core count the runtime believes (at least 1, at most 64). */
  cores: number;
  /** navigator.deviceMemory (GiB, rounded by the browser), or null where not exposed. */
  deviceMemoryGiB: number | null;
  /** navigator.connection, or null where not exposed. */
  connection: { effectiveType: string | null; saveData: boolean } | null;
  /** navigator.getBattery() where the runtime's scope has it (a page's window in Chromium; not a
   * worker, where a browser session runs), else null. */
  battery: { level: number; charging: boolean } | null;
  tookMs: number;
  build: BuildInfo;
}

export interface Calibration {
  isa: string;
  threads: number;
  /** Per width: [width, predicted ms of its integer GEMMs]. */
  gemmMs: [number, number][];
  /** The rest of a forward pass (the same at every width), ms. */
  otherMs: number;
  /** Per width the loaded planes serve: [width, mean of measured passes, ms]; this is the
   * prediction for those widths (gemmMs + otherMs predicts the others). */
  passMs: [number, number][];
  /** With `threads` > 1: the same passes on one thread, for the thread-count choice. */
  oneThreadMs: [number, number][];
  /** The pass at the current width, ms. */
  measuredMs: number;
  measuredWidth: number;
  tookMs: number;
}

export interface Budget {
  /** Latency of one forward pass, ms. */
  latencyMs?: number;
  /** Bytes of the model file the width may need. */
  maxBytes?: number;
  /** Bytes of memory the runtime may hold for the model at the width. */
  maxMemoryBytes?: number;
}

export interface WidthOption {
  width: number;
  /** Threads to run this width with (one where more are not at least 10% faster). */
  threads: number;
  predictedMs: number;
  /** Stored test accuracy in [0, 1], when the model has one for this width. */
  accuracy: number | null;
  /** Bytes of the file this width needs. */
  bytes: number | null;
  /**
   * Bytes of memory the runtime holds for the model at this width: the 8-bit codes (kept for
   * switching), the weights packed for the width, activations and kernel scratch, and the file
   * prefix a progressive load keeps.
   */
  memoryBytes: number | null;
  fits: boolean;
}

export interface Decision {
  width: number;
  threads: number;
  isa: string;
  options: WidthOption[];
  reasons: string[];
}

/** The attacks of `Session.attack` (docs/ATTACKS.md in the anybit repository). */
export type AttackName = 'fgsm' | 'bim' | 'pgd-linf' | 'pgd-l2' | 'mi-fgsm' | 'deepfool' | 'cw-l2';

export interface AttackRequest {
  /** NHWC floats in [0, 1] (inputShape elements), or an RGBA image converted as run() converts it. */
  image: Float32Array | ImageLike;
  /** As run()'s image options; images only. */
  imageOptions?: ImageOptions;
  attack: AttackName;
  /** Budget on the pixel scale [0, 1]: Linf radius (fgsm, bim, pgd-linf, mi-fgsm) or L2 radius
   * (pgd-l2); deepfool and cw-l2 take none. Default: the attack's. */
  eps?: number;
  steps?: number;
  /** Step size (C&W: Adam's learning rate). */
  stepSize?: number;
  /** Targeted attack towards this class; untargeted when left out. */
  target?: number;
  /** Apply the ADV-ReLU correction to every gradient. */
  advRelu?: boolean;
  /** Attacked width; default the current width. The session's width is unchanged afterwards. */
  width?: number;
  /** The class to move away from; default the prediction on the original at the attacked width. */
  label?: number;
  /** Seed of the random start (PGD). */
  seed?: number;
  /** Round the adversarial image to 8-bit pixel levels k/255, what a PNG holds (default true).
   * Success, norms and predictions are those of the rounded image. */
  round?: boolean;
}

export interface AttackProgress {
  /** Gradient evaluations done. */
  done: number;
  /** The most the attack may take; done jumps to it when the attack ends early. */
  total: number;
}

/** The parts of an AbortSignal the package uses (so the types need no DOM lib in Node). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface AttackOptions {
  onProgress?: (progress: AttackProgress) => void;
  /** An AbortSignal: aborting it stops the attack at its next slice (tens of ms), and the promise
   * rejects with code 'aborted'. Already aborted: rejects at once. */
  signal?: AbortSignalLike;
}

export interface ClassScore {
  index: number;
  label: string | null;
  /** Softmax probability. */
  probability: number;
}

export interface AttackResult {
  attack: AttackName;
  width: number;
  advRelu: boolean;
  label: number;
  target: number | null;
  /** The model at the attacked width meets the goal on `adversarial` (as returned: rounded by default). */
  success: boolean;
  /** Model input layout (inputShape). */
  original: Float32Array;
  adversarial: Float32Array;
  /** adversarial - original. */
  perturbation: Float32Array;
  inputShape: number[];
  /** Norms of the perturbation on the pixel scale [0, 1]. */
  l2: number;
  linf: number;
  /** Gradient evaluations spent. */
  gradients: number;
  /** Time spent computing (slices and final checks), not the pauses between slices. */
  ms: number;
  /** The settings used, defaults filled in; eps is null for deepfool and cw-l2. */
  settings: { eps: number | null; steps: number; stepSize: number; searchSteps: number; seed: number };
  /** Every loaded width, narrowest first. */
  predictions: { width: number; original: ClassScore; adversarial: ClassScore }[];
}

export declare class Session {
  private constructor();
  /** The build in use, as reported when the session started. */
  readonly build: BuildInfo;
  buildInfo(): Promise<BuildInfo>;
  /** Loads a model from a URL (relative URLs resolve against the page) or from its bytes. */
  load(source: string | URL | ArrayBuffer | Uint8Array, options?: LoadOptions): Promise<ModelInfo>;
  info(): Promise<ModelInfo>;
  widths(): Promise<Width[]>;
  /** Switches the weight width (one of widths()); the next run uses it. After a progressive
   * load, a width wider than the loaded planes serve first fetches the missing planes. */
  setWidth(width: number): Promise<ModelInfo>;
  /** Threads a run may use, 1..pool size (a decision's `threads`); 1 outside the threads build. */
  setThreads(threads: number): Promise<ModelInfo>;
  /** What this device offers and the build in use (no model needed). */
  probe(): Promise<Probe>;
  /** Times the model's own kernels at every width on this device, for decide(). */
  calibrate(minMs?: number): Promise<Calibration>;
  /** Chooses a width and thread count for a budget (does not switch; setThreads and setWidth follow it). */
  decide(budget?: Budget): Promise<Decision>;
  /** Runs one sample: NHWC floats (inputShape elements) or an RGBA image. With `output`, the
   * output is written into that array and it comes back as `logits` (see RunOutput). */
  run(input: Float32Array, options?: RunOutput): Promise<RunResult>;
  run(input: ImageLike, options?: ImageOptions & RunOutput): Promise<RunResult>;
  /** run() for each input, in order, sent to the worker 32 at a time (one message round trip per
   * chunk) with progress and cancel. A bad input rejects the whole call, its index in the message
   * ('inputs[3]: ...'). Results equal run()'s one at a time. */
  runMany(inputs: readonly (Float32Array | ImageLike)[], options?: RunManyOptions): Promise<RunResult[]>;
  /**
   * Tokenizes `text` with the loaded text model's own tokenizer and runs the model (a sentence
   * embedding for a pooled model). Longer text is truncated to the model's tokens (`truncated`);
   * empty or whitespace-only text rejects with 'invalid_argument', text over 4 MiB (UTF-8) with
   * 'limit_exceeded', anything but a string and an image model with 'invalid_argument'.
   */
  encode(text: string): Promise<Encoding>;
  /** Classifies `text` with a text model that has labels: one class for the text (kind 'text')
   * or one per token (kind 'tokens'). A model without labels rejects: use encode(). */
  runText(text: string): Promise<TextRunResult | TokenRunResult>;
  /**
   * Counterfactual detection with a counterfactual model (info().task): the verdict with its
   * probability and the width's threshold, and the antecedent and consequent. Text errors as
   * encode(); a model without the task rejects with 'invalid_argument'.
   */
  detect(text: string): Promise<Detection>;
  /** detect() for each text, in order, sent to the worker 16 at a time with progress and cancel.
   * A bad text rejects the whole call, its index in the message ('texts[3]: the text is empty'). */
  detectMany(texts: readonly string[], options?: DetectManyOptions): Promise<Detection[]>;
  /** Attacks the loaded model on one image, in slices (progress, cancel); other requests wait for it. */
  attack(request: AttackRequest, options?: AttackOptions): Promise<AttackResult>;
  /** Frees the model and stops the worker; later calls reject with code 'disposed'. */
  dispose(): Promise<void>;
}

/** Starts a runtime (a Web Worker in browsers, in-process in Node) and resolves when it is ready. */
export declare function createSession(options?: SessionOptions): Promise<Session>;
