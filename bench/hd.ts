// RAFT at 720p, 1080p and 4K: seconds and peak memory with the all-pairs volume (where it fits) and on the fly,
// one process per case (its peak memory its own), one timed request after a one-iteration warm-up.
import { RequestRunner } from './RequestRunner';
import { exportWithWeights, framePair } from './inputs';
import type { CorrelationMode } from '../lib';

const CASES: [number, number, CorrelationMode[]][] = [[1280, 720, ['all-pairs', 'on-the-fly']], [1920, 1080, ['all-pairs', 'on-the-fly']],
  [3840, 2160, ['on-the-fly']]];

export async function benchHd(options: { models: string[]; threads: number; dir: string }) {
  const rows = [];
  for (const model of options.models.filter((m) => m.startsWith('raft'))) {
    for (const [width, height, modes] of CASES) {
      const frames = framePair(width, height, options.dir);
      for (const correlation of modes) {
        const runner = await RequestRunner.addon(`${model} ${correlation}`, { model: exportWithWeights(model), threads: options.threads });
        try {
          await runner.request({ ...frames, width, height, iterations: 1, correlation });
          const reply = await runner.request({ ...frames, width, height, iterations: 12, correlation });
          rows.push({ model, width, height, correlation, seconds: reply.seconds, peakRssMb: reply.peakRssMb });
          console.log(`HD ${model} ${width}x${height} ${correlation}: ${reply.seconds.toFixed(2)} s, peak RSS ${reply.peakRssMb.toFixed(0)} MB`);
        } finally {
          await runner.stop();
        }
      }
    }
  }
  return rows;
}
