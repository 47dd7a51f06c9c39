import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import Redis from 'ioredis';
import { ARGUMENT_ERROR_CODES, encodeFlo, FlowEstimator, flowToColor, VideoFlowSession, type ArgumentErrorCode, type DeviceName, type FlowErrorCode } from 'torch-optical-flow';
import { is, matFromRgb, opencv, type VideoWriterLike } from 'torch-optical-flow/internal';
import {
  DEFAULT_QUEUE_NAME, JOB_ID_PATTERN, PairSummary, parseJobData, redisOptions, VideoJobData, VideoJobProgress, VideoJobResult, VideoJobSummary,
} from './videoJob';

export interface VideoJobWorkerOptions {
  /** Redis URL of the queue. */
  redis: string;
  /** The directory shared with the server and the other workers (the same mount on every machine). */
  sharedDir: string;
  queueName?: string;
  device?: DeviceName;
  threads?: number;
  /** Jobs run at once (they share this worker's models). Default 1. */
  concurrency?: number;
  /** Milliseconds a job's lock lasts without renewal; a worker silent that long is taken as dead. Default 30000. */
  lockDuration?: number;
  /** Milliseconds between checks for jobs whose worker died. Default 30000. */
  stalledInterval?: number;
  /** Models this worker may load (model names); default any model a job names. */
  models?: string[];
  /** Name in results and logs. Default host:pid. */
  id?: string;
  /** Structured log lines (pino's interface); default none. */
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
}

const OPTIONS: readonly (keyof VideoJobWorkerOptions)[] = ['redis', 'sharedDir', 'queueName', 'device', 'threads', 'concurrency', 'lockDuration',
  'stalledInterval', 'models', 'id', 'logger'];
const MODEL_CACHE = 2;
const PROGRESS_INTERVAL_MS = 500;
/** Library errors that no retry can mend: the job fails at once. */
// Failures a retry cannot mend: the job fails at once.
const FINAL_CODES: ReadonlySet<string> = new Set<FlowErrorCode | ArgumentErrorCode>(['ERR_VIDEO', 'ERR_INPUT_SIZE', 'ERR_MODEL_LOAD', 'ERR_WEIGHTS',
  ...ARGUMENT_ERROR_CODES]);
const silent = { info() {}, warn() {}, error() {} };

/**
 * Processes video jobs from the BullMQ queue with the library's video session. Several workers, on one machine or
 * many, share the queue and the shared directory; a worker that dies mid-job loses its lock and the job is run
 * again by another. A result is written aside and renamed into place whole, once: no partial or second result
 * is ever visible as final.
 */
export class VideoJobWorker {
  readonly id: string;
  readonly sharedDir: string;
  private readonly options: VideoJobWorkerOptions;
  private readonly connection: Redis;
  private readonly worker: Worker<VideoJobData, VideoJobResult>;
  private readonly estimators = new Map<string, Promise<FlowEstimator>>();
  private readonly log: NonNullable<VideoJobWorkerOptions['logger']>;
  private closing?: Promise<void>;

  private constructor(options: VideoJobWorkerOptions) {
    this.options = options;
    this.id = options.id ?? `${os.hostname()}:${process.pid}`;
    this.sharedDir = path.resolve(options.sharedDir);
    this.log = options.logger ?? silent;
    this.connection = new Redis(options.redis, redisOptions('worker'));
    this.connection.on('error', () => undefined);  // reconnection is ioredis's; BullMQ reports through 'error' below
    this.worker = new Worker<VideoJobData, VideoJobResult>(options.queueName ?? DEFAULT_QUEUE_NAME, (job) => this.process(job), {
      connection: this.connection,
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDuration ?? 30_000,
      stalledInterval: options.stalledInterval ?? 30_000,
      maxStalledCount: 2,
      autorun: false,
    });
    this.worker.on('error', (error) => this.log.warn({ err: error.message }, 'queue error'));
    this.worker.on('failed', (job, error) => this.log.error({ job: job?.id, err: error.message, attempts: job?.attemptsMade }, 'job failed'));
    this.worker.on('active', (job) => this.log.info({ job: job.id, worker: this.id, attempt: job.attemptsStarted }, 'job started'));
    this.worker.on('completed', (job) => this.log.info({ job: job.id, worker: this.id, dir: job.returnvalue?.dir }, 'job completed'));
    this.worker.on('stalled', (id) => this.log.warn({ job: id }, 'job stalled (its worker stopped answering); it runs again'));
  }

  /** Checks the options, makes the shared directory's folders and starts taking jobs. */
  static async start(options: VideoJobWorkerOptions): Promise<VideoJobWorker> {
    const opts = is.options<VideoJobWorkerOptions>('worker options', options, OPTIONS) as VideoJobWorkerOptions;
    is.string('redis', opts.redis);
    is.string('sharedDir', opts.sharedDir);
    if (opts.concurrency !== undefined) is.integer('concurrency', opts.concurrency, 1, 64);
    if (opts.lockDuration !== undefined) is.integer('lockDuration', opts.lockDuration, 500, 3_600_000);
    if (opts.stalledInterval !== undefined) is.integer('stalledInterval', opts.stalledInterval, 100, 3_600_000);
    if (opts.models !== undefined && (!Array.isArray(opts.models) || opts.models.some((m) => typeof m !== 'string'))) {
      throw is.typeError('models', 'an array of model names', opts.models);
    }
    opencv();  // video needs OpenCV: say so at start, not on the first job
    for (const sub of ['uploads', 'staging', 'results']) fs.mkdirSync(path.join(path.resolve(opts.sharedDir), sub), { recursive: true });
    const worker = new VideoJobWorker(opts);
    void worker.worker.run().catch((error) => worker.log.error({ err: (error as Error).message }, 'worker stopped'));
    await worker.worker.waitUntilReady();
    worker.log.info({ worker: worker.id, queue: worker.worker.name, sharedDir: worker.sharedDir }, 'worker ready');
    return worker;
  }

  private async process(job: Job<VideoJobData, VideoJobResult>): Promise<VideoJobResult> {
    const id = job.id ?? '';
    if (!JOB_ID_PATTERN.test(id)) throw new UnrecoverableError(`job id '${id}' is not one this service makes`);
    const data = parseJobData(job.data);
    const finalDir = path.join(this.sharedDir, 'results', id);
    // An earlier attempt put its result in place and died before recording it: that result stands.
    if (fs.existsSync(path.join(finalDir, 'summary.json'))) return this.published(id, data);
    if (this.options.models && !this.options.models.includes(data.model)) {
      throw new UnrecoverableError(`this worker serves ${this.options.models.join(', ')}, not model '${data.model}'`);
    }
    const video = path.isAbsolute(data.video) ? data.video : path.join(this.sharedDir, data.video);
    if (!fs.existsSync(video)) {
      throw new UnrecoverableError(`video '${data.video}' is not in the shared directory ${this.sharedDir} on worker ${this.id}`);
    }
    const staging = path.join(this.sharedDir, 'staging', `${id}.${this.id.replace(/[^A-Za-z0-9_-]/g, '_')}.${crypto.randomBytes(4).toString('hex')}`);
    fs.mkdirSync(staging, { recursive: true });
    try {
      const estimator = await this.estimator(data.model, data.weights);
      const summary = await this.run(job, data, estimator, video, staging);
      await fs.promises.writeFile(path.join(staging, 'summary.json'), JSON.stringify(summary, null, 2));
      return await this.publish(id, data, staging);
    } catch (error) {
      await fs.promises.rm(staging, { recursive: true, force: true });
      const code = (error as { code?: unknown }).code;
      const final = error instanceof UnrecoverableError || (typeof code === 'string' && FINAL_CODES.has(code));
      // A job that failed for good no longer needs its upload.
      if (final && data.uploaded) await fs.promises.rm(path.join(this.sharedDir, data.video), { force: true });
      if (final && !(error instanceof UnrecoverableError)) throw new UnrecoverableError(`${code}: ${(error as Error).message}`);
      throw error;
    }
  }

  private async run(job: Job<VideoJobData, VideoJobResult>, data: VideoJobData, estimator: FlowEstimator, video: string, staging: string): Promise<VideoJobSummary> {
    const session = VideoFlowSession.open(estimator, video, { iterations: data.iterations, maxFrames: data.maxFrames });
    const cv = opencv();
    const total = Math.max(0, Math.min(session.frameCount || 0, data.maxFrames ?? Infinity) - 1);
    if (data.outputs.includes('flo')) fs.mkdirSync(path.join(staging, 'flow'));
    let writer: VideoWriterLike | undefined;
    let scale: number | undefined;
    const perPair: PairSummary[] = [];
    const started = Date.now();
    let reported = 0;
    try {
      for await (const { index, flow } of session) {
        if (data.outputs.includes('flo')) {
          await fs.promises.writeFile(path.join(staging, 'flow', `${String(index).padStart(6, '0')}.flo`), encodeFlo(flow));
        }
        if (data.outputs.includes('video')) {
          scale ??= Math.max(1, flow.maxMagnitude() * 1.25);
          writer ??= new cv.VideoWriter(path.join(staging, 'flow.avi'), cv.VideoWriter.fourcc('MJPG'), session.fps || 24,
            new cv.Size(flow.width, flow.height), true);
          writer.write(matFromRgb(flowToColor(flow, { maxMagnitude: scale })));
        }
        let sum = 0;
        for (let i = 0; i < flow.data.length; i += 2) sum += Math.hypot(flow.data[i], flow.data[i + 1]);
        perPair.push({ index, meanMagnitude: round(sum / (flow.width * flow.height)), maxMagnitude: round(flow.maxMagnitude()) });
        if (Date.now() - reported > PROGRESS_INTERVAL_MS) {
          reported = Date.now();
          const progress: VideoJobProgress = { pairs: perPair.length, total, percent: total ? Math.min(100, Math.round((100 * perPair.length) / total)) : 0 };
          await job.updateProgress(progress as unknown as object);
        }
      }
    } finally {
      writer?.release();
      await session.close();
    }
    const seconds = (Date.now() - started) / 1000;
    await job.updateProgress({ pairs: perPair.length, total: perPair.length, percent: 100 } satisfies VideoJobProgress);
    return {
      id: job.id!, video: data.originalName ?? path.basename(video), model: data.model, weights: estimator.info.weights.name,
      iterations: data.iterations ?? estimator.info.defaultIterations, width: session.width, height: session.height, fps: session.fps,
      pairs: perPair.length, seconds: round(seconds), pairsPerSecond: round(perPair.length / Math.max(seconds, 1e-6)),
      worker: this.id, attempt: job.attemptsStarted, completedAt: new Date().toISOString(), perPair,
    };
  }

  /** Renames the staged result into place; if another attempt got there first, its result stands and ours goes. */
  private async publish(id: string, data: VideoJobData, staging: string): Promise<VideoJobResult> {
    const finalDir = path.join(this.sharedDir, 'results', id);
    try {
      await fs.promises.rename(staging, finalDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      await fs.promises.rm(staging, { recursive: true, force: true });
      this.log.warn({ job: id, worker: this.id }, 'another attempt published this job first; its result stands');
    }
    // What attempts of workers that died left aside is never final: it goes once the result is in place.
    const stagingDir = path.join(this.sharedDir, 'staging');
    for (const entry of await fs.promises.readdir(stagingDir)) {
      if (entry.startsWith(`${id}.`)) await fs.promises.rm(path.join(stagingDir, entry), { recursive: true, force: true });
    }
    return this.published(id, data);
  }

  /** The result in place: its files and summary. The job's upload is no longer needed. */
  private async published(id: string, data: VideoJobData): Promise<VideoJobResult> {
    const dir = path.join('results', id);
    const abs = path.join(this.sharedDir, dir);
    const files: { name: string; bytes: number }[] = [];
    const walk = (rel: string) => {
      for (const entry of fs.readdirSync(path.join(abs, rel), { withFileTypes: true })) {
        const name = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) walk(name);
        else files.push({ name, bytes: fs.statSync(path.join(abs, name)).size });
      }
    };
    walk('');
    files.sort((a, b) => a.name.localeCompare(b.name));
    const summary = JSON.parse(await fs.promises.readFile(path.join(abs, 'summary.json'), 'utf8')) as VideoJobSummary;
    if (data.uploaded) await fs.promises.rm(path.join(this.sharedDir, data.video), { force: true });
    return { dir, files, summary };
  }

  /** A loaded model per (model, weights), the last two kept. */
  private estimator(model: string, weights: string | undefined): Promise<FlowEstimator> {
    const key = `${model}\n${weights ?? ''}`;
    let found = this.estimators.get(key);
    if (!found) {
      found = FlowEstimator.load({ model, weights, device: this.options.device, threads: this.options.threads });
      found.catch(() => this.estimators.delete(key));
      this.estimators.set(key, found);
      while (this.estimators.size > MODEL_CACHE) {
        const [oldest, evicted] = this.estimators.entries().next().value as [string, Promise<FlowEstimator>];
        this.estimators.delete(oldest);
        void evicted.then((e) => e.dispose(), () => undefined);
      }
    } else {
      this.estimators.delete(key);
      this.estimators.set(key, found);
    }
    return found;
  }

  /**
   * Stops taking jobs, lets the running ones finish for up to `timeoutMs`, then abandons them (their locks lapse
   * and other workers take them), and frees the models and the connection. Safe to call more than once.
   */
  close(timeoutMs = 30_000): Promise<void> {
    this.closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const graceful = this.worker.close();
      const timedOut = await Promise.race([
        graceful.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.log.warn({ worker: this.id }, 'jobs still running at the shutdown timeout are left to other workers');
        await this.worker.close(true).catch(() => undefined);
      }
      await Promise.all([...this.estimators.values()].map((p) => p.then((e) => e.dispose(), () => undefined)));
      this.connection.disconnect();
    })();
    return this.closing;
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
