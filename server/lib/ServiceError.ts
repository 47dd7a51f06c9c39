import type { FlowErrorCode } from 'torch-optical-flow';

/** Codes the service raises itself, beyond the library's own (which it passes through unchanged). */
export const SERVICE_ERROR_CODES = [
  'ERR_BAD_REQUEST', 'ERR_DECODE', 'ERR_BODY_TOO_LARGE', 'ERR_PIXEL_LIMIT', 'ERR_UNKNOWN_MODEL', 'ERR_NOT_ACCEPTABLE',
  'ERR_UNSUPPORTED_MEDIA_TYPE', 'ERR_DEADLINE', 'ERR_SHUTTING_DOWN', 'ERR_NOT_FOUND', 'ERR_PATH_NOT_ALLOWED',
  'ERR_JOBS_DISABLED', 'ERR_QUEUE_UNAVAILABLE', 'ERR_JOB_NOT_DONE', 'ERR_INTERNAL',
] as const;
export type ServiceErrorCode = typeof SERVICE_ERROR_CODES[number];

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
