import * as os from 'os';
import { native, NativeFlowModel, NativeLoadResult, Precision } from './binding';
import { captureCallerStack, FlowError } from './FlowError';
import { FlowField } from './FlowField';
import { FrameInput, toNativeFrame } from './Frame';
import { FlowStream, FlowStreamOptions } from './FlowStream';
import { CORRELATION_MODES, CorrelationMode, correlatesOnTheFly, defaultMemoryLimit, estimateRequestMemory, formatBytes } from './memory';
import { MAX_ITERATIONS } from './models';
import * as is from './validate';
import type { DownloadProgress } from './weights/download';
import { resolveWeights, type WeightsInfo } from './weights/resolveWeights';
import { WeightsStore } from './weights/WeightsStore';

export type DeviceName = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export interface LoadOptions {
  /**
   * A model name ('raft-small', 'raft', 'flownets', 'flownetc', or another architecture of `architectures()`) or a
   * path to an export. Default: the model of the named `weights`, else 'raft-small'.
   */
  model?: string;
  /** Default 'auto': CUDA when LibTorch sees a device, else the CPU. */
  device?: DeviceName;
  /** Intra-op threads for this model's inference. Default: the number of CPUs. */
  threads?: number;
  /**
   * 'bfloat16' runs RAFT's networks (encoders, update operator, upsampling mask) in bfloat16 while coordinates, the
   * correlation and its lookups stay in float32: faster on CPUs with native bfloat16 (AVX512-BF16, AMX), slower on
   * others, and within a few thousandths of a pixel of float32 in mean EPE on the shared samples (see
   * docs/performance.md). RAFT exports only. Default 'float32'.
   */
  precision?: Precision;
  /**
   * Which weights: a published name (`'things'`, `'authors:raft-things'`, `'torchvision:raft_large_C_T_SKHT_V2'`;
   * see `weightsCatalogue()`), downloaded once, verified and cached; a path to a checkpoint (the authors',
   * torchvision's, FlowNetPytorch's, ptlflow's or a plain state dict); or `'random'`. Default: the model's
   * recommended published weights (for 'raft-small', torchvision's `raft_small_C_T_V2`, downloaded on first use;
   * `'bundled'` names the weights this project trained, which ship inside the package and need no network).
   * Random weights are never loaded unless asked for.
   */
  weights?: string;
  /** Where downloaded weights are cached. Default: `$OPTICAL_FLOW_HOME`, else `~/.cache/optical-flow` (XDG). */
  cacheDir?: string;
  /** Never download: weights must be in the cache. Default: `$OPTICAL_FLOW_OFFLINE`. */
  offline?: boolean;
  /** A base URL serving the weights files under their file names. Default: `$OPTICAL_FLOW_MIRROR`. */
  mirror?: string;
  /** Milliseconds a download may go without progress. Default 30000. */
  downloadTimeout?: number;
  /** Called as a download progresses. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborts a download (or the wait for another process's) with ERR_ABORTED. */
  signal?: AbortSignal;
  /** Requests queued or running on this model at once; more are refused with ERR_QUEUE_FULL. Default 64. */
  queueLimit?: number;
  /**
   * Bytes one request may need beyond the loaded model, as estimated from the frame size before anything is
   * allocated; larger frames are refused with ERR_INPUT_SIZE. Default: half of this machine's memory.
   */
  memoryLimit?: number;
}

export interface EstimateOptions {
  /** Refinement iterations (RAFT); with `tolerance`, the most. Default: the model's own default. */
  iterations?: number;
  /**
   * Stop refining once an iteration moves the flow by less than this many pixels on average (RAFT only).
   * Default: none, always `iterations`. `field.iterations` says how many ran.
   */
  tolerance?: number;
  /**
   * How RAFT correlates the two frames: 'all-pairs' builds the volume of every pair of positions once (fastest for
   * small frames; its memory grows with the square of the frame's area, 4.2 GB at 1080p); 'on-the-fly' computes
   * each lookup window from the features (the same flow to about 1e-5 px, in memory linear in the area). Default
   * 'auto': all-pairs while the volume stays under 512 MB (below about 1280x720), on the fly above.
   */
  correlation?: CorrelationMode;
  /** Aborting rejects the request with ERR_ABORTED; a request that has not started is dropped from the queue. */
  signal?: AbortSignal;
}

/** What a model export says about itself (its embedded metadata). */
export interface ModelInfo {
  name: string;
  arch: string;
  family: string;
  stride: number;
  minSize: number;
  defaultIterations: number;
  acceptsFlowInit: boolean;
  trainedOn: string;
  weightsSource: string;
  /** The weights the model runs with: name, origin, checksum, training data, licence, published metrics. */
  weights: WeightsInfo;
  /** FlowNet's scale between network output and pixels (from the weights file when it has one). */
  divFlow?: number;
  /** Every metadata field, as exported. */
  raw: Record<string, unknown>;
}

const LOAD_OPTIONS: readonly (keyof LoadOptions)[] = ['model', 'device', 'threads', 'precision', 'weights', 'queueLimit', 'memoryLimit',
  'cacheDir', 'offline', 'mirror', 'downloadTimeout', 'onProgress', 'signal'];
const ESTIMATE_OPTIONS: readonly (keyof EstimateOptions)[] = ['iterations', 'tolerance', 'correlation', 'signal'];
const DEVICE_PATTERN = /^(auto|cpu|cuda|cuda:\d{1,4})$/;
const PRECISIONS: readonly Precision[] = ['float32', 'bfloat16'];
/** Below this the 1/8-resolution networks have no pixel of their own to describe. */
export const MIN_FRAME_SIDE = 8;

/** The export's description (its JSON metadata), with the properties the addon read and checked from it. */
function modelInfo(loaded: NativeLoadResult, file: string, weights: WeightsInfo): ModelInfo {
  const json = loaded.metadata;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw new FlowError('ERR_MODEL_LOAD', `model file '${file}' has unreadable metadata`);
  }
  const str = (key: string, fallback: string) => (typeof raw[key] === 'string' ? raw[key] as string : fallback);
  // Weights inside the export (the bundled trained model, or an export given by path) are described by it: what
  // they were trained on and the figures measured when it was made.
  if (weights.source === 'export' || weights.source === 'project') {
    weights.trainedOn = str('trained_on', weights.trainedOn);
    if (typeof raw.metrics === 'object' && raw.metrics !== null) weights.metrics = raw.metrics as WeightsInfo['metrics'];
  }
  return {
    name: str('name', 'unnamed'),
    arch: str('arch', 'unknown'),
    family: str('family', 'unknown'),
    stride: loaded.stride,
    minSize: loaded.minSize,
    defaultIterations: loaded.defaultIterations,
    acceptsFlowInit: raw.accepts_flow_init === true,
    trainedOn: weights.trainedOn,
    weightsSource: weights.source === 'export' ? str('weights_source', 'unknown') : weights.name,
    weights,
    raw,
  };
}

/** Optical flow between two frames with a TorchScript model, run on the model's own worker thread. */
export class FlowEstimator {
  /** The export's metadata. */
  readonly info: ModelInfo;
  /** The device the model runs on, e.g. 'cpu' or 'cuda:0'. */
  readonly device: string;
  /** The networks' arithmetic (the `precision` option). */
  readonly precision: Precision;
  /** Names of the tensors a `weights` file replaced (empty when none was given). */
  readonly weightsLoaded: readonly string[];
  /** Bytes one request may need beyond the loaded model (the `memoryLimit` option). */
  readonly memoryLimit: number;
  private readonly model: NativeFlowModel;
  private disposing: Promise<void> | undefined;

  private constructor(model: NativeFlowModel, info: ModelInfo, loaded: NativeLoadResult, memoryLimit: number) {
    this.model = model;
    this.memoryLimit = memoryLimit;
    this.info = info;
    this.device = loaded.device;
    this.precision = loaded.precision;
    this.weightsLoaded = loaded.weightsLoaded;
  }

  /** Loads a model; the file is read on the model's worker thread, not the event loop. */
  static async load(options: LoadOptions = {}): Promise<FlowEstimator> {
    const stack = captureCallerStack(FlowEstimator.load);
    const opts = is.options<LoadOptions>('load options', options, LOAD_OPTIONS);
    const model = opts.model === undefined ? undefined : is.string('model', opts.model);
    const weights = opts.weights === undefined ? undefined : is.string('weights', opts.weights);
    const device = opts.device === undefined ? 'auto' : is.string('device', opts.device);
    if (!DEVICE_PATTERN.test(device)) throw is.valueError('device', "'auto', 'cpu', 'cuda' or 'cuda:N'", device);
    const threads = opts.threads === undefined ? os.availableParallelism() : is.integer('threads', opts.threads, 1, 1024);
    const precision = opts.precision === undefined ? 'float32' : is.string('precision', opts.precision) as Precision;
    if (!PRECISIONS.includes(precision)) throw is.valueError('precision', "'float32' or 'bfloat16'", precision);
    const queueLimit = opts.queueLimit === undefined ? 64 : is.integer('queueLimit', opts.queueLimit, 1, 1_000_000);
    const memoryLimit = opts.memoryLimit === undefined ? defaultMemoryLimit()
      : is.integer('memoryLimit', opts.memoryLimit, 64 * 2 ** 20, Number.MAX_SAFE_INTEGER);
    const downloadTimeout = opts.downloadTimeout === undefined ? undefined : is.integer('downloadTimeout', opts.downloadTimeout, 1, 3_600_000);
    const store = new WeightsStore({
      cacheDir: opts.cacheDir, offline: opts.offline, mirror: opts.mirror, timeout: downloadTimeout,
      onProgress: opts.onProgress, signal: opts.signal,
    });
    const plan = await resolveWeights(model, weights, store);
    const nativeModel = new (native().FlowModel)(queueLimit);
    try {
      const loaded = await nativeModel.load({
        modelPath: plan.modelPath, weightsPath: plan.weightsPath, keyFormats: plan.keyFormats,
        randomSeed: plan.randomSeed, inputBgr: plan.inputBgr, device, threads, precision,
      });
      if (loaded.weightsFormat !== undefined) plan.weights.keyFormat = loaded.weightsFormat;
      const info = modelInfo(loaded, plan.modelPath, plan.weights);
      if (loaded.divFlow !== undefined) info.divFlow = loaded.divFlow;
      return new FlowEstimator(nativeModel, info, loaded, memoryLimit);
    } catch (error) {
      await nativeModel.dispose();
      throw error instanceof FlowError ? error : FlowError.fromNative(error, stack);
    }
  }

  /** True once `dispose()` has been called. */
  get disposed(): boolean {
    return this.disposing !== undefined;
  }

  /** Requests queued or running. */
  get pending(): number {
    return this.model.pending;
  }

  /**
   * The flow from `frameA` to `frameB` (where each pixel of A moved to in B), at the frames' size.
   * Frames are copied before this returns, so the caller may reuse their buffers at once.
   */
  estimate(frameA: FrameInput, frameB: FrameInput, options?: EstimateOptions): Promise<FlowField> {
    const stack = captureCallerStack(this.estimate);
    try {
      return this.start(frameA, frameB, options, stack);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private start(frameA: FrameInput, frameB: FrameInput, options: EstimateOptions | undefined,
    stack: string | undefined): Promise<FlowField> {
    if (this.disposing) throw new FlowError('ERR_DISPOSED', 'estimate() was called after dispose()');
    const opts = is.options<EstimateOptions>('estimate options', options, ESTIMATE_OPTIONS);
    const iterations = opts.iterations === undefined
      ? this.info.defaultIterations : is.integer('iterations', opts.iterations, 1, MAX_ITERATIONS);
    const tolerance = this.tolerance(opts.tolerance);
    const correlation = this.correlation(opts.correlation);
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw is.typeError('signal', 'an AbortSignal', signal);
    const a = toNativeFrame('frameA', frameA);
    const b = toNativeFrame('frameB', frameB);
    if (a.width !== b.width || a.height !== b.height) {
      throw new FlowError('ERR_INPUT_SIZE', `frameA is ${a.width}x${a.height} but frameB is ${b.width}x${b.height}; both frames must have the same size`);
    }
    if (a.width < MIN_FRAME_SIDE || a.height < MIN_FRAME_SIDE) {
      throw new FlowError('ERR_INPUT_SIZE', `frames are ${a.width}x${a.height}; the smallest this model takes is ${MIN_FRAME_SIDE}x${MIN_FRAME_SIDE}`);
    }
    const onTheFly = this.plan(a.width, a.height, correlation);
    if (signal?.aborted) throw new FlowError('ERR_ABORTED', 'the request was aborted before it was queued');

    const request = this.model.estimate({ frameA: a, frameB: b, refinement: { iterations, tolerance, onTheFly } });
    const result = request.promise.then(
      (flow) => new FlowField(flow.width, flow.height, flow.data, flow.iterations),
      (error) => { throw FlowError.fromNative(error, stack); },
    );
    if (!signal) return result;
    return new Promise<FlowField>((resolve, reject) => {
      const onAbort = () => {
        // Dropped from the queue if it has not started; otherwise its result is discarded when it arrives.
        this.model.cancel(request.id);
        reject(FlowError.fromNative({ code: 'ERR_ABORTED', message: 'the request was aborted' }, stack));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      result.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /**
   * A stream of consecutive video frames on this model: `push(frame)` resolves to the flow from the previous
   * frame (null for the first), encoding each frame once and warm-starting from the previous flow (RAFT).
   */
  stream(options?: FlowStreamOptions): FlowStream {
    if (this.disposing) throw new FlowError('ERR_DISPOSED', 'stream() was called after dispose()');
    const opts = FlowStream.options(options, this.info.defaultIterations);
    const correlation = this.correlation(opts.correlation);
    return new FlowStream(this.model, FlowEstimator.nextStream++, opts.iterations, opts.reuseFeatures, opts.warmStart,
      this.tolerance(opts.tolerance), () => this.disposed, (width, height) => this.plan(width, height, correlation));
  }

  /** A `tolerance` option checked against this model (0 when not given). */
  private tolerance(value: unknown): number {
    if (value === undefined) return 0;
    const tolerance = is.positive('tolerance', value, 100);
    if (this.info.family !== 'raft') {
      throw is.valueError('tolerance', `no tolerance on ${this.info.name} (only RAFT models refine iteratively)`, value);
    }
    return tolerance;
  }

  /** Bytes a W x H pair is estimated to need beyond the loaded model, the figure held against `memoryLimit`. */
  memoryNeeded(width: number, height: number, correlation: CorrelationMode = 'auto'): number {
    return estimateRequestMemory(this.info, width, height, correlatesOnTheFly(this.info, width, height, correlation)).total;
  }

  /** A `correlation` option checked against this model ('auto' when not given). */
  private correlation(value: unknown): CorrelationMode {
    if (value === undefined) return 'auto';
    if (typeof value !== 'string' || !(CORRELATION_MODES as readonly string[]).includes(value)) {
      throw is.valueError('correlation', "'auto', 'all-pairs' or 'on-the-fly'", value);
    }
    if (value === 'on-the-fly' && this.info.family !== 'raft') {
      throw is.valueError('correlation', `'auto' or 'all-pairs' on ${this.info.name} (only RAFT models look correlations up)`, value);
    }
    return value as CorrelationMode;
  }

  /**
   * Whether a frame size computes its correlation on the fly; refuses one whose estimated memory is over this
   * model's limit, before anything is allocated.
   */
  private plan(width: number, height: number, correlation: CorrelationMode): boolean {
    const onTheFly = correlatesOnTheFly(this.info, width, height, correlation);
    const needed = estimateRequestMemory(this.info, width, height, onTheFly);
    if (needed.total > this.memoryLimit) {
      const volume = needed.correlation ? ` (all-pairs correlation ${formatBytes(needed.correlation)})` : '';
      throw new FlowError('ERR_INPUT_SIZE', `a ${width}x${height} pair on ${this.info.name} needs about ` +
        `${formatBytes(needed.total)}${volume}, over this model's memoryLimit of ${formatBytes(this.memoryLimit)}: ` +
        `use smaller frames${needed.correlation ? ", correlation 'on-the-fly'" : ''}, or raise memoryLimit`);
    }
    return onTheFly;
  }

  private static nextStream = 1;

  /**
   * Frees the model. Requests that have not started reject with ERR_DISPOSED; the one running finishes first.
   * Safe to call more than once.
   */
  dispose(): Promise<void> {
    if (!this.disposing) this.disposing = this.model.dispose();
    return this.disposing;
  }
}
