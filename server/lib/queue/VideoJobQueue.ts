import * as fs from 'fs';
import * as path from 'path';
import { Job, Queue } from 'bullmq';
import Redis from 'ioredis';
import { redisOptions, VideoJobData, VideoJobProgress, VideoJobResult } from './videoJob';

/** What a client sees of a job. */
export interface VideoJobStatus {
  id: string;
  state: string;
  progress: VideoJobProgress | null;
  attemptsMade: number;
  submittedAt: string;
  startedAt?: string;
  finishedAt?: string;
  failedReason?: string;
  result?: VideoJobResult;
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

/** The submitting side of the video job queue (the HTTP server): add jobs, read their state and results. */
export class VideoJobQueue {
  readonly sharedDir: string;
  private readonly queue: Queue<VideoJobData, VideoJobResult>;
  private readonly connection: Redis;

  private constructor(queue: Queue<VideoJobData, VideoJobResult>, connection: Redis, sharedDir: string) {
    this.queue = queue;
    this.connection = connection;
    this.sharedDir = sharedDir;
  }

  /** Connects to Redis (failing fast when it is away) and makes the shared directory's folders. */
  static async open(options: { redis: string; queueName: string; sharedDir: string }): Promise<VideoJobQueue> {
    const sharedDir = path.resolve(options.sharedDir);
    for (const sub of ['uploads', 'staging', 'results']) fs.mkdirSync(path.join(sharedDir, sub), { recursive: true });
    const connection = new Redis(options.redis, redisOptions('server'));
    // ioredis reports connection errors as events; the state is read by ping() and by failing commands.
    connection.on('error', () => undefined);
    const queue = new Queue<VideoJobData, VideoJobResult>(options.queueName, { connection });
    queue.on('error', () => undefined);
    return new VideoJobQueue(queue, connection, sharedDir);
  }

  /** Adds a job under `id` (a second submit with the same id is the same job). */
  async submit(id: string, data: VideoJobData): Promise<void> {
    await this.queue.add('video', data, {
      jobId: id,
      // A stalled or crashed attempt is retried; a job whose input is bad fails at once (UnrecoverableError).
      attempts: 3,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
    });
  }

  async status(id: string): Promise<VideoJobStatus | undefined> {
    const job = await Job.fromId<VideoJobData, VideoJobResult>(this.queue, id);
    if (!job) return undefined;
    const state = await job.getState();
    const progress = typeof job.progress === 'object' && job.progress !== null ? job.progress as unknown as VideoJobProgress : null;
    return {
      id, state, progress, attemptsMade: job.attemptsMade,
      submittedAt: iso(job.timestamp)!, startedAt: iso(job.processedOn), finishedAt: iso(job.finishedOn),
      failedReason: state === 'failed' ? job.failedReason : undefined,
      result: state === 'completed' ? job.returnvalue : undefined,
    };
  }

  /** Jobs by state (waiting, active, completed, failed, delayed...). */
  counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized');
  }

  /** Whether Redis answers within `timeoutMs`. */
  async ping(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), timeoutMs); });
      return (await Promise.race([this.connection.ping(), timeout])) === 'PONG';
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => undefined);
    this.connection.disconnect();
  }
}
