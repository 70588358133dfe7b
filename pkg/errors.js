// The one error type of the package. The runtime (wasm) throws plain Errors named AnybitError with a
// `code`; errors crossing a worker arrive as {code, message}. Both become AnybitError instances here,
// so `instanceof AnybitError` and `e.code` work the same in browsers and Node.

export class AnybitError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'AnybitError';
    this.code = code;
  }
}

/** Any thrown value as an AnybitError; a wasm trap (the instance is then unusable) is `crashed`. */
export function toAnybitError(e) {
  if (e instanceof AnybitError) return e;
  if (e instanceof WebAssembly.RuntimeError) {
    return new AnybitError('crashed', `the runtime crashed (${e.message}); create a new session`);
  }
  if (e && typeof e.code === 'string' && (e.name === 'AnybitError' || e.name === undefined)) {
    return new AnybitError(e.code, String(e.message));
  }
  return new AnybitError('internal', String(e?.message ?? e));
}
