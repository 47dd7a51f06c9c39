// Flow files: Middlebury .flo, and KITTI's 16-bit PNG on top of pngjs; no native dependency.
import * as fs from 'fs';
import * as os from 'os';
import { PNG } from 'pngjs';
import { FlowError } from './FlowError';
import { FlowField } from './FlowField';

const FLO_MAGIC = 202021.25;
/** .flo values above this mean "unknown" (Middlebury's convention). */
export const UNKNOWN_FLOW_THRESHOLD = 1e9;

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
  if (os.endianness() === 'LE') {
    out.set(new Uint8Array(flow.data.buffer, flow.data.byteOffset, flow.data.byteLength), 12);
  } else {
    for (let i = 0; i < flow.data.length; i++) out.writeFloatLE(flow.data[i], 12 + 4 * i);
  }
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

/** KITTI flow PNG: 16-bit RGB, u = (R - 2^15) / 64, v = (G - 2^15) / 64, B = 1 where valid. */
export function readKittiFlow(file: string): MaskedFlow {
  let png: { width: number; height: number; depth: number; colorType: number; data: Uint16Array | Buffer };
  try {
    png = PNG.sync.read(fs.readFileSync(file), { skipRescale: true }) as unknown as typeof png;
  } catch (error) {
    throw new FlowError('ERR_INPUT_SIZE', `'${file}' is not a readable PNG (${(error as Error).message})`);
  }
  if (png.depth !== 16 || png.colorType !== 2) {
    throw new FlowError('ERR_INPUT_SIZE', `'${file}' is not a KITTI flow PNG (needs 16-bit RGB, found ${png.depth}-bit colour type ${png.colorType})`);
  }
  // pngjs hands back RGBA whatever the file holds.
  const n = png.width * png.height;
  const data = new Float32Array(2 * n);
  const valid = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    valid[i] = png.data[4 * i + 2] > 0 ? 1 : 0;
    data[2 * i] = valid[i] ? (png.data[4 * i] - 32768) / 64 : 0;
    data[2 * i + 1] = valid[i] ? (png.data[4 * i + 1] - 32768) / 64 : 0;
  }
  return { flow: new FlowField(png.width, png.height, data), valid };
}

/** KITTI's 16-bit samples of a flow (RGB interleaved); pixels outside `valid`, and unknown flow, are invalid. */
export function kittiFlowSamples(flow: FlowField, valid?: Uint8Array): Uint16Array {
  const n = flow.width * flow.height;
  const samples = new Uint16Array(3 * n);
  const encode = (v: number) => Math.min(65535, Math.max(0, Math.round(v * 64 + 32768)));
  for (let i = 0; i < n; i++) {
    const ok = (valid ? valid[i] > 0 : true) && Math.abs(flow.data[2 * i]) < UNKNOWN_FLOW_THRESHOLD;
    samples[3 * i] = ok ? encode(flow.data[2 * i]) : 0;
    samples[3 * i + 1] = ok ? encode(flow.data[2 * i + 1]) : 0;
    samples[3 * i + 2] = ok ? 1 : 0;
  }
  return samples;
}

/** KITTI's 16-bit PNG of a flow, as bytes. */
export function encodeKittiFlow(flow: FlowField, valid?: Uint8Array): Buffer {
  const options = { width: flow.width, height: flow.height, bitDepth: 16 as const, colorType: 2 as const, inputColorType: 2 as const, inputHasAlpha: false };
  const png = new PNG(options);
  png.data = kittiFlowSamples(flow, valid) as unknown as Buffer;  // pngjs takes 16-bit samples as a Uint16Array
  return PNG.sync.write(png, options);
}

export function writeKittiFlow(file: string, flow: FlowField, valid?: Uint8Array): void {
  fs.writeFileSync(file, encodeKittiFlow(flow, valid));
}
