import { strict as assert } from 'assert';
import { FlowEstimator } from '../lib';
import { assertWithinFlowTolerance, checkpoint, exportModel, maxAbs, maxAbsDiff, referenceFlow, syntheticPair, THREADS, TORCHVISION_PYTHON } from './helpers';

for (const [arch, torchvisionName] of [['raft-small', 'raft_small'], ['raft', 'raft_large']]) {
  describe(`${arch} equals torchvision's ${torchvisionName} given the same (renamed) weights`, function () {
    this.timeout(120_000);
    const seed = 11;
    let flow: FlowEstimator;
    let model: string;

    before(async () => {
      const weights = checkpoint(arch, `${arch}-torchvision.pth`, ['--layout', 'torchvision', '--seed', String(seed)]);
      // Exported by torchvision's PyTorch (1.13), which the oracle loads it in; LibTorch 2.x loads it too.
      model = exportModel(arch, { weights, tag: 'torchvision', python: TORCHVISION_PYTHON });
      flow = await FlowEstimator.load({ model, device: 'cpu', threads: THREADS });
    });
    after(() => flow?.dispose());

    for (const [width, height] of [[128, 96], [160, 120]]) {
      it(`agrees at ${width}x${height}`, async () => {
        const [a, b] = syntheticPair(width, height, -4, 3);
        const node = await flow.estimate(a, b);
        const torchvision = referenceFlow(model, a, b, { impl: 'torchvision', seed });
        const diff = maxAbsDiff(node.data, torchvision);
        console.log(`      ${arch} vs torchvision ${torchvisionName} ${width}x${height}: max |flow| ${maxAbs(torchvision).toFixed(2)} px, max |difference| ${diff.toExponential(2)} px`);
        assert.ok(maxAbs(torchvision) > 0.1, 'the reference flow is trivially zero');
        assertWithinFlowTolerance(diff, torchvision);
      });
    }
  });
}
