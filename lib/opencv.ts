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
  imread(file: string): MatInstance;
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
