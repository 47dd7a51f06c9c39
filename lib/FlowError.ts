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

/** What each code means: the one description of it, which docs/robustness.md and the service's docs print. */
export const FLOW_ERROR_MEANINGS: Readonly<Record<FlowErrorCode, string>> = {
  ERR_MODEL_LOAD: 'the model file is missing, not a TorchScript export, corrupt, or declares properties out of range',
  ERR_WEIGHTS: 'the weights file is corrupt, hostile, of another architecture, or has missing, unexpected or mis-shaped tensors',
  ERR_DEVICE: 'the device asked for is not available (CUDA on a machine or LibTorch build without it)',
  ERR_INPUT_SIZE: 'frames of different sizes, smaller than 8x8, or needing more memory than `memoryLimit`',
  ERR_INFERENCE: 'LibTorch failed while computing, or the flow came out NaN or infinite',
  ERR_DISPOSED: 'the model or stream was disposed before the request ran, or is used after `dispose()`',
  ERR_QUEUE_FULL: 'more than `queueLimit` requests queued or running on the model',
  ERR_ABORTED: "the request's `signal` was aborted",
  ERR_VIDEO: 'a video cannot be opened or decoded, or ended well before the frame count its container announces',
  ERR_NATIVE_MISSING: 'the native addon is not built, or was built against another LibTorch than the one it finds',
  ERR_DOWNLOAD: 'a download failed: HTTP error, stall past `downloadTimeout`, dropped connection, or a checksum that does not match',
  ERR_OFFLINE: 'weights that are not cached were needed while offline; the message names the URL and the path to put the file at',
};

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
