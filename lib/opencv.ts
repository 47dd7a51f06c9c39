// Lazy access to @u4/opencv4nodejs, so the core API works (and loads fast) without it.
import { FlowError } from './FlowError';

/** The parts of opencv4nodejs this library uses. */
export interface OpenCV {
  VideoCapture: new (source: string | number) => VideoCaptureLike;
  VideoWriter: (new (file: string, fourcc: number, fps: number, size: unknown, isColor?: boolean) => VideoWriterLike) & {
    fourcc(code: string): number;
  };
  Mat: new (...args: unknown[]) => MatInstance;
  Size: new (width: number, height: number) => unknown;
  CAP_PROP_FRAME_COUNT: number;
  CAP_PROP_FPS: number;
  CAP_PROP_FRAME_WIDTH: number;
  CAP_PROP_FRAME_HEIGHT: number;
  CV_8UC3: number;
  imread(file: string, flags?: number): MatInstance;
  imdecodeAsync(buffer: Buffer, flags?: number): Promise<MatInstance>;
  imwrite(file: string, mat: MatInstance): void;
}

export interface MatInstance {
  rows: number;
  cols: number;
  channels: number;
  type: number;
  empty: boolean;
  getData(): Buffer;
  cvtColor(code: number): MatInstance;
  resize(rows: number, cols: number): MatInstance;
  release?(): void;
}

export interface VideoCaptureLike {
  read(): MatInstance;
  readAsync(): Promise<MatInstance>;
  get(prop: number): number;
  release(): void;
}

export interface VideoWriterLike {
  write(mat: MatInstance): void;
  release(): void;
}

let cv: OpenCV | undefined;

export function opencv(): OpenCV {
  if (!cv) {
    try {
      // opencv-build logs its configuration at require time; keep the caller's output clean.
      require('@u4/opencv-build').Log.silence = true;
    } catch { /* an older layout: the lines are only noise */ }
    try {
      cv = require('@u4/opencv4nodejs') as OpenCV;
    } catch (error) {
      throw new FlowError('ERR_NATIVE_MISSING', 'OpenCV Mats, image files and video need @u4/opencv4nodejs, an optional peer dependency of this package: ' +
        `install it with \`npm install @u4/opencv4nodejs\` (${(error as Error).message.split('\n')[0]})`);
    }
  }
  return cv;
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
