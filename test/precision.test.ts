// The bfloat16 path: RAFT's networks in bfloat16, coordinates and correlation in float32. Its flow stays within a
// small distance of float32's and its accuracy on real pairs with ground truth within a few hundredths of a pixel;
// float32 is untouched; exports that cannot run it say so at load.
import { strict as assert } from 'assert';
import * as path from 'path';
import { FlowError, FlowEstimator, flowMetrics, poolMetrics } from '../lib';
import { findPairs, readTruth } from '../lib/cli/groundTruthPairs';
import { readImage } from '../lib/cli/images';
import { exportModel, hasSharedData, SHARED_DATA, syntheticPair, THREADS } from './helpers';

describe('precision: bfloat16', function () {
  this.timeout(300_000);
  let float32: FlowEstimator;
  let bfloat16: FlowEstimator;

  before(async () => {
    float32 = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: THREADS });
    bfloat16 = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: THREADS, precision: 'bfloat16' });
  });
  after(async () => {
    await float32?.dispose();
    await bfloat16?.dispose();
  });

  it('reports its precision, float32 by default', () => {
    assert.equal(float32.precision, 'float32');
    assert.equal(bfloat16.precision, 'bfloat16');
  });

  it('gives nearly the flow of float32 on a synthetic pair, in every mode', async () => {
    const [a, b] = syntheticPair(256, 128, 5, -3);
    for (const options of [{}, { correlation: 'on-the-fly' as const }, { iterations: 24, tolerance: 0.05 }]) {
      const reference = await float32.estimate(a, b, options);
      const mixed = await bfloat16.estimate(a, b, options);
      let sum = 0;
      for (let i = 0; i < mixed.data.length; i++) sum += Math.abs(mixed.data[i] - reference.data[i]);
      const mean = sum / mixed.data.length;
      console.log(`      ${JSON.stringify(options)}: mean |bfloat16 - float32| ${mean.toFixed(4)} px`);
      assert.ok(Number.isFinite(mean) && mean < 0.05, `mean difference ${mean}`);
    }
    const stream = bfloat16.stream();
    assert.equal(await stream.push(a), null);
    const streamed = await stream.push(b);
    assert.ok(streamed && streamed.data.every(Number.isFinite));
    await stream.close();
  });

  it('costs under 2% of EPE on the shared KITTI 2015 and Sintel pairs', async function () {
    if (!hasSharedData()) { console.log(`      skipped: ${SHARED_DATA} is absent`); this.skip(); }
    for (const folder of ['sintel-training', 'kitti2015']) {
      const pairs = findPairs(path.join(SHARED_DATA, folder)).slice(0, 3);
      const per: Record<string, ReturnType<typeof flowMetrics>[]> = { float32: [], bfloat16: [] };
      for (const pair of pairs) {
        const { flow, valid } = readTruth(pair);
        for (const [name, model] of [['float32', float32], ['bfloat16', bfloat16]] as const) {
          per[name].push(flowMetrics(await model.estimate(readImage(pair.a), readImage(pair.b)), flow, valid));
        }
      }
      const [full, mixed] = [poolMetrics(per.float32).epe, poolMetrics(per.bfloat16).epe];
      console.log(`      ${folder} (${pairs.length} pairs): EPE float32 ${full.toFixed(4)}, bfloat16 ${mixed.toFixed(4)}`);
      assert.ok(Math.abs(mixed - full) < 0.02 * full + 0.01, `${folder}: ${mixed} against ${full}`);
    }
  });

  it('runs RAFT (batch-norm context encoder) too', async () => {
    const model = await FlowEstimator.load({ model: exportModel('raft', { seed: 3 }), device: 'cpu', threads: THREADS, precision: 'bfloat16' });
    try {
      const [a, b] = syntheticPair(128, 96);
      const field = await model.estimate(a, b, { iterations: 2 });
      assert.ok(field.data.every(Number.isFinite));
    } finally {
      await model.dispose();
    }
  });

  it('is refused by name for exports that cannot run it, and for unknown values', async () => {
    await assert.rejects(FlowEstimator.load({ model: 'flownets', weights: 'random', precision: 'bfloat16' }),
      (e: FlowError) => e.code === 'ERR_MODEL_LOAD' && /does not support precision 'bfloat16': only RAFT exports/.test(e.message));
    await assert.rejects(FlowEstimator.load({ precision: 'fp16' as 'float32' }),
      (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE' && /Expected 'float32' or 'bfloat16' for precision but received "fp16"/.test(e.message));
  });
});
