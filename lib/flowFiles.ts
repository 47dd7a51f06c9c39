// Flow files: Middlebury .flo and KITTI's 16-bit PNG, read and written without native dependencies.
import * as fs from 'fs';
import * as zlib from 'zlib';
import { FlowError } from './FlowError';
import { FlowField } from './FlowField';

const FLO_MAGIC = 202021.25;
/** .flo values above this mean "unknown" (Middlebury's convention). */
export const UNKNOWN_FLOW_THRESHOLD = 1e9;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function decodeFlo(bytes: Uint8Array, name = '.flo data'): FlowField {
  if (bytes.byteLength < 12) throw new FlowError('ERR_INPUT_SIZE', `${name} is too short to be a .flo file (${bytes.byteLength} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getFloat32(0, true);
  if (magic !== FLO_MAGIC) throw new FlowError('ERR_INPUT_SIZE', `${name} is not a .flo file (magic number ${magic}, expected ${FLO_MAGIC})`);
  const width = view.getInt32(4, true);
  const height = view.getInt32(8, true);
  if (width < 1 || height < 1 || width > 100_000 || height > 100_000) {
    throw new FlowError('ERR_INPUT_SIZE', `${name} declares an impossible size ${width}x${height}`);
  }
  const expected = 12 + width * height * 8;
  if (bytes.byteLength < expected) {
    throw new FlowError('ERR_INPUT_SIZE', `${name} is truncated: ${width}x${height} needs ${expected} bytes, found ${bytes.byteLength}`);
  }
  const data = new Float32Array(width * height * 2);
  for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(12 + 4 * i, true);
  return new FlowField(width, height, data);
}

export function encodeFlo(flow: FlowField): Buffer {
  const out = Buffer.alloc(12 + flow.data.length * 4);
  out.writeFloatLE(FLO_MAGIC, 0);
  out.writeInt32LE(flow.width, 4);
  out.writeInt32LE(flow.height, 8);
  for (let i = 0; i < flow.data.length; i++) out.writeFloatLE(flow.data[i], 12 + 4 * i);
  return out;
}

export function readFlo(file: string): FlowField {
  return decodeFlo(fs.readFileSync(file), `'${file}'`);
}

export function writeFlo(file: string, flow: FlowField): void {
  fs.writeFileSync(file, encodeFlo(flow));
}

/** A flow with a per-pixel validity mask, as KITTI stores it. */
export interface MaskedFlow {
  flow: FlowField;
  /** 1 where the flow is known, 0 elsewhere. */
  valid: Uint8Array;
}

function crc32(bytes: Uint8Array): number {
  let crc = ~0;
  for (let i = 0; i < bytes.length; i++) {
    crc ^= bytes[i];
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function chunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

/** Encodes an RGB or RGBA PNG of 8 or 16 bits per channel (rows unfiltered). */
export function encodePng(width: number, height: number, channels: 3 | 4, depth: 8 | 16, samples: ArrayLike<number>): Buffer {
  const bytesPerSample = depth / 8;
  const stride = width * channels * bytesPerSample;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    let o = y * (stride + 1) + 1;
    for (let i = y * width * channels; i < (y + 1) * width * channels; i++) {
      if (depth === 16) { raw.writeUInt16BE(samples[i], o); o += 2; } else raw[o++] = samples[i];
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = depth;
  header[9] = channels === 3 ? 2 : 6;
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', header), chunk('IDAT', zlib.deflateSync(raw, { level: 6 })),
    chunk('IEND', Buffer.alloc(0))]);
}

/** Decodes a non-interlaced RGB/RGBA/gray PNG of 8 or 16 bits per channel into samples. */
export function decodePng(bytes: Buffer, name = 'PNG data'): { width: number; height: number; channels: number; depth: number; samples: Uint16Array } {
  if (bytes.length < 8 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new FlowError('ERR_INPUT_SIZE', `${name} is not a PNG file`);
  let pos = 8;
  let width = 0, height = 0, depth = 0, colour = -1, interlace = 0;
  const idat: Buffer[] = [];
  while (pos + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(pos);
    const type = bytes.toString('ascii', pos + 4, pos + 8);
    const body = bytes.subarray(pos + 8, pos + 8 + length);
    if (body.length < length) throw new FlowError('ERR_INPUT_SIZE', `${name} is truncated`);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0); height = body.readUInt32BE(4); depth = body[8]; colour = body[9]; interlace = body[12];
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    pos += 12 + length;
  }
  const channels = ({ 0: 1, 2: 3, 6: 4 } as Record<number, number>)[colour];
  if (!channels || (depth !== 8 && depth !== 16) || interlace !== 0) {
    throw new FlowError('ERR_INPUT_SIZE', `${name}: only non-interlaced gray, RGB or RGBA PNGs of 8 or 16 bits are supported (colour type ${colour}, depth ${depth})`);
  }
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat));
  } catch (error) {
    throw new FlowError('ERR_INPUT_SIZE', `${name} has corrupt image data (${(error as Error).message})`);
  }
  const bpp = channels * depth / 8;
  const stride = width * bpp;
  if (raw.length < (stride + 1) * height) throw new FlowError('ERR_INPUT_SIZE', `${name} is truncated`);
  const rows = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = rows.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      let v = line[i];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[i] = v & 0xff;
    }
  }
  const samples = new Uint16Array(width * height * channels);
  for (let i = 0; i < samples.length; i++) samples[i] = depth === 16 ? rows.readUInt16BE(2 * i) : rows[i];
  return { width, height, channels, depth, samples };
}

/** KITTI flow PNG: 16-bit RGB, u = (R - 2^15) / 64, v = (G - 2^15) / 64, B = 1 where valid. */
export function readKittiFlow(file: string): MaskedFlow {
  const png = decodePng(fs.readFileSync(file), `'${file}'`);
  if (png.depth !== 16 || png.channels !== 3) {
    throw new FlowError('ERR_INPUT_SIZE', `'${file}' is not a KITTI flow PNG (needs 16-bit RGB, found ${png.depth}-bit with ${png.channels} channels)`);
  }
  const n = png.width * png.height;
  const data = new Float32Array(2 * n);
  const valid = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    valid[i] = png.samples[3 * i + 2] > 0 ? 1 : 0;
    data[2 * i] = valid[i] ? (png.samples[3 * i] - 32768) / 64 : 0;
    data[2 * i + 1] = valid[i] ? (png.samples[3 * i + 1] - 32768) / 64 : 0;
  }
  return { flow: new FlowField(png.width, png.height, data), valid };
}

export function writeKittiFlow(file: string, flow: FlowField, valid?: Uint8Array): void {
  const n = flow.width * flow.height;
  const samples = new Uint16Array(3 * n);
  const encode = (v: number) => Math.min(65535, Math.max(0, Math.round(v * 64 + 32768)));
  for (let i = 0; i < n; i++) {
    const ok = (valid ? valid[i] > 0 : true) && Math.abs(flow.data[2 * i]) < UNKNOWN_FLOW_THRESHOLD;
    samples[3 * i] = ok ? encode(flow.data[2 * i]) : 0;
    samples[3 * i + 1] = ok ? encode(flow.data[2 * i + 1]) : 0;
    samples[3 * i + 2] = ok ? 1 : 0;
  }
  fs.writeFileSync(file, encodePng(flow.width, flow.height, 3, 16, samples));
}
