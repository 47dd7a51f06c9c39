// RAFT's correlation on the fly (each lookup window computed from the features) against the all-pairs volume:
// the same flow through every entry point, chosen by frame size under 'auto', and refused where it cannot apply.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FlowError, FlowEstimator } from '../lib';
import { makeDemoClip } from '../lib/cli/demoClip';
import { ALL_PAIRS_VOLUME_LIMIT, correlatesOnTheFly, estimateRequestMemory } from '../lib/memory';
import { exportModel, maxAbs, maxAbsDiff, PYTHON, ROOT, syntheticPair, THREADS, tmpDir } from './helpers';

const TOLERANCE = 1e-4;

describe('correlation on the fly equals the all-pairs volume', function () {
  this.timeout(180_000);
  let small: FlowEstimator;
  let large: FlowEstimator;
  const [a, b] = syntheticPair(200, 120, 7, -4);

  before(async () => {
    small = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: THREADS });
    large = await FlowEstimator.load({ model: exportModel('raft', { seed: 3 }), device: 'cpu', threads: THREADS });
  });
  after(async () => { await small?.dispose(); await large?.dispose(); });

  for (const name of ['raft-small (bundled weights)', 'raft (random weights)']) {
    it(`${name}: estimate(), 12 iterations`, async () => {
      const flow = name.startsWith('raft-small') ? small : large;
      const volume = await flow.estimate(a, b, { correlation: 'all-pairs' });
      const onTheFly = await flow.estimate(a, b, { correlation: 'on-the-fly' });
      const diff = maxAbsDiff(onTheFly.data, volume.data);
      console.log(`      ${name} 200x120: max |flow| ${maxAbs(volume.data).toFixed(2)} px, max |on the fly - all pairs| ${diff.toExponential(2)} px`);
      assert.ok(maxAbs(volume.data) > 0.5, 'the flow is trivially small');
      assert.ok(diff <= TOLERANCE, `max |difference| ${diff}`);
    });
  }

  it('with a tolerance (adaptive refinement), the same iterations and flow', async () => {
    const volume = await small.estimate(a, b, { iterations: 20, tolerance: 0.05, correlation: 'all-pairs' });
    const onTheFly = await small.estimate(a, b, { iterations: 20, tolerance: 0.05, correlation: 'on-the-fly' });
    assert.equal(onTheFly.iterations, volume.iterations);
    assert.ok(maxAbsDiff(onTheFly.data, volume.data) <= TOLERANCE);
  });

  it('in a warm-started stream with feature reuse, pair by pair', async () => {
    const clip = makeDemoClip(160, 120, 5);
    const frames = clip.frames.map((data) => ({ data, width: 160, height: 120 }));
    const volume = small.stream({ iterations: 6, correlation: 'all-pairs' });
    const onTheFly = small.stream({ iterations: 6, correlation: 'on-the-fly' });
    let worst = 0;
    for (const frame of frames) {
      const [x, y] = [await volume.push(frame), await onTheFly.push(frame)];
      if (x && y) worst = Math.max(worst, maxAbsDiff(y.data, x.data));
    }
    await volume.close();
    await onTheFly.close();
    console.log(`      stream of ${frames.length} frames: max |on the fly - all pairs| ${worst.toExponential(2)} px`);
    assert.ok(worst <= TOLERANCE, `max |difference| ${worst}`);
  });
});

describe("correlation: 'auto' by frame size, and bad values", function () {
  this.timeout(120_000);
  let flow: FlowEstimator;
  before(async () => { flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: THREADS }); });
  after(() => flow?.dispose());

  it('auto keeps the volume while it is under the limit and computes on the fly above it', () => {
    const raft = flow.info;
    assert.equal(correlatesOnTheFly(raft, 1024, 440, 'auto'), false);
    assert.equal(correlatesOnTheFly(raft, 1920, 1080, 'auto'), true);
    assert.equal(correlatesOnTheFly(raft, 1920, 1080, 'all-pairs'), false);
    assert.equal(correlatesOnTheFly(raft, 64, 64, 'on-the-fly'), true);
    assert.equal(correlatesOnTheFly({ family: 'flownet', stride: 64, minSize: 64 }, 4096, 4096, 'auto'), false);
    // The switch sits where the volume (4 bytes per pair of 1/8-resolution positions) passes the limit.
    const positions = (w: number, h: number) => (w / 8) * (h / 8);
    assert.ok(4 * positions(1280, 720) ** 2 > ALL_PAIRS_VOLUME_LIMIT && 4 * positions(1024, 440) ** 2 < ALL_PAIRS_VOLUME_LIMIT);
    assert.equal(estimateRequestMemory(raft, 1920, 1080, true).correlation, 0);
    assert.ok(flow.memoryNeeded(1920, 1080) < 2 * 2 ** 30, `1080p estimated at ${flow.memoryNeeded(1920, 1080)} bytes`);
    assert.equal(flow.memoryNeeded(1920, 1080), flow.memoryNeeded(1920, 1080, 'on-the-fly'));
    assert.ok(flow.memoryNeeded(1920, 1080, 'all-pairs') > 8 * 2 ** 30);
  });

  it('a frame refused with the volume is taken on the fly; the refusal names the way out', async () => {
    const big = { data: new Uint8Array(2048 * 1536 * 3), width: 2048, height: 1536 };
    await assert.rejects(flow.estimate(big, big, { correlation: 'all-pairs' }), (e: FlowError) => e.code === 'ERR_INPUT_SIZE' &&
      /^a 2048x1536 pair on raft-small needs about 19\.\d GB \(all-pairs correlation 9\.\d GB\), over this model's memoryLimit of [\d.]+ GB: use smaller frames, correlation 'on-the-fly', or raise memoryLimit$/.test(e.message) || assert.fail(e));
    const huge = { data: new Uint8Array(8192 * 6144), width: 8192, height: 6144, channels: 1 };
    await assert.rejects(flow.estimate(huge, huge), (e: FlowError) => e.code === 'ERR_INPUT_SIZE' &&
      /^a 8192x6144 pair on raft-small needs about \d+\.\d GB, over this model's memoryLimit of [\d.]+ GB: use smaller frames, or raise memoryLimit$/.test(e.message) || assert.fail(e));
  });

  it('names a bad correlation value, for pairs and streams', async () => {
    const [a, b] = syntheticPair(64, 64);
    await assert.rejects(flow.estimate(a, b, { correlation: 'fast' as never }), (e: TypeError & { code?: string }) =>
      e instanceof TypeError && e.code === 'ERR_INVALID_ARG_VALUE' &&
      e.message === 'Expected \'auto\', \'all-pairs\' or \'on-the-fly\' for correlation but received "fast"');
    assert.throws(() => flow.stream({ correlation: 3 as never }), (e: TypeError) =>
      e.message === "Expected 'auto', 'all-pairs' or 'on-the-fly' for correlation but received number 3");
    await assert.rejects(flow.estimate(a, b, { corelation: 'auto' } as never), /correlation/);
  });

  it("refuses 'on-the-fly' on FlowNet, which has no correlation lookups", async () => {
    const flownet = await FlowEstimator.load({ model: exportModel('flownetc', { seed: 1 }), device: 'cpu', threads: THREADS });
    try {
      const [a, b] = syntheticPair(64, 64);
      await assert.rejects(flownet.estimate(a, b, { correlation: 'on-the-fly' }), (e: TypeError) =>
        e.message === 'Expected \'auto\' or \'all-pairs\' on flownetc-seed1 (only RAFT models look correlations up) for correlation but received "on-the-fly"');
      assert.equal((await flownet.estimate(a, b, { correlation: 'all-pairs' })).width, 64);
    } finally {
      await flownet.dispose();
    }
  });

  it('an export made before on-the-fly correlation runs all-pairs and refuses on-the-fly by name', async () => {
    const old = path.join(tmpDir(), 'raft-small-without-on-the-fly.pt');
    // TorchScript compiles from source files, so the older model is written to one.
    const program = path.join(tmpDir(), 'older_export.py');
    fs.writeFileSync(program, `
import json, torch
from typing import Optional, Tuple
from torch import Tensor
from flowlib import models
from flowlib.raft import RAFT
class Older(RAFT):
    @torch.jit.export
    def refine(self, fmap1: Tensor, fmap2: Tensor, net: Tensor, inp: Tensor, iterations: int,
               flow_init: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        flows, low, _ = self.iterate(fmap1, fmap2, net, inp, iterations, flow_init, False)
        return flows[-1], low
torch.manual_seed(0)
model = Older(small=True).eval()
models.attach_metadata(model, models.metadata("raft-small", name="older", trained_on="random", weights_source="random"))
torch.jit.script(model).save(${JSON.stringify(old)})
`);
    const made = spawnSync(PYTHON, [program], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } });
    assert.equal(made.status, 0, made.stderr);
    const older = await FlowEstimator.load({ model: old, device: 'cpu', threads: THREADS });
    try {
      const [a, b] = syntheticPair(64, 64);
      assert.equal((await older.estimate(a, b, { iterations: 2 })).iterations, 2);
      await assert.rejects(older.estimate(a, b, { iterations: 2, correlation: 'on-the-fly' }), (e: FlowError) =>
        e.code === 'ERR_INFERENCE' && e.message === "this export has no on-the-fly correlation (refine takes no on_the_fly): " +
          "re-export it with this version, or use correlation 'all-pairs'");
    } finally {
      await older.dispose();
    }
  });
});
