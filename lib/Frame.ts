import { FlowError } from './FlowError';
import { rangeError, typeError, valueError } from './validate';

/** Channel layouts a plain image may use. */
export type PixelFormat = 'rgb' | 'bgr' | 'rgba' | 'bgra' | 'gray';

/**
 * A frame given as plain pixels: row-major, channels interleaved, tightly packed. `uint8` data is 0..255;
 * `Float32Array` data is also on the 0..255 scale.
 */
export interface ImageLike {
  data: Uint8Array | Uint8ClampedArray | Float32Array;
  width: number;
  height: number;
  /** 1, 3 or 4; inferred from the data length when omitted. */
  channels?: number;
  /** Defaults to 'gray', 'rgb' or 'rgba' by channel count. */
  format?: PixelFormat;
}

/** The parts of an opencv4nodejs `Mat` this library reads (BGR order, as OpenCV uses). */
export interface MatLike {
  rows: number;
  cols: number;
  channels: number;
  type: number;
  getData(): Buffer;
}

export type FrameInput = ImageLike | MatLike;

/** A frame normalised for the addon: the pixels are copied there, on the JS thread, before queueing. */
export interface NativeFrame {
  data: Uint8Array | Uint8ClampedArray | Float32Array;
  width: number;
  height: number;
  channels: number;
  type: 'uint8' | 'float32';
  order: PixelFormat;
}

const FORMAT_CHANNELS: Record<PixelFormat, number> = { rgb: 3, bgr: 3, rgba: 4, bgra: 4, gray: 1 };
const DEFAULT_FORMAT: Record<number, PixelFormat> = { 1: 'gray', 3: 'rgb', 4: 'rgba' };
const CV_8U = 0;
const CV_32F = 5;
const MAX_SIDE = 16384;

function isMatLike(value: object): value is MatLike {
  const v = value as Partial<MatLike>;
  return typeof v.rows === 'number' && typeof v.cols === 'number' && typeof v.getData === 'function';
}

function dimension(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw typeError(name, 'an integer', value);
  if (value < 1 || value > MAX_SIDE) throw rangeError(name, `an integer between 1 and ${MAX_SIDE}`, value);
  return value;
}

/**
 * A Mat's pixels. A region of interest of a larger Mat is not continuous, and opencv4nodejs refuses to hand out its
 * data: a continuous copy of it is read instead. Whatever the Mat throws (OpenCV throws strings) becomes a coded error.
 */
function matBytes(name: string, mat: MatLike): Uint8Array {
  const read = (source: MatLike) => {
    const bytes = source.getData();
    if (!(bytes instanceof Uint8Array)) throw new Error(`getData() returned ${typeof bytes}, not a Buffer`);
    return bytes;
  };
  try {
    return read(mat);
  } catch (first) {
    const copy = (mat as MatLike & { copy?: () => MatLike }).copy;
    if (typeof copy === 'function') {
      try {
        return read(copy.call(mat));
      } catch { /* fall through to the first error, which says what was wrong */ }
    }
    throw valueError(name, 'a Mat whose pixels can be read', first instanceof Error ? first.message : String(first));
  }
}

function fromMat(name: string, mat: MatLike): NativeFrame {
  if (mat.rows === 0 || mat.cols === 0) {
    throw new FlowError('ERR_INPUT_SIZE', `${name} is an empty Mat (${mat.cols}x${mat.rows})`);
  }
  const height = dimension(`${name}.rows`, mat.rows);
  const width = dimension(`${name}.cols`, mat.cols);
  const channels = mat.channels;
  const depth = mat.type & 7;
  if (depth !== CV_8U && depth !== CV_32F) {
    throw valueError(`${name}.type`, 'a Mat of depth CV_8U or CV_32F', `type ${mat.type} (depth ${depth})`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw valueError(`${name}.channels`, '1, 3 or 4 channels', channels);
  }
  const buffer = matBytes(name, mat);
  const expected = width * height * channels * (depth === CV_8U ? 1 : 4);
  if (buffer.byteLength !== expected) {
    throw new FlowError('ERR_INPUT_SIZE', `${name} holds ${buffer.byteLength} bytes of pixels, but ${width}x${height} ` +
      `with ${channels} channel(s) of ${depth === CV_8U ? 'CV_8U' : 'CV_32F'} needs ${expected}`);
  }
  const data = depth === CV_8U
    ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
    : new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
  const order: PixelFormat = channels === 1 ? 'gray' : channels === 3 ? 'bgr' : 'bgra';
  return check(name, { data, width, height, channels, type: depth === CV_8U ? 'uint8' : 'float32', order });
}

function fromImage(name: string, image: ImageLike): NativeFrame {
  let { data } = image;
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray || data instanceof Float32Array)) {
    throw typeError(`${name}.data`, 'a Uint8Array, Uint8ClampedArray, Buffer or Float32Array', data);
  }
  // Memory shared with other threads may change while the addon copies it: take a private copy first.
  if (data.buffer instanceof SharedArrayBuffer) data = data instanceof Float32Array ? new Float32Array(data) : new Uint8Array(data);
  const width = dimension(`${name}.width`, image.width);
  const height = dimension(`${name}.height`, image.height);
  let channels = image.channels;
  if (channels === undefined) {
    channels = data.length / (width * height);
    if (!Number.isInteger(channels) || !(channels in DEFAULT_FORMAT)) {
      throw new FlowError('ERR_INPUT_SIZE',
        `${name}.data has ${data.length} values, which is not ${width}x${height} pixels of 1, 3 or 4 channels`);
    }
  } else if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw valueError(`${name}.channels`, '1, 3 or 4', channels);
  }
  const format = image.format ?? DEFAULT_FORMAT[channels];
  if (typeof format !== 'string' || !(format in FORMAT_CHANNELS)) {
    throw valueError(`${name}.format`, "one of 'rgb', 'bgr', 'rgba', 'bgra', 'gray'", format);
  }
  if (FORMAT_CHANNELS[format] !== channels) {
    throw valueError(`${name}.format`, `a format with ${channels} channel(s)`, format);
  }
  return check(name, { data, width, height, channels, type: data instanceof Float32Array ? 'float32' : 'uint8', order: format });
}

function check(name: string, frame: NativeFrame): NativeFrame {
  const expected = frame.width * frame.height * frame.channels;
  if (frame.data.length !== expected) {
    throw new FlowError('ERR_INPUT_SIZE', `${name}.data has ${frame.data.length} values but ` +
      `${frame.width}x${frame.height}x${frame.channels} needs ${expected}`);
  }
  if (frame.type === 'float32') {
    const values = frame.data;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!(v >= -1e6 && v <= 1e6)) throw rangeError(`${name}.data[${i}]`, 'a finite pixel value (0..255)', v);
    }
  }
  return frame;
}

/** Validates a frame argument and describes it for the addon, without copying or changing the caller's data. */
export function toNativeFrame(name: string, value: unknown): NativeFrame {
  if (value === null || typeof value !== 'object') {
    throw typeError(name, 'an image ({ data, width, height }) or an OpenCV Mat', value);
  }
  if (isMatLike(value)) return fromMat(name, value);
  if ('data' in value && 'width' in value && 'height' in value) return fromImage(name, value as ImageLike);
  throw typeError(name, 'an image ({ data, width, height }) or an OpenCV Mat', value);
}
