// Images from request bodies: encoded files (PNG, JPEG, WebP, TIFF, GIF, AVIF...) decoded by sharp (libvips, on
// libuv's pool, never the event loop); the formats sharp lacks (PPM/PGM, BMP...) by OpenCV where it is installed;
// or raw pixels whose size and layout the request states. The size is read from the header and checked against
// the pixel limit before any pixel is decoded.
import sharp from 'sharp';
import type { ImageLike, PixelFormat } from 'torch-optical-flow';
import { opencv } from 'torch-optical-flow/internal';
import { ServiceError } from './ServiceError';

const PIXEL_FORMATS: readonly PixelFormat[] = ['rgb', 'bgr', 'rgba', 'bgra', 'gray'];
const CHANNELS: Record<PixelFormat, number> = { rgb: 3, bgr: 3, rgba: 4, bgra: 4, gray: 1 };

/** Refuses a frame over the pixel limit, naming the field, its size and the limit. */
export function checkPixels(field: string, width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new ServiceError('ERR_PIXEL_LIMIT', `${field} is ${width}x${height} (${width * height} pixels), over this server's limit of ${maxPixels} pixels`);
  }
}

/** Width and height from a Netpbm (P1-P6) or BMP header, the formats OpenCV decodes for us; undefined otherwise. */
export function headerSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length >= 26 && bytes[0] === 0x42 && bytes[1] === 0x4d) {
    return { width: Math.abs(bytes.readInt32LE(18)), height: Math.abs(bytes.readInt32LE(22)) };
  }
  if (bytes.length >= 3 && bytes[0] === 0x50 && bytes[1] >= 0x31 && bytes[1] <= 0x36) {
    const head = bytes.subarray(2, 512).toString('latin1').replace(/#[^\n]*\n/g, ' ');
    const match = /^\s+(\d{1,9})\s+(\d{1,9})/.exec(head);
    if (match) return { width: Number(match[1]), height: Number(match[2]) };
  }
  return undefined;
}

/** Decodes an encoded image to 8-bit pixels (gray, RGB or BGR; alpha dropped), reading its header first. */
export async function decodeImage(field: string, bytes: Buffer, maxPixels: number): Promise<ImageLike> {
  if (bytes.length === 0) throw new ServiceError('ERR_DECODE', `${field} is empty`);
  let metadata: sharp.Metadata;
  try {
    // The header alone: no pixel is decoded here, whatever size it claims.
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    const size = headerSize(bytes);
    if (size) return decodeWithOpenCV(field, bytes, size, maxPixels);
    throw new ServiceError('ERR_DECODE', `${field} is not a decodable image (${(error as Error).message})`);
  }
  if (!metadata.width || !metadata.height) throw new ServiceError('ERR_DECODE', `${field} does not state its size`);
  checkPixels(field, metadata.width, metadata.height, maxPixels);
  try {
    // failOn 'error': a truncated or corrupt file is refused rather than decoded partly grey.
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', pages: 1 })
      .removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    const format: PixelFormat = info.channels === 1 ? 'gray' : 'rgb';
    if (info.channels !== CHANNELS[format]) throw new Error(`${info.channels} channels after decoding`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels, format };
  } catch (error) {
    throw new ServiceError('ERR_DECODE', `${field} could not be decoded (${(error as Error).message})`);
  }
}

async function decodeWithOpenCV(field: string, bytes: Buffer, size: { width: number; height: number }, maxPixels: number): Promise<ImageLike> {
  checkPixels(field, size.width, size.height, maxPixels);
  let cv;
  try {
    cv = opencv();
  } catch {
    throw new ServiceError('ERR_DECODE', `${field} is a PPM/PGM or BMP image, which this server decodes only with OpenCV (@u4/opencv4nodejs), not installed here`);
  }
  let mat;
  try {
    mat = await cv.imdecodeAsync(bytes, 1 /* IMREAD_COLOR: 8-bit BGR */);
  } catch (error) {
    throw new ServiceError('ERR_DECODE', `${field} could not be decoded (${error instanceof Error ? error.message : String(error)})`);
  }
  if (mat.empty || mat.cols !== size.width || mat.rows !== size.height) {
    throw new ServiceError('ERR_DECODE', `${field} could not be decoded (corrupt or truncated ${size.width}x${size.height} image)`);
  }
  const data = mat.getData();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: mat.cols, height: mat.rows, channels: 3, format: 'bgr' };
}

/** Raw pixels: `width` x `height` in `format`, tightly packed, 8 bits per channel. */
export function rawImage(field: string, bytes: Buffer, layout: { width: number; height: number; format: string }, maxPixels: number): ImageLike {
  const format = layout.format as PixelFormat;
  if (!PIXEL_FORMATS.includes(format)) {
    throw new ServiceError('ERR_BAD_REQUEST', `pixelFormat must be one of ${PIXEL_FORMATS.join(', ')}, got '${layout.format}'`);
  }
  checkPixels(field, layout.width, layout.height, maxPixels);
  const expected = layout.width * layout.height * CHANNELS[format];
  if (bytes.length !== expected) {
    throw new ServiceError('ERR_BAD_REQUEST', `${field} holds ${bytes.length} bytes; ${layout.width}x${layout.height} ${format} needs ${expected}`);
  }
  return { data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), width: layout.width, height: layout.height, channels: CHANNELS[format], format };
}
