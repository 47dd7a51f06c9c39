// The server's settings, declared once: defaults, bounds, the command-line flag and the environment variable of
// each. `createFlowServer` validates what it is given against this table; `optical-flow-server serve` reads flags and
// the environment through it; docs/service.md's table is generated from it.
import { DEFAULT_MODEL, MAX_ITERATIONS, type DeviceName } from 'torch-optical-flow';
import { is } from 'torch-optical-flow/internal';
import { DEFAULT_QUEUE_NAME } from './queue/videoJob';

/** A model the server loads at start: a model name (its recommended weights) or a model with named weights. */
export interface ServedModel {
  model: string;
  weights?: string;
}

export interface FlowServerOptions {
  /** Models loaded at start; requests choose among them (the first is the default). Default: ['raft-small']. */
  models?: (string | ServedModel)[];
  device?: DeviceName;
  /** Intra-op threads per model. */
  threads?: number;
  /** Largest `iterations` a request may ask for. */
  maxIterations?: number;
  /** Bytes of one request body (each image of a multipart request, or a whole JSON body). */
  bodyLimit?: number;
  /** Pixels of one frame (width x height). */
  maxPixels?: number;
  /** Requests queued or running per model; more are answered 503 with Retry-After. */
  queueLimit?: number;
  /** Milliseconds a flow request may take from arrival to answer; past it the answer is 504 and the inference is cancelled. */
  deadline?: number;
  /** Milliseconds that shutdown waits for in-flight requests before aborting them. */
  shutdownTimeout?: number;
  /** Redis URL of the video job queue; without it the job routes answer 501. */
  redis?: string;
  /** Directory shared with the workers: uploads/ and results/ live there. Required with `redis`. */
  sharedDir?: string;
  /** A directory whose videos may be submitted by path (jobs). Default: none (uploads only). */
  inputDir?: string;
  /** Bytes of one uploaded video. */
  maxVideoBytes?: number;
  /** BullMQ queue name (and Redis key prefix) shared with the workers. */
  queueName?: string;
  /** Fastify's (pino) logger: false, true, or pino options. Default false; the CLI logs JSON lines at info. */
  logger?: boolean | Record<string, unknown>;
}

export interface ServerSetting {
  option: keyof FlowServerOptions;
  flag: string;
  env: string;
  kind: 'integer' | 'string' | 'list';
  value: string;
  help: string;
  default?: number | string;
  min?: number;
  max?: number;
}

const MiB = 2 ** 20;

export const SERVER_SETTINGS: readonly ServerSetting[] = [
  { option: 'models', flag: 'model', env: 'OPTICAL_FLOW_MODELS', kind: 'list', value: 'M[=WEIGHTS],...', default: DEFAULT_MODEL,
    help: 'models to serve, comma-separated, each optionally with named weights (the first is the default)' },
  { option: 'maxIterations', flag: 'max-iterations', env: 'OPTICAL_FLOW_MAX_ITERATIONS', kind: 'integer', value: 'N', default: 32, min: 1, max: MAX_ITERATIONS,
    help: 'largest iterations a request may ask for' },
  { option: 'bodyLimit', flag: 'body-limit', env: 'OPTICAL_FLOW_BODY_LIMIT', kind: 'integer', value: 'BYTES', default: 32 * MiB, min: 1024, max: 2 ** 31,
    help: 'bytes of one image upload or JSON body' },
  { option: 'maxPixels', flag: 'max-pixels', env: 'OPTICAL_FLOW_MAX_PIXELS', kind: 'integer', value: 'N', default: 1280 * 720, min: 64, max: 16384 * 16384,
    help: 'pixels of one frame' },
  { option: 'queueLimit', flag: 'queue-limit', env: 'OPTICAL_FLOW_QUEUE_LIMIT', kind: 'integer', value: 'N', default: 4, min: 1, max: 10_000,
    help: 'requests queued or running per model before 503' },
  { option: 'deadline', flag: 'deadline', env: 'OPTICAL_FLOW_DEADLINE', kind: 'integer', value: 'MS', default: 30_000, min: 1, max: 3_600_000,
    help: 'milliseconds a flow request may take before 504' },
  { option: 'shutdownTimeout', flag: 'shutdown-timeout', env: 'OPTICAL_FLOW_SHUTDOWN_TIMEOUT', kind: 'integer', value: 'MS', default: 10_000, min: 0, max: 600_000,
    help: 'milliseconds shutdown waits for in-flight work' },
  { option: 'redis', flag: 'redis', env: 'OPTICAL_FLOW_REDIS', kind: 'string', value: 'URL',
    help: 'Redis URL of the video job queue (enables /v1/jobs)' },
  { option: 'sharedDir', flag: 'shared-dir', env: 'OPTICAL_FLOW_SHARED_DIR', kind: 'string', value: 'DIR',
    help: 'directory shared with the workers (uploads/, results/)' },
  { option: 'inputDir', flag: 'input-dir', env: 'OPTICAL_FLOW_INPUT_DIR', kind: 'string', value: 'DIR',
    help: 'directory whose videos jobs may name by path' },
  { option: 'maxVideoBytes', flag: 'max-video-bytes', env: 'OPTICAL_FLOW_MAX_VIDEO_BYTES', kind: 'integer', value: 'BYTES', default: 1024 * MiB, min: 1024, max: 2 ** 40,
    help: 'bytes of one uploaded video' },
  { option: 'queueName', flag: 'queue', env: 'OPTICAL_FLOW_QUEUE', kind: 'string', value: 'NAME', default: DEFAULT_QUEUE_NAME,
    help: 'BullMQ queue name shared with the workers' },
];

/** Every option resolved: defaults filled in, each value checked and named in the error when wrong. */
export interface ResolvedServerOptions {
  models: ServedModel[];
  device: DeviceName;
  threads?: number;
  maxIterations: number;
  bodyLimit: number;
  maxPixels: number;
  queueLimit: number;
  deadline: number;
  shutdownTimeout: number;
  redis?: string;
  sharedDir?: string;
  inputDir?: string;
  maxVideoBytes: number;
  queueName: string;
  logger: boolean | Record<string, unknown>;
}

const OPTION_NAMES: readonly (keyof FlowServerOptions)[] = [...SERVER_SETTINGS.map((s) => s.option), 'device', 'threads', 'logger'];

/** `model` or `model=weights`, as the flag and the environment variable write it. */
export function parseServedModel(spec: string): ServedModel {
  const at = spec.indexOf('=');
  if (at < 0) return { model: spec.trim() };
  return { model: spec.slice(0, at).trim(), weights: spec.slice(at + 1).trim() };
}

export function resolveServerOptions(options: FlowServerOptions | undefined): ResolvedServerOptions {
  const opts = is.options<FlowServerOptions>('server options', options, OPTION_NAMES);
  const integer = (name: keyof FlowServerOptions): number => {
    const setting = SERVER_SETTINGS.find((s) => s.option === name)!;
    const value = opts[name] ?? setting.default;
    return is.integer(name, value, setting.min!, setting.max!);
  };
  const text = (name: keyof FlowServerOptions): string | undefined =>
    opts[name] === undefined ? undefined : is.string(name, opts[name]);
  const list = opts.models ?? [DEFAULT_MODEL];
  if (!Array.isArray(list) || list.length === 0) throw is.typeError('models', 'a non-empty array of model names or { model, weights }', list);
  const models = list.map((entry, i) => {
    if (typeof entry === 'string') return parseServedModel(is.string(`models[${i}]`, entry));
    if (entry === null || typeof entry !== 'object') throw is.typeError(`models[${i}]`, 'a model name or { model, weights }', entry);
    const spec = is.options<ServedModel>(`models[${i}]`, entry, ['model', 'weights']);
    return { model: is.string(`models[${i}].model`, spec.model), weights: spec.weights === undefined ? undefined : is.string(`models[${i}].weights`, spec.weights) };
  });
  const redis = text('redis');
  const sharedDir = text('sharedDir');
  if (redis !== undefined && sharedDir === undefined) {
    throw is.valueError('sharedDir', 'a directory shared with the workers whenever redis is set', sharedDir);
  }
  const logger = opts.logger ?? false;
  if (typeof logger !== 'boolean' && (logger === null || typeof logger !== 'object')) throw is.typeError('logger', 'a boolean or pino options', logger);
  return {
    models,
    device: (opts.device === undefined ? 'auto' : is.string('device', opts.device)) as DeviceName,
    threads: opts.threads === undefined ? undefined : is.integer('threads', opts.threads, 1, 1024),
    maxIterations: integer('maxIterations'),
    bodyLimit: integer('bodyLimit'),
    maxPixels: integer('maxPixels'),
    queueLimit: integer('queueLimit'),
    deadline: integer('deadline'),
    shutdownTimeout: integer('shutdownTimeout'),
    redis,
    sharedDir,
    inputDir: text('inputDir'),
    maxVideoBytes: integer('maxVideoBytes'),
    queueName: text('queueName') ?? String(SERVER_SETTINGS.find((s) => s.option === 'queueName')!.default),
    logger,
  };
}
