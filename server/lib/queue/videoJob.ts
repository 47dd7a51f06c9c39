// What a video job is, as the server submits it and the workers read it back from Redis (where nothing is trusted:
// every field is checked again), and where its files live in the directory the server and the workers share:
//   <shared>/uploads/<id>.<ext>     videos uploaded to the server, removed once their job has a result
//   <shared>/staging/<id>.<worker>  a result being written; never read as final
//   <shared>/results/<id>/          a finished result, renamed into place whole (summary.json, flow/*.flo, flow.avi)
import * as path from 'path';
import { UnrecoverableError } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import { MAX_ITERATIONS } from 'torch-optical-flow';

export const DEFAULT_QUEUE_NAME = 'optical-flow-video';
/** The most frames a job may ask for. */
export const MAX_JOB_FRAMES = 10_000_000;
export const JOB_OUTPUTS = ['flo', 'video'] as const;
export type VideoJobOutput = typeof JOB_OUTPUTS[number];
/** Ids the server makes (UUIDs); anything else found in Redis is refused. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface VideoJobData {
  /** The video: relative to the shared directory (an upload), or an absolute path every worker can read. */
  video: string;
  /** Its name as the client gave it (for the summary). */
  originalName?: string;
  /** Whether the video is an upload the job owns (removed once the result is in place). */
  uploaded: boolean;
  model: string;
  weights?: string;
  iterations?: number;
  maxFrames?: number;
  outputs: VideoJobOutput[];
}

/** Statistics of one pair of the video. */
export interface PairSummary {
  index: number;
  meanMagnitude: number;
  maxMagnitude: number;
}

export interface VideoJobSummary {
  id: string;
  video: string;
  model: string;
  weights: string;
  iterations: number;
  width: number;
  height: number;
  fps: number;
  pairs: number;
  seconds: number;
  pairsPerSecond: number;
  /** Which worker produced the result, on which attempt. */
  worker: string;
  attempt: number;
  completedAt: string;
  perPair: PairSummary[];
}

export interface VideoJobResult {
  /** The result's directory, relative to the shared directory. */
  dir: string;
  files: { name: string; bytes: number }[];
  summary: VideoJobSummary;
}

export interface VideoJobProgress {
  pairs: number;
  /** Pairs expected (0 when the container does not say). */
  total: number;
  percent: number;
}

/** A job's data as read back from Redis, checked field by field; bad data fails the job for good. */
export function parseJobData(data: unknown): VideoJobData {
  const bad = (what: string): never => { throw new UnrecoverableError(`job data is invalid: ${what}`); };
  if (data === null || typeof data !== 'object') bad('not an object');
  const d = data as Record<string, unknown>;
  if (typeof d.video !== 'string' || d.video.length === 0 || d.video.length > 4096 || d.video.includes('\0')) bad('video');
  if (typeof d.model !== 'string' || d.model.length === 0 || d.model.length > 256) bad('model');
  if (d.weights !== undefined && (typeof d.weights !== 'string' || d.weights.length > 256)) bad('weights');
  const int = (name: string, max: number) => {
    const v = d[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)) bad(name);
    return v as number | undefined;
  };
  const outputs = d.outputs;
  if (!Array.isArray(outputs) || outputs.length === 0 || outputs.some((o) => !(JOB_OUTPUTS as readonly unknown[]).includes(o))) bad('outputs');
  const video = d.video as string;
  if (!path.isAbsolute(video) && (path.normalize(video).startsWith('..') || !video.startsWith('uploads/'))) bad('video path');
  return {
    video, originalName: typeof d.originalName === 'string' ? d.originalName.slice(0, 256) : undefined, uploaded: d.uploaded === true,
    model: d.model as string, weights: d.weights as string | undefined,
    iterations: int('iterations', MAX_ITERATIONS), maxFrames: int('maxFrames', MAX_JOB_FRAMES), outputs: outputs as VideoJobOutput[],
  };
}

/**
 * ioredis options for a URL. The server's connection fails fast while Redis is away (a request must not hang);
 * a worker's waits and reconnects (BullMQ requires `maxRetriesPerRequest: null` for its blocking calls).
 */
export function redisOptions(role: 'server' | 'worker'): RedisOptions {
  return role === 'server'
    ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5000, lazyConnect: false }
    : { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (times: number) => Math.min(times * 200, 2000) };
}
