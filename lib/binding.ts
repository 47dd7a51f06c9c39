// The addon's native surface, declared once. Nothing else in lib/ touches an untyped native object.
import * as fs from 'fs';
import * as path from 'path';
import { FlowError } from './FlowError';
import type { NativeFrame } from './Frame';
import type { Padding } from './padding';

export interface NativeLoadResult {
  metadata: string;
  device: string;
  precision: Precision;
  stride: number;
  minSize: number;
  defaultIterations: number;
  weightsLoaded: string[];
  /** The key format the weights file was read with. */
  weightsFormat?: string;
  /** FlowNet's output scale in use, when the model has one. */
  divFlow?: number;
}

export interface NativeLoadOptions {
  modelPath: string;
  weightsPath?: string;
  keyFormats: { name: string; rules: [string, string][] }[];
  /** Random weights with this seed, instead of the export's or a file's. */
  randomSeed?: number;
  inputBgr: boolean;
  device: string;
  threads: number;
  precision: Precision;
}

/** The networks' arithmetic: float32 throughout, or bfloat16 convolutions with float32 coordinates and correlation. */
export type Precision = 'float32' | 'bfloat16';

export interface NativeFlow {
  width: number;
  height: number;
  data: Float32Array;
  /** Refinement iterations that ran (RAFT); 0 for models without refinement. */
  iterations: number;
}

export interface NativeRequest {
  id: number;
  promise: Promise<NativeFlow>;
}

export interface NativeStreamRequest {
  id: number;
  promise: Promise<NativeFlow | null>;
}

/** How far RAFT refines (binding/TorchModel.h's Refinement). */
export interface NativeRefinement {
  /** At most this many iterations. */
  iterations: number;
  /** Stop once an iteration's mean update is under this many pixels; 0: always `iterations`. */
  tolerance: number;
  /** RAFT's correlation windows from the features, not from the all-pairs volume. */
  onTheFly: boolean;
}

/** One pair (binding/EstimateJob.h). */
export interface NativeEstimateRequest {
  frameA: NativeFrame;
  frameB: NativeFrame;
  refinement: NativeRefinement;
}

/** The next frame of a stream (binding/StreamStepJob.h), with its StreamOptions. */
export interface NativeStreamStepRequest {
  stream: number;
  frame: NativeFrame;
  refinement: NativeRefinement;
  /** Encode each frame once: its features serve both pairs it belongs to. */
  reuseFeatures: boolean;
  /** Start refinement from the previous pair's flow, carried forward. */
  warmStart: boolean;
}

export interface NativeFlowModel {
  load(options: NativeLoadOptions): Promise<NativeLoadResult>;
  estimate(request: NativeEstimateRequest): NativeRequest;
  streamStep(request: NativeStreamStepRequest): NativeStreamRequest;
  streamEnd(stream: number): Promise<void>;
  cancel(id: number): boolean;
  dispose(): Promise<void>;
  readonly pending: number;
}

export interface NativeCapabilities {
  /** The version of the LibTorch loaded at run time (its libtorch_cpu's build settings). */
  torchVersion: string;
  /** The version of the LibTorch headers the addon was compiled with; the addon refuses to load when they differ. */
  torchHeadersVersion: string;
  /** The file libtorch_cpu was loaded from. */
  torchLibrary: string;
  /** Whether that LibTorch was built with CUDA (a CUDA build on a machine without a GPU has `cuda` false). */
  cudaBuild: boolean;
  /** Whether a CUDA device is usable. */
  cuda: boolean;
  cudaDevices: number;
}

interface NativeAddon {
  FlowModel: new (queueLimit: number) => NativeFlowModel;
  capabilities(): NativeCapabilities;
  paddingFor(height: number, width: number, stride: number, minSize: number): Padding;
  /** The error codes the addon raises (binding/FlowError.h), all of them FlowError codes. */
  readonly errorCodes: readonly string[];
  /** The most iterations an export may declare as its default (binding/TorchModel.h), models.ts's MAX_ITERATIONS. */
  readonly maxIterations: number;
}

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** Set to the path of an `optical_flow.node` to load that build instead of the package's own. */
export const BINDING_PATH_VARIABLE = 'OPTICAL_FLOW_BINDING';
/** Where `npm install` (cmake-js) puts the addon, in the order the loader tries them. */
const BUILD_LOCATIONS = [['build', 'Release'], ['build', 'Debug']].map((dirs) => path.join(PACKAGE_ROOT, ...dirs, 'optical_flow.node'));

let addon: NativeAddon | undefined;

function loadFrom(file: string): NativeAddon {
  try {
    return require(file) as NativeAddon;
  } catch (error) {
    throw new FlowError('ERR_NATIVE_MISSING', `the native addon at ${file} could not be loaded: ${(error as Error).message}`);
  }
}

/** The addon: from $OPTICAL_FLOW_BINDING when set, else from the first build folder that holds it. */
export function native(): NativeAddon {
  if (addon) return addon;
  const override = process.env[BINDING_PATH_VARIABLE];
  if (override) {
    if (!fs.existsSync(override)) {
      throw new FlowError('ERR_NATIVE_MISSING', `${BINDING_PATH_VARIABLE} points to ${override}, which does not exist`);
    }
    addon = loadFrom(path.resolve(override));
    return addon;
  }
  const found = BUILD_LOCATIONS.find((file) => fs.existsSync(file));
  if (!found) {
    throw new FlowError('ERR_NATIVE_MISSING', `the native addon is not built (looked for ${BUILD_LOCATIONS.join(', ')}): ` +
      `run \`npm install\` (or \`npm run setup\` in a clone), or set ${BINDING_PATH_VARIABLE} to a built optical_flow.node`);
  }
  addon = loadFrom(found);
  return addon;
}
