// Adaptive refinement: RAFT stops once an iteration's mean update is under `tolerance` pixels. A tolerance too
// small to reach runs every iteration and equals the plain path; one too large to miss stops after the first.
import { strict as assert } from 'assert';
import { FlowEstimator } from '../lib';
import { makeDemoClip } from '../lib/cli/demoClip';
import { flowMetrics } from '../lib';
import { maxAbsDiff, syntheticPair, THREADS } from './helpers';

describe('adaptive iterations (tolerance)', function () {
  this.timeout(120_000);
  let flow: FlowEstimator;
  const [a, b] = syntheticPair(128, 96, 3, 2);

  before(async () => {
    flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: THREADS });
  });
  after(() => flow?.dispose());

  it('a tolerance never reached runs every iteration and equals the plain path', async function () {
    const plain = await flow.estimate(a, b, { iterations: 10 });
    const adaptive = await flow.estimate(a, b, { iterations: 10, tolerance: 1e-9 });
    assert.equal(plain.iterations, 10);
    assert.equal(adaptive.iterations, 10);
    const diff = maxAbsDiff(adaptive.data, plain.data);
    console.log(`      tolerance 1e-9, 10 iterations: max |adaptive - plain| ${diff.toExponential(2)} px`);
    assert.ok(diff <= 1e-4, `max |difference| ${diff}`);
  });

  it('a tolerance always met stops after one iteration, equal to iterations: 1', async function () {
    const one = await flow.estimate(a, b, { iterations: 1 });
    const adaptive = await flow.estimate(a, b, { iterations: 24, tolerance: 100 });
    assert.equal(adaptive.iterations, 1);
    assert.ok(maxAbsDiff(adaptive.data, one.data) <= 1e-4);
  });

  it('stops early on the demo clip at a small cost in error, and each pair reports its count', async function () {
    const clip = makeDemoClip(160, 120, 6);
    const frame = (k: number) => ({ data: clip.frames[k], width: 160, height: 120, channels: 3, format: 'rgb' as const });
    let fixedEpe = 0;
    let adaptiveEpe = 0;
    let ran = 0;
    for (let k = 0; k < 5; k++) {
      const fixed = await flow.estimate(frame(k), frame(k + 1), { iterations: 24 });
      const adaptive = await flow.estimate(frame(k), frame(k + 1), { iterations: 24, tolerance: 0.05 });
      assert.ok(adaptive.iterations! >= 1 && adaptive.iterations! <= 24);
      ran += adaptive.iterations!;
      fixedEpe += flowMetrics(fixed, clip.truth[k]).epe / 5;
      adaptiveEpe += flowMetrics(adaptive, clip.truth[k]).epe / 5;
    }
    console.log(`      demo clip 160x120: 24 iterations EPE ${fixedEpe.toFixed(3)} px; tolerance 0.05: ${(ran / 5).toFixed(1)} iterations, EPE ${adaptiveEpe.toFixed(3)} px`);
    assert.ok(ran < 5 * 24, 'some pair stopped early');
    assert.ok(adaptiveEpe <= fixedEpe + 0.1, `EPE ${adaptiveEpe} against ${fixedEpe}`);
  });

  it('streams take a tolerance too, and a never-reached one equals the plain stream', async function () {
    const clip = makeDemoClip(128, 96, 4);
    const frame = (k: number) => ({ data: clip.frames[k], width: 128, height: 96, channels: 3, format: 'rgb' as const });
    const plain = flow.stream({ iterations: 6 });
    const adaptive = flow.stream({ iterations: 6, tolerance: 1e-9 });
    try {
      for (let k = 0; k < 4; k++) {
        const [p, q] = [await plain.push(frame(k)), await adaptive.push(frame(k))];
        if (k === 0) continue;
        assert.equal(q!.iterations, 6);
        assert.ok(maxAbsDiff(p!.data, q!.data) <= 1e-4);
      }
    } finally {
      await plain.close();
      await adaptive.close();
    }
  });

  it('refuses a bad tolerance by name, and a tolerance on a model without refinement', async function () {
    for (const [value, code] of [[0, 'ERR_OUT_OF_RANGE'], [-1, 'ERR_OUT_OF_RANGE'], [101, 'ERR_OUT_OF_RANGE'], [Number.NaN, 'ERR_INVALID_ARG_TYPE'], ['0.1', 'ERR_INVALID_ARG_TYPE']] as const) {
      await assert.rejects(flow.estimate(a, b, { tolerance: value as number }), { code, message: /for tolerance but received/ });
    }
    const flownet = await FlowEstimator.load({ model: 'flownets', weights: 'random', device: 'cpu', threads: THREADS });
    try {
      await assert.rejects(flownet.estimate(a, b, { tolerance: 0.1 }), { code: 'ERR_INVALID_ARG_VALUE', message: /no tolerance on flownets \(only RAFT models refine iteratively\)/ });
    } finally {
      await flownet.dispose();
    }
  });
});
