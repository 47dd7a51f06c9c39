import { FlowError } from './FlowError';
import { FlowField } from './FlowField';
import { UNKNOWN_FLOW_THRESHOLD } from './flowFiles';

/** Standard flow accuracy measures over the valid pixels. */
export interface FlowMetrics {
  /** Mean end-point error in pixels. */
  epe: number;
  /** KITTI's Fl-all: the fraction of pixels whose error exceeds both 3 px and 5% of the true motion. */
  flAll: number;
  /** Fractions of pixels with an error under 1, 3 and 5 px. */
  px1: number;
  px3: number;
  px5: number;
  /** Pixels counted. */
  validPixels: number;
}

/**
 * Compares an estimate with the truth. Pixels are skipped where `valid` is 0 or the truth is unknown
 * (above 1e9, the .flo convention).
 */
export function flowMetrics(estimate: FlowField, truth: FlowField, valid?: Uint8Array): FlowMetrics {
  if (estimate.width !== truth.width || estimate.height !== truth.height) {
    throw new FlowError('ERR_INPUT_SIZE', `estimate is ${estimate.width}x${estimate.height} but truth is ${truth.width}x${truth.height}`);
  }
  if (valid && valid.length !== truth.width * truth.height) {
    throw new FlowError('ERR_INPUT_SIZE', `valid has ${valid.length} entries, expected ${truth.width * truth.height}`);
  }
  let sum = 0, outliers = 0, under1 = 0, under3 = 0, under5 = 0, count = 0;
  for (let i = 0; i < truth.width * truth.height; i++) {
    const tu = truth.data[2 * i], tv = truth.data[2 * i + 1];
    if ((valid && !valid[i]) || !(Math.abs(tu) < UNKNOWN_FLOW_THRESHOLD && Math.abs(tv) < UNKNOWN_FLOW_THRESHOLD)) continue;
    const error = Math.hypot(estimate.data[2 * i] - tu, estimate.data[2 * i + 1] - tv);
    sum += error;
    if (error > 3 && error > 0.05 * Math.hypot(tu, tv)) outliers++;
    if (error < 1) under1++;
    if (error < 3) under3++;
    if (error < 5) under5++;
    count++;
  }
  const share = (n: number) => (count ? n / count : NaN);
  return { epe: share(sum), flAll: share(outliers), px1: share(under1), px3: share(under3), px5: share(under5), validPixels: count };
}
