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
