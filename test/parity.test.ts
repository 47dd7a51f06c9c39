import { strict as assert } from 'assert';
import * as path from 'path';
import { FlowEstimator } from '../lib';
import {
  assertWithinFlowTolerance, exportModel, hasSharedData, maxAbs, maxAbsDiff, readPpm, referenceFlow, SHARED_DATA, syntheticPair, THREADS,
} from './helpers';

for (const arch of ['raft-small', 'raft']) {
  describe(`${arch}: Node output equals PyTorch eager`, function () {
    this.timeout(120_000);
    let model: string;
    let flow: FlowEstimator;

    before(async () => {
      model = exportModel(arch, { seed: 7 });
      flow = await FlowEstimator.load({ model, device: 'cpu', threads: THREADS });
    });
    after(() => flow?.dispose());

    const sizes: [number, number][] = [[128, 96], [157, 101]];
    for (const [width, height] of sizes) {
      it(`matches at ${width}x${height}${width % 8 || height % 8 ? ' (not a multiple of 8)' : ''}`, async () => {
        const [a, b] = syntheticPair(width, height);
        const node = await flow.estimate(a, b);
        const eager = referenceFlow(model, a, b);
        const diff = maxAbsDiff(node.data, eager);
        console.log(`      ${arch} ${width}x${height}: max |flow| ${maxAbs(eager).toFixed(2)} px, max |Node - eager| ${diff.toExponential(2)} px`);
        assert.equal(node.width, width);
        assert.equal(node.height, height);
        assertWithinFlowTolerance(diff, eager);
      });
    }

    it('matches on a real FlyingChairs pair (512x384)', async function () {
      if (!hasSharedData()) {
        console.log(`      skipped: ${SHARED_DATA} is absent`);
        this.skip();
      }
      const a = readPpm(path.join(SHARED_DATA, 'flyingchairs', '0000000-img0.ppm'));
      const b = readPpm(path.join(SHARED_DATA, 'flyingchairs', '0000000-img1.ppm'));
      const node = await flow.estimate(a, b, { iterations: 6 });
      const eager = referenceFlow(model, a, b, { iterations: 6 });
      const diff = maxAbsDiff(node.data, eager);
      console.log(`      ${arch} 512x384 FlyingChairs: max |flow| ${maxAbs(eager).toFixed(2)} px, max |Node - eager| ${diff.toExponential(2)} px`);
      assertWithinFlowTolerance(diff, eager);
    });
  });
}
