// The addon's native surface, declared once. Nothing else in lib/ touches an untyped native object.
import * as path from 'path';
import { FlowError } from './FlowError';
import type { NativeFrame } from './Frame';

export interface NativeLoadResult {
  metadata: string;
  device: string;
  stride: number;
  minSize: number;
  weightsLoaded: string[];
  /** FlowNet's output scale in use, when the model has one. */
  divFlow?: number;
}

export interface NativeFlow {
  width: number;
  height: number;
  data: Float32Array;
}

export interface NativeRequest {
  id: number;
  promise: Promise<NativeFlow>;
}

export interface NativeStreamRequest {
  id: number;
  promise: Promise<NativeFlow | null>;
}

export interface NativeFlowModel {
  load(modelPath: string, weightsPath: string | undefined, device: string, threads: number): Promise<NativeLoadResult>;
  estimate(a: NativeFrame, b: NativeFrame, iterations: number): NativeRequest;
  streamStep(stream: number, frame: NativeFrame, iterations: number, reuseFeatures: boolean, warmStart: boolean): NativeStreamRequest;
  streamEnd(stream: number): Promise<void>;
  cancel(id: number): boolean;
  dispose(): Promise<void>;
  readonly pending: number;
}

export interface NativeCapabilities {
  torchVersion: string;
  cuda: boolean;
  cudaDevices: number;
}

interface NativeAddon {
  FlowModel: new (queueLimit: number) => NativeFlowModel;
  capabilities(): NativeCapabilities;
}

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!addon) {
    const file = path.join(PACKAGE_ROOT, 'build', 'Release', 'optical_flow.node');
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      addon = require(file) as NativeAddon;
    } catch (error) {
      throw new FlowError('ERR_NATIVE_MISSING',
        `the native addon could not be loaded from ${file} (${(error as Error).message}); run \`npm run setup\``);
    }
  }
  return addon;
}
