// What one request needs in memory, estimated before anything is allocated, so that a frame too large for the
// machine is refused with the numbers instead of taking the process down.
//
// Measured on the CPU (peak resident memory over the loaded model, 2 threads, LibTorch 1.13), frames W x H padded
// to the stride, N = (W / 8) (H / 8) positions at 1/8 resolution:
//   RAFT-S  320x256 37 MB, 640x512 303 MB, 1024x768 1351 MB, 1280x960 3091 MB
//   RAFT    320x256 76 MB, 640x512 347 MB, 1024x768 1368 MB, 1280x960 3095 MB
//   FlowNetS 640x512 120 MB, 1280x960 293 MB; FlowNetC 640x512 119 MB, 1280x960 347 MB
// RAFT is dominated by the all-pairs correlation volume (4 N^2 bytes in float32) and its pyramid: 1.7 to 1.8 times
// that volume, plus about 350 to 530 bytes per pixel of activations. The model below rounds each term up.
import * as os from 'os';
import { paddingFor } from './padding';

export interface MemoryEstimate {
  /** Bytes the request needs beyond the loaded model. */
  total: number;
  /** Of which the all-pairs correlation volume (RAFT with all-pairs correlation), or 0. */
  correlation: number;
}

/** How RAFT's correlation is computed: from the all-pairs volume, or window by window from the features. */
export type CorrelationMode = 'auto' | 'all-pairs' | 'on-the-fly';
export const CORRELATION_MODES: readonly CorrelationMode[] = ['auto', 'all-pairs', 'on-the-fly'];

const MB = 2 ** 20;
const FIXED = 64 * MB;
const RAFT_VOLUME_FACTOR = 2;
const RAFT_BYTES_PER_PIXEL = 600;
// On-the-fly lookups keep per-tile products and gathered features in bounded chunks besides the activations.
const ON_THE_FLY_FIXED = 256 * MB;
const FLOWNET_BYTES_PER_PIXEL = 300;
/**
 * 'auto' computes the correlation on the fly once the all-pairs volume would exceed this (RAFT at 1280x720 and
 * above): there the volume costs more time to build than the windows do to compute, and gigabytes of memory.
 */
export const ALL_PAIRS_VOLUME_LIMIT = 512 * MB;

function raftPositions(model: { stride: number; minSize: number }, width: number, height: number) {
  const p = paddingFor(height, width, model.stride, model.minSize);
  return { pixels: p.paddedWidth * p.paddedHeight, positions: (p.paddedWidth / 8) * (p.paddedHeight / 8) };
}

/** Whether a W x H pair on this model computes its correlation on the fly, for a requested mode. */
export function correlatesOnTheFly(model: { family: string; stride: number; minSize: number }, width: number, height: number,
  mode: CorrelationMode): boolean {
  if (model.family !== 'raft' || mode === 'all-pairs') return false;
  if (mode === 'on-the-fly') return true;
  const { positions } = raftPositions(model, width, height);
  return 4 * positions * positions > ALL_PAIRS_VOLUME_LIMIT;
}

/** The estimate for a W x H pair on a model of this family, stride and minimum size. */
export function estimateRequestMemory(model: { family: string; stride: number; minSize: number }, width: number, height: number,
  onTheFly = false): MemoryEstimate {
  if (model.family === 'raft') {
    const { pixels, positions } = raftPositions(model, width, height);
    if (onTheFly) return { total: RAFT_BYTES_PER_PIXEL * pixels + ON_THE_FLY_FIXED + FIXED, correlation: 0 };
    const correlation = 4 * positions * positions;
    return { total: RAFT_VOLUME_FACTOR * correlation + RAFT_BYTES_PER_PIXEL * pixels + FIXED, correlation };
  }
  const p = paddingFor(height, width, model.stride, model.minSize);
  return { total: FLOWNET_BYTES_PER_PIXEL * p.paddedWidth * p.paddedHeight + FIXED, correlation: 0 };
}

/** The default `memoryLimit`: half of this machine's memory, so that a request never takes it all. */
export function defaultMemoryLimit(): number {
  return Math.floor(os.totalmem() / 2);
}

export function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GB` : `${Math.ceil(bytes / MB)} MB`;
}
