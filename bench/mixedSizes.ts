// The bundled RAFT-S on requests cycling through the shared sets' frame sizes, with this package's caching
// allocator and with the system's: what a service meeting frames of several sizes pays.
import { RequestRunner } from './RequestRunner';
import { exportWithWeights, framePair } from './inputs';

/** The shared sets' frame sizes (KITTI, Sintel, FlyingChairs). */
const SIZES: [number, number][] = [[1242, 375], [1024, 436], [512, 384]];

export async function benchMixedSizes(options: { threads: number; rounds: number; dir: string }) {
  const requests = SIZES.map(([width, height]) => ({ ...framePair(width, height, options.dir), width, height, iterations: 12 }));
  const result: Record<string, { seconds: number; peakRssMb: number; minorFaults: number }> = {};
  for (const [name, allocator] of [['caching', undefined], ['system', 'system']] as const) {
    const runner = await RequestRunner.addon(name, { model: exportWithWeights('raft-small'), threads: options.threads },
      { OPTICAL_FLOW_ALLOCATOR: allocator });
    try {
      const seconds: number[] = [], faults: number[] = [];
      let peak = 0;
      for (let round = 0; round < options.rounds; round++) {
        for (const request of requests) {
          const reply = await runner.request(request);
          if (round > 0) { seconds.push(reply.seconds); faults.push(reply.minorFaults); }
          peak = Math.max(peak, reply.peakRssMb);
        }
      }
      const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
      result[name] = { seconds: mean(seconds), peakRssMb: peak, minorFaults: mean(faults) };
    } finally {
      await runner.stop();
    }
  }
  const { caching, system } = result;
  console.log(`\nraft-small, requests cycling through ${SIZES.map(([w, h]) => `${w}x${h}`).join(', ')} (${options.rounds} rounds; ` +
    `the mean request after the first round): caching allocator ${caching.seconds.toFixed(3)} s, peak RSS ${caching.peakRssMb.toFixed(0)} MB, ` +
    `${Math.round(caching.minorFaults)} minor faults; system allocator ${system.seconds.toFixed(3)} s, ${system.peakRssMb.toFixed(0)} MB, ` +
    `${Math.round(system.minorFaults)} faults (${(system.seconds / caching.seconds).toFixed(2)}x)`);
  return { sizes: SIZES, rounds: options.rounds, caching, system };
}
