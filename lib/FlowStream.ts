import type { NativeFlowModel } from './binding';
import { captureCallerStack, FlowError } from './FlowError';
import { FlowField } from './FlowField';
import { FrameInput, toNativeFrame } from './Frame';
import type { CorrelationMode } from './memory';
import { MAX_ITERATIONS } from './models';
import * as is from './validate';

export interface FlowStreamOptions {
  /** Refinement iterations per pair. Default: the model's. */
  iterations?: number;
  /** Encode each frame once; its features serve both pairs it belongs to (RAFT). Default true. */
  reuseFeatures?: boolean;
  /** Start each pair's refinement from the previous flow carried forward (RAFT). Default true. */
  warmStart?: boolean;
  /** Stop refining a pair once an iteration moves its flow by less than this many pixels on average (RAFT). */
  tolerance?: number;
  /** RAFT's correlation: 'all-pairs', 'on-the-fly' or 'auto' (by frame size), as for `estimate()`. Default 'auto'. */
  correlation?: CorrelationMode;
}

export const STREAM_OPTIONS: readonly (keyof FlowStreamOptions)[] = ['iterations', 'reuseFeatures', 'warmStart', 'tolerance', 'correlation'];

/**
 * Consecutive frames of one video on one model: each `push` yields the flow from the previous frame to this
 * one (null for the first). The worker keeps the previous frame's features and flow, so a video costs less
 * than independent pairs. Create with `FlowEstimator.stream()`.
 */
export class FlowStream {
  private closed = false;
  private frames = 0;

  /** @internal */
  constructor(private readonly model: NativeFlowModel, private readonly id: number,
    private readonly iterations: number, private readonly reuseFeatures: boolean, private readonly warmStart: boolean,
    private readonly tolerance: number, private readonly isDisposed: () => boolean,
    /** Checks a frame size against the model's memory limit; says whether it correlates on the fly. */
    private readonly plan: (width: number, height: number) => boolean) {}

  /** Frames pushed so far. */
  get length(): number {
    return this.frames;
  }

  push(frame: FrameInput): Promise<FlowField | null> {
    const stack = captureCallerStack(this.push);
    try {
      if (this.closed) throw new FlowError('ERR_DISPOSED', 'push() was called after the stream was closed');
      if (this.isDisposed()) throw new FlowError('ERR_DISPOSED', 'push() was called after the model was disposed');
      const native = toNativeFrame(`frame ${this.frames}`, frame);
      const onTheFly = this.plan(native.width, native.height);
      const request = this.model.streamStep({
        stream: this.id, frame: native, refinement: { iterations: this.iterations, tolerance: this.tolerance, onTheFly },
        reuseFeatures: this.reuseFeatures, warmStart: this.warmStart,
      });
      this.frames++;
      return request.promise.then(
        (flow) => (flow ? new FlowField(flow.width, flow.height, flow.data, flow.iterations) : null),
        (error) => { throw FlowError.fromNative(error, stack); },
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Frees what the worker kept for this stream. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.isDisposed()) await this.model.streamEnd(this.id).catch(() => undefined);
  }

  /** @internal */
  static options(options: unknown, defaultIterations: number): Required<Omit<FlowStreamOptions, 'tolerance' | 'correlation'>> & Pick<FlowStreamOptions, 'tolerance' | 'correlation'> {
    const opts = is.options<FlowStreamOptions>('stream options', options, STREAM_OPTIONS);
    const flag = (name: 'reuseFeatures' | 'warmStart') => {
      const value = opts[name];
      if (value !== undefined && typeof value !== 'boolean') throw is.typeError(name, 'a boolean', value);
      return value ?? true;
    };
    return {
      iterations: opts.iterations === undefined ? defaultIterations : is.integer('iterations', opts.iterations, 1, MAX_ITERATIONS),
      reuseFeatures: flag('reuseFeatures'),
      warmStart: flag('warmStart'),
      tolerance: opts.tolerance,
      correlation: opts.correlation,
    };
  }
}
