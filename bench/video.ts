// A video as a service or the demo reads it: the demo clip (known motion) as an MJPG file, the plain loop (frames
// read with OpenCV, torchvision eager per pair, 12 iterations) against a VideoFlowSession (features encoded once,
// warm start, adaptive iterations), each mode's pairs per second and EPE.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FlowEstimator, FlowField, flowMetrics, VideoFlowSession } from '../lib';
import { makeDemoClip } from '../lib/cli/demoClip';
import { matFromRgb, opencv } from '../lib/opencv';
import { exportWithWeights, noisePair } from './inputs';
import { pythonJson } from './python';
import { DEBIAN_PYTHON } from './RequestRunner';
import { MAX_ITERATIONS, TOLERANCE } from './samples';

/**
 * The demo clip (known motion) as an MJPG video: the plain loop (frames read with OpenCV, torchvision eager per
 * pair, 12 iterations) against a VideoFlowSession (features encoded once, warm start, adaptive iterations).
 */
export async function benchVideo(threads: number) {
  const clip = makeDemoClip();
  const cv = opencv();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optical-flow-bench-'));
  try {
    const file = path.join(dir, 'clip.avi');
    const writer = new cv.VideoWriter(file, cv.VideoWriter.fourcc('MJPG'), 24, new cv.Size(clip.width, clip.height), true);
    for (const frame of clip.frames) writer.write(matFromRgb({ data: frame, width: clip.width, height: clip.height }));
    writer.release();
    const epeOf = (fields: FlowField[]) => fields.reduce((s, f, k) => s + flowMetrics(f, clip.truth[k]).epe, 0) / fields.length;
    const plain = pythonJson<{ seconds: number; pairs: number }>(['bench/python/baseline.py', 'video', '--model', exportWithWeights('raft-small'), '--video', file,
      '--out-dir', dir, '--threads', String(threads)], DEBIAN_PYTHON);
    const plainFields = clip.truth.slice(0, plain.pairs).map((_, k) => new FlowField(clip.width, clip.height, new Float32Array(fs.readFileSync(path.join(dir, `${k}.bin`)).buffer.slice(0))));
    const flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads });
    const mixed = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads, precision: 'bfloat16' });
    const [a, b] = noisePair(clip.width, clip.height).map((data) => ({ data, width: clip.width, height: clip.height }));
    await flow.estimate(a, b, { iterations: 1 });
    await mixed.estimate(a, b, { iterations: 1 });
    const modes = [
      { name: 'independent pairs, 12 iterations', options: { iterations: 12, reuseFeatures: false, warmStart: false } },
      { name: 'features once, 12 iterations', options: { iterations: 12, warmStart: false } },
      { name: 'features once + warm start, 12 iterations', options: { iterations: 12 } },
      { name: `features once + warm start + tolerance ${TOLERANCE}`, options: { iterations: MAX_ITERATIONS, tolerance: TOLERANCE } },
      { name: `features once + tolerance ${TOLERANCE} (cold)`, options: { iterations: MAX_ITERATIONS, tolerance: TOLERANCE, warmStart: false } },
      { name: `bfloat16: features once + warm start + tolerance ${TOLERANCE}`, options: { iterations: MAX_ITERATIONS, tolerance: TOLERANCE }, model: mixed },
    ];
    const rows = [{ name: 'plain loop: OpenCV + torchvision eager, 12 iterations', seconds: plain.seconds, pairs: plain.pairs, epe: epeOf(plainFields), speedup: 1 }];
    for (const mode of modes) {
      const fields: FlowField[] = [];
      const start = process.hrtime.bigint();
      for await (const step of VideoFlowSession.open(mode.model ?? flow, file, mode.options)) fields.push(step.flow);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      rows.push({ name: mode.name, seconds, pairs: fields.length, epe: epeOf(fields), speedup: plain.seconds / plain.pairs / (seconds / fields.length) });
    }
    await flow.dispose();
    await mixed.dispose();
    console.log(`\n| video (demo clip ${clip.width}x${clip.height}, MJPG, ${plain.pairs} pairs) | pairs/s | EPE px | over the plain loop |\n|---|---|---|---|`);
    for (const r of rows) console.log(`| ${r.name} | ${(r.pairs / r.seconds).toFixed(2)} | ${r.epe.toFixed(3)} | ${r.speedup.toFixed(2)}x |`);
    return rows;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
