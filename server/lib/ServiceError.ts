import type { FlowErrorCode } from 'torch-optical-flow';

/** Codes the service raises itself, beyond the library's own (which it passes through unchanged). */
export const SERVICE_ERROR_CODES = [
  'ERR_BAD_REQUEST', 'ERR_DECODE', 'ERR_BODY_TOO_LARGE', 'ERR_PIXEL_LIMIT', 'ERR_UNKNOWN_MODEL', 'ERR_NOT_ACCEPTABLE',
  'ERR_UNSUPPORTED_MEDIA_TYPE', 'ERR_DEADLINE', 'ERR_SHUTTING_DOWN', 'ERR_NOT_FOUND', 'ERR_PATH_NOT_ALLOWED',
  'ERR_JOBS_DISABLED', 'ERR_QUEUE_UNAVAILABLE', 'ERR_JOB_NOT_DONE', 'ERR_INTERNAL',
] as const;
export type ServiceErrorCode = typeof SERVICE_ERROR_CODES[number];

/** What each of the service's codes means; docs/service.md prints them beside their statuses. */
export const SERVICE_ERROR_MEANINGS: Readonly<Record<ServiceErrorCode, string>> = {
  ERR_BAD_REQUEST: 'a missing or malformed field, bad JSON, or an option out of range',
  ERR_DECODE: 'an image that cannot be decoded',
  ERR_BODY_TOO_LARGE: 'a body or image part over `bodyLimit`, or a video over `maxVideoBytes`',
  ERR_PIXEL_LIMIT: "a frame over `maxPixels` (read from the image header, before decoding), or over the model's memory limit",
  ERR_UNKNOWN_MODEL: 'a model or weights the server was not started with',
  ERR_NOT_ACCEPTABLE: 'an `Accept` header the route cannot meet',
  ERR_UNSUPPORTED_MEDIA_TYPE: 'a body type the route cannot read',
  ERR_DEADLINE: "past `deadline`: the request is dropped from the model's queue, or its result discarded if it was running",
  ERR_SHUTTING_DOWN: 'the server is stopping',
  ERR_NOT_FOUND: 'an unknown route, job or result file',
  ERR_PATH_NOT_ALLOWED: 'a job names a video outside `inputDir`',
  ERR_JOBS_DISABLED: 'a job route on a server started without `redis`',
  ERR_QUEUE_UNAVAILABLE: 'Redis cannot be reached',
  ERR_JOB_NOT_DONE: "a job's result asked for before it completed (the message says its state, or why it failed)",
  ERR_INTERNAL: 'a fault in the service itself; the log has the details',
};

/**
 * An error the HTTP layer answers with; its status comes from the one table in `httpStatus.ts`. It may carry one
 * of the library's codes when the service adds to what the library said (Retry-After on ERR_QUEUE_FULL).
 */
export class ServiceError extends Error {
  readonly code: ServiceErrorCode | FlowErrorCode;
  /** Extra response headers (Retry-After). */
  readonly headers: Record<string, string>;

  constructor(code: ServiceErrorCode | FlowErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ServiceError';
    this.code = code;
    this.headers = headers;
  }
}
