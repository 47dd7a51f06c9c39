// The one table from error codes to HTTP statuses: every code the library and the service raise (the compiler holds
// it to their lists), and those of the Fastify plugins whose errors reach the handler, renamed. Anything else is a 500.
import type { ArgumentErrorCode, FlowErrorCode } from 'torch-optical-flow';
import type { ServiceErrorCode } from './ServiceError';

export type PublicErrorCode = ArgumentErrorCode | FlowErrorCode | ServiceErrorCode;

export const STATUS: Readonly<Record<PublicErrorCode, number>> = {
  // Argument validation (Node's codes, as the library raises them).
  ERR_INVALID_ARG_TYPE: 400,
  ERR_INVALID_ARG_VALUE: 400,
  ERR_OUT_OF_RANGE: 400,
  ERR_UNKNOWN_OPTION: 400,
  // The library.
  ERR_INPUT_SIZE: 400,
  ERR_MODEL_LOAD: 500,
  ERR_WEIGHTS: 500,
  ERR_DEVICE: 500,
  ERR_INFERENCE: 500,
  ERR_DISPOSED: 503,
  ERR_QUEUE_FULL: 503,
  ERR_ABORTED: 503,
  ERR_VIDEO: 400,
  ERR_NATIVE_MISSING: 500,
  ERR_DOWNLOAD: 502,
  ERR_OFFLINE: 503,
  // The service.
  ERR_BAD_REQUEST: 400,
  ERR_DECODE: 400,
  ERR_UNKNOWN_MODEL: 400,
  ERR_PATH_NOT_ALLOWED: 403,
  ERR_NOT_FOUND: 404,
  ERR_NOT_ACCEPTABLE: 406,
  ERR_JOB_NOT_DONE: 409,
  ERR_BODY_TOO_LARGE: 413,
  ERR_PIXEL_LIMIT: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_JOBS_DISABLED: 501,
  ERR_SHUTTING_DOWN: 503,
  ERR_QUEUE_UNAVAILABLE: 503,
  ERR_DEADLINE: 504,
  ERR_INTERNAL: 500,
};

/**
 * Fastify's and its plugins' codes, renamed to the service's so that clients see one vocabulary. Their messages
 * are kept.
 */
const RENAMED: Readonly<Record<string, ServiceErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'ERR_BODY_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'ERR_BODY_TOO_LARGE',
  FST_FILES_LIMIT: 'ERR_BODY_TOO_LARGE',
  FST_FIELDS_LIMIT: 'ERR_BODY_TOO_LARGE',
  FST_PARTS_LIMIT: 'ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'ERR_BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'ERR_BAD_REQUEST',
  FST_ERR_VALIDATION: 'ERR_BAD_REQUEST',
  FST_PROTO_VIOLATION: 'ERR_BAD_REQUEST',
};

/** The code a client sees for an error's own code. */
export function publicCode(code: string | undefined, fastifyStatus?: number): PublicErrorCode {
  if (code !== undefined && code in STATUS) return code as PublicErrorCode;
  if (code !== undefined && RENAMED[code] !== undefined) return RENAMED[code];
  // Fastify's JSON parser reports bad JSON as a SyntaxError with a 400 status and no code of ours.
  if (fastifyStatus !== undefined && fastifyStatus >= 400 && fastifyStatus < 500) return 'ERR_BAD_REQUEST';
  return 'ERR_INTERNAL';
}

export function statusOf(code: string): number {
  return code in STATUS ? STATUS[code as PublicErrorCode] : 500;
}
