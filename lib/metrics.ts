import { FlowError } from './FlowError';
import { FlowField } from './FlowField';
import { UNKNOWN_FLOW_THRESHOLD } from './flowFiles';
import { rangeError } from './validate';

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
  /** End-point error by true speed (under 10, 10 to 40 and over 40 px), over the pixels counted in each band. */
  bySpeed: SpeedBandError[];
}

export interface SpeedBandError {
  /** The band's true speeds in px: from (inclusive) to (exclusive; Infinity for the last band). */
  from: number;
  to: number;
  /** Mean end-point error of the band's pixels; NaN when it has none. */
  epe: number;
  pixels: number;
}

/** Speed bands of FlowMetrics.bySpeed: the small motions of video, the typical, and the large of driving. */
export const SPEED_BANDS: readonly (readonly [number, number])[] = [[0, 10], [10, 40], [40, Infinity]];

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
  const bandSums = SPEED_BANDS.map(() => 0), bandCounts = SPEED_BANDS.map(() => 0);
  for (let i = 0; i < truth.width * truth.height; i++) {
    const tu = truth.data[2 * i], tv = truth.data[2 * i + 1];
    if ((valid && !valid[i]) || !(Math.abs(tu) < UNKNOWN_FLOW_THRESHOLD && Math.abs(tv) < UNKNOWN_FLOW_THRESHOLD)) continue;
    const error = Math.hypot(estimate.data[2 * i] - tu, estimate.data[2 * i + 1] - tv);
    const speed = Math.hypot(tu, tv);
    sum += error;
    if (error > 3 && error > 0.05 * speed) outliers++;
    const band = SPEED_BANDS.findIndex(([from, to]) => speed >= from && speed < to);
    bandSums[band] += error;
    bandCounts[band]++;
    if (error < 1) under1++;
    if (error < 3) under3++;
    if (error < 5) under5++;
    count++;
  }
  const share = (n: number) => (count ? n / count : NaN);
  return {
    epe: share(sum), flAll: share(outliers), px1: share(under1), px3: share(under3), px5: share(under5), validPixels: count,
    bySpeed: SPEED_BANDS.map(([from, to], k) => ({ from, to, epe: bandCounts[k] ? bandSums[k] / bandCounts[k] : NaN, pixels: bandCounts[k] })),
  };
}

/**
 * The measures of a set of pairs: EPE is the mean of the pairs' EPEs (as KITTI and RAFT's evaluation report it), the
 * shares and the errors by speed are over all the pixels counted in the set.
 */
export function poolMetrics(pairs: readonly FlowMetrics[]): FlowMetrics {
  if (!Array.isArray(pairs) || pairs.length === 0) throw rangeError('pairs', 'a non-empty array of FlowMetrics', pairs);
  const pixels = pairs.reduce((n, m) => n + m.validPixels, 0);
  const pooled = (key: 'flAll' | 'px1' | 'px3' | 'px5') => (pixels ? pairs.reduce((s, m) => s + m[key] * m.validPixels, 0) / pixels : NaN);
  return {
    epe: pairs.reduce((s, m) => s + m.epe, 0) / pairs.length,
    flAll: pooled('flAll'), px1: pooled('px1'), px3: pooled('px3'), px5: pooled('px5'), validPixels: pixels,
    bySpeed: SPEED_BANDS.map(([from, to], k) => {
      const count = pairs.reduce((n, m) => n + m.bySpeed[k].pixels, 0);
      const sum = pairs.reduce((s, m) => s + (m.bySpeed[k].pixels ? m.bySpeed[k].epe * m.bySpeed[k].pixels : 0), 0);
      return { from, to, epe: count ? sum / count : NaN, pixels: count };
    }),
  };
}
