import { strict as assert } from 'assert';
import { FlowError, FlowEstimator } from '../lib';
import { assertWithinFlowTolerance, checkpoint, exportModel, maxAbs, maxAbsDiff, referenceFlow, syntheticPair, THREADS } from './helpers';

for (const arch of ['flownets', 'flownetc', 'flownetc-bn', 'flownet2-c']) {
  describe(`${arch}: Node output equals PyTorch eager`, function () {
    this.timeout(120_000);
    let model: string;
    let flow: FlowEstimator;

    before(async () => {
      model = exportModel(arch, { seed: 4 });
      flow = await FlowEstimator.load({ model, device: 'cpu', threads: THREADS });
    });
    after(() => flow?.dispose());

    const sizes: [number, number][] = arch.includes('-') ? [[157, 101]] : [[256, 192], [157, 101]];
    for (const [width, height] of sizes) {
      it(`matches at ${width}x${height}${width % 64 || height % 64 ? ' (not a multiple of 64)' : ''}`, async () => {
        const [a, b] = syntheticPair(width, height, 5, -3);
        const node = await flow.estimate(a, b);
        const eager = referenceFlow(model, a, b);
        const diff = maxAbsDiff(node.data, eager);
        console.log(`      ${arch} ${width}x${height}: max |flow| ${maxAbs(eager).toFixed(2)} px, max |Node - eager| ${diff.toExponential(2)} px`);
        assert.equal(node.width, width);
        assert.ok(maxAbs(eager) > 0.01, 'the reference flow is trivially zero');
        assertWithinFlowTolerance(diff, eager);
      });
    }
  });
}

for (const arch of ['flownets', 'flownetc-bn']) {
  describe(`${arch}: FlowNetPytorch's checkpoint format ({arch, state_dict, div_flow})`, function () {
    this.timeout(120_000);

    it('loads through the converter and directly in the addon, with its div_flow, giving the same flow', async () => {
      const file = checkpoint(arch, `${arch}-fnp.pth.tar`, ['--layout', 'authors', '--seed', '8', '--div-flow', '10', '--legacy']);
      const converted = exportModel(arch, { weights: file, tag: 'fnp' });
      const architecture = exportModel(arch, { seed: 4 });
      const [a, b] = syntheticPair(128, 128, 3, 1);
      const run = async (options: { model: string; weights?: string }) => {
        const estimator = await FlowEstimator.load({ ...options, device: 'cpu', threads: THREADS });
        const field = await estimator.estimate(a, b);
        await estimator.dispose();
        return { field, info: estimator.info };
      };
      const viaConverter = await run({ model: converted });
      const direct = await run({ model: architecture, weights: file });
      const diff = maxAbsDiff(viaConverter.field.data, direct.field.data);
      console.log(`      ${arch}: converter vs addon-loaded weights, max |difference| ${diff.toExponential(2)} px`);
      assert.equal(viaConverter.info.divFlow, 10);
      assert.equal(direct.info.divFlow, 10);
      assert.ok(diff <= 1e-5, `max |difference| ${diff}`);
      // The same weights stored with div_flow 20 give twice the flow: the scale is honoured, not ignored.
      const file20 = checkpoint(arch, `${arch}-fnp20.pth.tar`, ['--layout', 'authors', '--seed', '8', '--div-flow', '20']);
      const direct20 = await run({ model: architecture, weights: file20 });
      assert.equal(direct20.info.divFlow, 20);
      assert.ok(maxAbs(direct.field.data) > 0.01);
      assert.ok(maxAbsDiff(direct.field.data.map((v) => 2 * v), direct20.field.data) <= 1e-4);
    });

    it('refuses a RAFT checkpoint, naming the keys', async () => {
      const raft = checkpoint('raft-small', `${arch}-raft.pth`, ['--layout', 'authors']);
      await assert.rejects(FlowEstimator.load({ model: exportModel(arch, { seed: 4 }), weights: raft, device: 'cpu' }),
        (e: FlowError) => e instanceof FlowError && e.code === 'ERR_WEIGHTS' && /missing keys: conv1\.0\.weight/.test(e.message)
          && /unexpected keys: fnet\.conv1\.weight/.test(e.message));
    });
  });
}
