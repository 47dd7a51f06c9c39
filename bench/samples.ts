// The bundled RAFT-S on the shared samples with ground truth: torchvision eager at 12 iterations against estimate()
// at fixed counts and with tolerances (the time-EPE curve), per set; bfloat16 beside float32.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FlowEstimator, FlowField, flowMetrics, poolMetrics } from '../lib';
import { findPairs, readTruth } from '../lib/cli/groundTruthPairs';
import { readImage } from '../lib/cli/images';
import { exportWithWeights, SHARED_DATA } from './inputs';
import { pythonJson } from './python';
import { DEBIAN_PYTHON } from './RequestRunner';

/** The adaptive default measured here: see the curve this benchmark writes. */
export const TOLERANCE = 0.2;
export const MAX_ITERATIONS = 24;

interface Sample { set: string; a: string; b: string; truth: FlowField; valid?: Uint8Array }

/** The shared pairs with ground truth: FlyingChairs, Sintel (clean and final), KITTI 2015 and 2012. */
function sharedSamples(): Sample[] {
  const sets = [['FlyingChairs', 'flyingchairs'], ['Sintel', 'sintel-training'], ['KITTI 2015', 'kitti2015'], ['KITTI 2012', 'kitti2012']];
  return sets.filter(([, folder]) => fs.existsSync(path.join(SHARED_DATA, folder))).flatMap(([set, folder]) =>
    findPairs(path.join(SHARED_DATA, folder)).map((pair) => {
      const { flow, valid } = readTruth(pair);
      return { set, a: pair.a, b: pair.b, truth: flow, ...(valid ? { valid } : {}) };
    }));
}

/**
 * The bundled RAFT-S on the shared samples: torchvision eager at 12 iterations against estimate() at fixed counts
 * and with tolerances (the time-EPE curve), per set.
 */
export async function benchSamples(threads: number) {
  const samples = sharedSamples();
  if (samples.length === 0) {
    console.log(`no shared samples at ${SHARED_DATA}: skipped`);
    return undefined;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optical-flow-bench-'));
  try {
    const list = path.join(dir, 'pairs.json');
    fs.writeFileSync(list, JSON.stringify(samples.map((s) => [s.a, s.b])));
    const eager = pythonJson<{ seconds: number[] }>(['bench/python/baseline.py', 'pairs', '--model', exportWithWeights('raft-small'), '--list', list, '--out-dir', dir,
      '--threads', String(threads)], DEBIAN_PYTHON);
    const eagerFlows = samples.map((s, k) => new FlowField(s.truth.width, s.truth.height, new Float32Array(fs.readFileSync(path.join(dir, `${k}.bin`)).buffer.slice(0))));
    const flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads });
    const mixed = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads, precision: 'bfloat16' });
    const frames = samples.map((s) => [readImage(s.a), readImage(s.b)]);
    await flow.estimate(frames[0][0], frames[0][1], { iterations: 1 });
    await mixed.estimate(frames[0][0], frames[0][1], { iterations: 1 });
    const sets = [...new Set(samples.map((s) => s.set))];
    const summarise = (fields: FlowField[], seconds: number[], iterations?: number[]) => Object.fromEntries(sets.map((set) => {
      const ks = samples.map((s, k) => (s.set === set ? k : -1)).filter((k) => k >= 0);
      const pooled = poolMetrics(ks.map((k) => flowMetrics(fields[k], samples[k].truth, samples[k].valid)));
      return [set, {
        pairs: ks.length, epe: pooled.epe, flAll: pooled.flAll,
        seconds: ks.reduce((s, k) => s + seconds[k], 0), iterations: iterations ? ks.reduce((s, k) => s + iterations[k], 0) / ks.length : undefined,
      }];
    }));
    const run = async (options: { iterations: number; tolerance?: number }, model = flow) => {
      const fields: FlowField[] = [];
      const seconds: number[] = [];
      for (const [a, b] of frames) {
        const start = process.hrtime.bigint();
        fields.push(await model.estimate(a, b, options));
        seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
      }
      return summarise(fields, seconds, fields.map((f) => f.iterations ?? options.iterations));
    };
    const torchvision = summarise(eagerFlows, eager.seconds);
    const fixed12 = await run({ iterations: 12 });
    const adaptive = await run({ iterations: MAX_ITERATIONS, tolerance: TOLERANCE });
    const curve = [];
    for (const iterations of [1, 2, 4, 8, 16, 24]) curve.push({ iterations, ...(await run({ iterations })) });
    curve.push({ iterations: 12, ...fixed12 });
    for (const tolerance of [0.05, 0.1, 0.5, 1]) curve.push({ tolerance, ...(await run({ iterations: MAX_ITERATIONS, tolerance })) });
    curve.push({ tolerance: TOLERANCE, ...adaptive });
    const bfloat16 = { fixed12: await run({ iterations: 12 }, mixed), adaptive: await run({ iterations: MAX_ITERATIONS, tolerance: TOLERANCE }, mixed) };
    await flow.dispose();
    await mixed.dispose();
    console.log(`\n| set | torchvision eager (12) EPE / s | estimate() 12 EPE / s | estimate() tolerance ${TOLERANCE} EPE / s / iterations | speed-up over eager | bfloat16: 12 EPE / s | bfloat16: tolerance ${TOLERANCE} EPE / s | bfloat16 speed-up over eager |\n|---|---|---|---|---|---|---|---|`);
    for (const set of sets) {
      const [t, f, a, bf, ba] = [torchvision[set], fixed12[set], adaptive[set], bfloat16.fixed12[set], bfloat16.adaptive[set]];
      console.log(`| ${set} (${t.pairs}) | ${t.epe.toFixed(3)} / ${t.seconds.toFixed(2)} | ${f.epe.toFixed(3)} / ${f.seconds.toFixed(2)} | ` +
        `${a.epe.toFixed(3)} / ${a.seconds.toFixed(2)} / ${a.iterations!.toFixed(1)} | ${(t.seconds / a.seconds).toFixed(2)}x | ` +
        `${bf.epe.toFixed(3)} / ${bf.seconds.toFixed(2)} | ${ba.epe.toFixed(3)} / ${ba.seconds.toFixed(2)} | ${(t.seconds / ba.seconds).toFixed(2)}x |`);
    }
    return { tolerance: TOLERANCE, maxIterations: MAX_ITERATIONS, torchvision, fixed12, adaptive, curve, bfloat16 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

