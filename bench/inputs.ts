// What the benchmarks run on: exports with weights (the bundled RAFT-S; the others with seeded random weights,
// exported by torch 1.13 so that every anchor loads them), and frames as raw RGB files (the shared Sintel pair
// scaled to the size asked for, or textured noise where the shared data is absent).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DEBIAN_PYTHON, ROOT } from './RequestRunner';

export const SHARED_DATA = path.resolve(ROOT, '..', 'shared', 'data');
export const RESULTS = path.join(ROOT, 'bench', 'results');

export function exportWithWeights(model: string): string {
  if (model === 'raft-small') return path.join(ROOT, 'models', 'raft-small.pt');
  const out = path.join(RESULTS, 'exports', `${model}.pt`);
  if (!fs.existsSync(out)) {
    const result = spawnSync(DEBIAN_PYTHON, ['-m', 'flowlib.export', '--arch', model, '--out', out, '--seed', '0'],
      { encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } });
    if (result.status !== 0) throw new Error(`exporting ${model} failed: ${result.stderr}`);
  }
  return out;
}

export function noisePair(width: number, height: number): [Uint8Array, Uint8Array] {
  const a = new Uint8Array(width * height * 3);
  let seed = 1;
  for (let i = 0; i < a.length; i++) { seed = (seed * 1103515245 + 12345) >>> 0; a[i] = seed >>> 24; }
  const b = new Uint8Array(a.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = 3 * (Math.max(0, y - 2) * width + Math.max(0, x - 3));
      b.set(a.subarray(s, s + 3), 3 * (y * width + x));
    }
  }
  return [a, b];
}

/** Two raw RGB files of a pair at this size, and what the pair is. */
export function framePair(width: number, height: number, dir: string): { a: string; b: string; source: string } {
  const a = path.join(dir, `a-${width}x${height}.rgb`), b = path.join(dir, `b-${width}x${height}.rgb`);
  const sintel = path.join(SHARED_DATA, 'sintel');
  let source: string;
  if (fs.existsSync(path.join(sintel, 'frame_0001.png'))) {
    const cv = require('@u4/opencv4nodejs') as typeof import('@u4/opencv4nodejs');
    for (const [file, out] of [['frame_0001.png', a], ['frame_0002.png', b]]) {
      const mat = cv.imread(path.join(sintel, file)).resize(height, width).cvtColor(cv.COLOR_BGR2RGB);
      fs.writeFileSync(out, mat.getData());
    }
    source = `the shared Sintel pair scaled to ${width}x${height}`;
  } else {
    const [na, nb] = noisePair(width, height);
    fs.writeFileSync(a, na);
    fs.writeFileSync(b, nb);
    source = `textured noise (${SHARED_DATA} is absent)`;
  }
  return { a, b, source };
}
