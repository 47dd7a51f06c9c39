import * as fs from 'fs';
import { FlowError } from './FlowError';
import type { FlowEstimator } from './FlowEstimator';
import { FlowField } from './FlowField';
import { FlowStream, FlowStreamOptions } from './FlowStream';
import { MatInstance, opencv, VideoCaptureLike } from './opencv';
import * as is from './validate';

export interface VideoFlowOptions extends FlowStreamOptions {
  /** Stop after this many frames. */
  maxFrames?: number;
  /** Stops the iteration cleanly: the loop ends (no error) and the capture is released. */
  signal?: AbortSignal;
}

/** One consecutive pair of a video: `flow` goes from frame `index - 1` to frame `index` (`frame`, a BGR Mat). */
export interface VideoFlowFrame {
  index: number;
  frame: MatInstance;
  flow: FlowField;
}

const VIDEO_OPTIONS: readonly (keyof VideoFlowOptions)[] = ['iterations', 'reuseFeatures', 'warmStart', 'tolerance', 'correlation', 'maxFrames', 'signal'];

/**
 * Optical flow over a video file or camera, as an async iterable of consecutive pairs. Decoding the next frame
 * overlaps inference on the current pair; memory stays bounded (two frames and the stream's state) for any
 * length. Each frame is encoded once and each pair warm-starts from the previous flow (RAFT), unless switched off.
 */
export class VideoFlowSession implements AsyncIterable<VideoFlowFrame> {
  /** Frames per second the source reports (0 when unknown). */
  readonly fps: number;
  /** Frame count the source reports (0 for cameras or when unknown). */
  readonly frameCount: number;
  readonly width: number;
  readonly height: number;
  private readonly capture: VideoCaptureLike;
  private readonly stream: FlowStream;
  private readonly maxFrames: number;
  private readonly signal?: AbortSignal;
  private readonly source: 'file' | 'camera';
  private started = false;
  private closed = false;

  private constructor(capture: VideoCaptureLike, stream: FlowStream,
    options: { maxFrames: number; signal?: AbortSignal; source: 'file' | 'camera' }) {
    const cv = opencv();
    this.capture = capture;
    this.stream = stream;
    this.maxFrames = options.maxFrames;
    this.signal = options.signal;
    this.source = options.source;
    this.fps = capture.get(cv.CAP_PROP_FPS) || 0;
    this.frameCount = Math.max(0, Math.round(capture.get(cv.CAP_PROP_FRAME_COUNT) || 0));
    this.width = capture.get(cv.CAP_PROP_FRAME_WIDTH);
    this.height = capture.get(cv.CAP_PROP_FRAME_HEIGHT);
  }

  /** Opens a video file or a camera index for flow on `estimator`. */
  static open(estimator: FlowEstimator, source: string | number, options?: VideoFlowOptions): VideoFlowSession {
    const opts = is.options<VideoFlowOptions>('video options', options, VIDEO_OPTIONS);
    const maxFrames = opts.maxFrames === undefined ? Number.MAX_SAFE_INTEGER : is.integer('maxFrames', opts.maxFrames, 2, Number.MAX_SAFE_INTEGER);
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw is.typeError('signal', 'an AbortSignal', opts.signal);
    const { iterations, reuseFeatures, warmStart, tolerance, correlation } = opts;
    let capture: VideoCaptureLike;
    if (typeof source === 'string') {
      if (!fs.existsSync(source)) throw new FlowError('ERR_VIDEO', `video file '${source}' does not exist`);
      capture = VideoFlowSession.capture(source);
    } else if (typeof source === 'number' && Number.isInteger(source) && source >= 0) {
      capture = VideoFlowSession.capture(source);
    } else {
      throw is.typeError('source', 'a video file path or a camera index', source);
    }
    const stream = estimator.stream({ iterations, reuseFeatures, warmStart, tolerance, correlation });
    return new VideoFlowSession(capture, stream, { maxFrames, signal: opts.signal, source: typeof source === 'string' ? 'file' : 'camera' });
  }

  private static capture(source: string | number): VideoCaptureLike {
    const cv = opencv();
    try {
      return new cv.VideoCapture(source);
    } catch {
      throw new FlowError('ERR_VIDEO', typeof source === 'number'
        ? `cannot open camera ${source}` : `cannot open video '${source}' (OpenCV cannot decode it)`);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<VideoFlowFrame> {
    if (this.started) throw new FlowError('ERR_VIDEO', 'a VideoFlowSession can be iterated only once');
    this.started = true;
    try {
      let index = 0;
      let current = await this.read();
      if (!current) throw new FlowError('ERR_VIDEO', 'no frame could be decoded from the source (empty or corrupt video)');
      await this.stream.push(current);
      while (index + 1 < this.maxFrames && !this.signal?.aborted) {
        const next = await this.read();
        if (!next) {
          this.checkComplete(index + 1);
          break;
        }
        index++;
        // Decode of the frame after this one starts while this pair is inferred.
        const pending = this.stream.push(next);
        const flow = await pending;
        current = next;
        if (!flow) throw new FlowError('ERR_INFERENCE', 'the stream returned no flow for a consecutive pair');
        yield { index, frame: current, flow };
      }
    } finally {
      await this.close();
    }
  }

  /**
   * A file that ends well before the length its container announces is truncated or corrupt: that is an error,
   * not a silent end (the pairs before it have been yielded). A frame or two of slack, or 1% of long videos,
   * allows for containers whose counts are estimates.
   */
  private checkComplete(framesRead: number): void {
    if (this.frameCount <= 0 || this.source === 'camera') return;
    const slack = Math.max(2, Math.ceil(this.frameCount / 100));
    if (framesRead + slack < this.frameCount) {
      throw new FlowError('ERR_VIDEO', `the video ended after ${framesRead} of the ${this.frameCount} frames its container ` +
        'announces (truncated or corrupt file)');
    }
  }

  private prefetched: Promise<MatInstance | null> | undefined;

  private async read(): Promise<MatInstance | null> {
    const decode = async () => {
      if (this.closed) return null;
      const mat = await this.capture.readAsync();
      return mat.empty || mat.rows === 0 ? null : mat;
    };
    const frame = await (this.prefetched ?? decode());
    this.prefetched = frame ? decode() : undefined;
    this.prefetched?.catch(() => undefined);
    return frame;
  }

  /** Releases the capture and the stream's state; the iteration ends. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.prefetched?.catch(() => undefined);
    this.prefetched = undefined;
    this.capture.release();
    await this.stream.close();
  }
}
