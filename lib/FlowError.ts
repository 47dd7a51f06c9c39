/**
 * Codes of the errors this library raises beyond argument validation; the addon raises the first eight
 * (binding/FlowError.h, held against this list by a test).
 */
export const FLOW_ERROR_CODES = [
  'ERR_MODEL_LOAD', 'ERR_WEIGHTS', 'ERR_DEVICE', 'ERR_INPUT_SIZE', 'ERR_INFERENCE', 'ERR_DISPOSED',
  'ERR_QUEUE_FULL', 'ERR_ABORTED', 'ERR_VIDEO', 'ERR_NATIVE_MISSING', 'ERR_DOWNLOAD', 'ERR_OFFLINE',
] as const;
export type FlowErrorCode = typeof FLOW_ERROR_CODES[number];
const CODES: ReadonlySet<string> = new Set(FLOW_ERROR_CODES);

/**
 * An error from loading or running a model. Argument mistakes are `TypeError` / `RangeError` instead, with
 * Node's codes (`ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`, `ERR_UNKNOWN_OPTION`).
 */
export class FlowError extends Error {
  readonly code: FlowErrorCode;

  constructor(code: FlowErrorCode, message: string) {
    super(message);
    this.name = 'FlowError';
    this.code = code;
  }

  /** Turns a rejection from the addon into a FlowError whose stack is the caller's, captured before the call. */
  static fromNative(error: unknown, callerStack: string | undefined): FlowError {
    const native = error as { code?: unknown; message?: unknown };
    // The addon raises only FlowError codes (a test checks its list); anything else is a fault inside it, reported as
    // ERR_INFERENCE with what it said.
    const known = typeof native?.code === 'string' && CODES.has(native.code);
    const code = known ? native.code as FlowErrorCode : 'ERR_INFERENCE';
    const said = typeof native?.message === 'string' ? native.message : String(error);
    const message = known || typeof native?.code !== 'string' ? said : `${said} (native code ${native.code})`;
    const wrapped = new FlowError(code, message);
    if (callerStack) {
      wrapped.stack = `FlowError: ${message}\n${callerStack.split('\n').slice(1).join('\n')}`;
    }
    return wrapped;
  }
}

/** The stack of whoever called `fn`, to attach to errors that surface later from the worker thread. */
export function captureCallerStack(fn: (...args: never[]) => unknown): string | undefined {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, fn);
  return holder.stack;
}
