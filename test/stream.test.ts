import { strict as assert } from 'assert';
import { FlowError, FlowEstimator } from '../lib';
import { exportModel, maxAbsDiff, syntheticPair, THREADS } from './helpers';

function clip(count: number) {
  // A scene panning steadily: frame k is the pattern moved by k * (2, 1) pixels.
  return Array.from({ length: count }, (_, k) => syntheticPair(136, 104, 2 * k, k)[1]);
}

for (const arch of ['raft-small', 'raft']) {
  describe(`${arch}: video streams`, function () {
    this.timeout(120_000);
    let flow: FlowEstimator;
    let model: string;

    before(async () => {
      model = exportModel(arch, { seed: 6 });
      flow = await FlowEstimator.load({ model, device: 'cpu', threads: THREADS });
    });
    after(() => flow?.dispose());

    it('with feature reuse gives the flow of independent pairs', async () => {
      const frames = clip(4);
      const stream = flow.stream({ reuseFeatures: true, warmStart: false, iterations: 6 });
      assert.equal(await stream.push(frames[0]), null);
      for (let k = 1; k < frames.length; k++) {
        const streamed = await stream.push(frames[k]);
        const pair = await flow.estimate(frames[k - 1], frames[k], { iterations: 6 });
        const diff = maxAbsDiff(streamed!.data, pair.data);
        if (k === 1) console.log(`      ${arch}: stream with feature reuse vs independent pair, max |difference| ${diff.toExponential(2)} px`);
        assert.ok(diff <= 1e-4, `pair ${k}: ${diff}`);
      }
      await stream.close();
    });

    it('warm start starts the second pair from the first pair\'s flow', async () => {
      const frames = clip(3);
      const warm = flow.stream({ warmStart: true, iterations: 4 });
      const cold = flow.stream({ warmStart: false, iterations: 4 });
      const results = [];
      for (const frame of frames) results.push([await warm.push(frame), await cold.push(frame)]);
      assert.equal(maxAbsDiff(results[1][0]!.data, results[1][1]!.data), 0, 'the first pair has nothing to start from');
      assert.ok(maxAbsDiff(results[2][0]!.data, results[2][1]!.data) > 1e-4, 'warm start changed nothing');
      await Promise.all([warm.close(), cold.close()]);
    });

    it('refuses a frame of another size within a stream, and use after close', async () => {
      const stream = flow.stream();
      await stream.push(syntheticPair(96, 72)[0]);
      await assert.rejects(stream.push(syntheticPair(104, 72)[0]),
        (e: FlowError) => e.code === 'ERR_INPUT_SIZE' && /frame size changed within a video from 96x72 to 104x72/.test(e.message));
      await stream.close();
      await assert.rejects(stream.push(syntheticPair(96, 72)[0]), (e: FlowError) => e.code === 'ERR_DISPOSED');
      assert.throws(() => flow.stream({ warmstart: true } as never), /Unknown option 'warmstart' in stream options; did you mean 'warmStart'\?/);
    });
  });
}

describe('flownets: streams fall back to independent pairs', function () {
  this.timeout(60_000);
  it('gives the pair flow', async () => {
    const flow = await FlowEstimator.load({ model: exportModel('flownets', { seed: 4 }), device: 'cpu', threads: THREADS });
    const frames = clip(2);
    const stream = flow.stream();
    await stream.push(frames[0]);
    const streamed = await stream.push(frames[1]);
    const pair = await flow.estimate(frames[0], frames[1]);
    assert.equal(maxAbsDiff(streamed!.data, pair.data), 0);
    await flow.dispose();
  });
});

