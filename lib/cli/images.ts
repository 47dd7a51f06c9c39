// Reading and writing pictures for the CLI: OpenCV decodes frames and videos, pngjs writes PNGs.
import * as fs from 'fs';
import { PNG } from 'pngjs';
import type { RgbImage } from '..';
import { MatInstance, opencv } from '../opencv';

export function readImage(file: string): MatInstance {
  if (!fs.existsSync(file)) throw new Error(`image '${file}' does not exist`);
  let mat: MatInstance;
  try {
    mat = opencv().imread(file);
  } catch (error) {
    // OpenCV throws strings, not Errors.
    throw new Error(`image '${file}' could not be read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (mat.empty) throw new Error(`image '${file}' could not be decoded`);
  return mat;
}

export function writePng(file: string, image: RgbImage): void {
  const png = new PNG({ width: image.width, height: image.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  fs.writeFileSync(file, PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}

/** An opencv4nodejs Mat from an RGB image (OpenCV stores BGR). */
export function matFromRgb(image: { data: Uint8Array; width: number; height: number }): MatInstance {
  const bgr = Buffer.alloc(image.width * image.height * 3);
  for (let i = 0; i < image.width * image.height; i++) {
    bgr[3 * i] = image.data[3 * i + 2];
    bgr[3 * i + 1] = image.data[3 * i + 1];
    bgr[3 * i + 2] = image.data[3 * i];
  }
  const cvm = opencv();
  return new cvm.Mat(bgr, image.height, image.width, cvm.CV_8UC3);
}

/** RGB pixels of a BGR (or gray) 8-bit Mat. */
export function rgbFromMat(mat: MatInstance): { data: Uint8Array; width: number; height: number; channels: 3; format: 'rgb' } {
  const src = mat.getData();
  const n = mat.rows * mat.cols;
  const data = new Uint8Array(n * 3);
  const c = mat.channels;
  for (let i = 0; i < n; i++) {
    if (c === 1) data.fill(src[i], 3 * i, 3 * i + 3);
    else { data[3 * i] = src[c * i + 2]; data[3 * i + 1] = src[c * i + 1]; data[3 * i + 2] = src[c * i]; }
  }
  return { data, width: mat.cols, height: mat.rows, channels: 3, format: 'rgb' };
}
