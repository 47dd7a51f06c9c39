import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { FlowError, FlowEstimator } from '../lib';
import { checkpoint, exportModel, maxAbsDiff, oracle, syntheticPair, THREADS, tmpDir } from './helpers';

async function flowOf(options: { model: string; weights?: string }) {
  const estimator = await FlowEstimator.load({ ...options, device: 'cpu', threads: THREADS });
  try {
    const [a, b] = syntheticPair(96, 72, 2, -3);
    return { flow: await estimator.estimate(a, b, { iterations: 4 }), estimator };
  } finally {
    await estimator.dispose();
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp) {
  await assert.rejects(promise, (error: FlowError) => {
    assert.ok(error instanceof FlowError, `expected a FlowError, got ${error}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

for (const arch of ['raft-small', 'raft']) {
  describe(`${arch}: the authors' checkpoint format (DataParallel 'module.' keys, OrderedDict)`, function () {
    this.timeout(120_000);
    let authors: string;
    let architecture: string;

    before(() => {
      authors = checkpoint(arch, `${arch}-authors.pth`, ['--layout', 'authors', '--seed', '5']);
      architecture = exportModel(arch, { seed: 99 });
    });

    it('is made in the exact layout: an OrderedDict whose every key carries the module. prefix', () => {
      const { container, keys } = JSON.parse(oracle(['keys', '--file', authors]));
      assert.equal(container, 'OrderedDict');
      assert.ok(keys.length > 100);
      assert.ok(keys.every((k: string) => k.startsWith('module.')), 'a key lacks the module. prefix');
      assert.ok(keys.includes('module.fnet.conv1.weight') && keys.includes('module.update_block.gru.convz' + (arch === 'raft' ? '1' : '') + '.weight'));
    });

    it('loads through the converter and directly in the addon, giving the same flow', async () => {
      const converted = exportModel(arch, { weights: authors, tag: 'converted' });
      const viaConverter = await flowOf({ model: converted });
      const direct = await flowOf({ model: architecture, weights: authors });
      const randomOnly = await flowOf({ model: architecture });
      const diff = maxAbsDiff(viaConverter.flow.data, direct.flow.data);
      console.log(`      ${arch}: converter vs addon-loaded weights, max |difference| ${diff.toExponential(2)} px`);
      assert.ok(diff <= 1e-5, `max |difference| ${diff}`);
      assert.ok(maxAbsDiff(direct.flow.data, randomOnly.flow.data) > 1e-3, 'the weights file changed nothing');
      assert.ok(direct.estimator.weightsLoaded.length > 50);
      assert.ok(direct.estimator.weightsLoaded.every((k) => !k.startsWith('module.')));
    });

    it('loads the legacy (pre-1.6, non-zip) serialization and a {state_dict: ...} wrapper directly', async () => {
      const legacy = checkpoint(arch, `${arch}-legacy.pth`, ['--layout', 'authors', '--seed', '5', '--legacy', '--wrap']);
      const fromLegacy = await flowOf({ model: architecture, weights: legacy });
      const fromZip = await flowOf({ model: architecture, weights: authors });
      assert.equal(maxAbsDiff(fromLegacy.flow.data, fromZip.flow.data), 0);
    });

    it('names missing, unexpected and mis-shaped keys', async () => {
      const broken = checkpoint(arch, `${arch}-broken.pth`, ['--layout', 'authors', '--drop-key', 'module.fnet.conv1.bias',
        '--extra-key', 'module.extra.weight', '--reshape-key', 'module.update_block.flow_head.conv2.bias']);
      await rejectsWith(FlowEstimator.load({ model: architecture, weights: broken, device: 'cpu' }), 'ERR_WEIGHTS',
        /missing keys: fnet\.conv1\.bias; unexpected keys: extra\.weight; mis-shaped keys: update_block\.flow_head\.conv2\.bias \(file \[7, 7\], model \[2\]\)/);
    });

    it('refuses another architecture\'s checkpoint, naming keys', async () => {
      const other = checkpoint(arch === 'raft' ? 'raft-small' : 'raft', `${arch}-other.pth`, ['--layout', 'authors']);
      await rejectsWith(FlowEstimator.load({ model: architecture, weights: other, device: 'cpu' }), 'ERR_WEIGHTS',
        /does not match the model: .*(missing|mis-shaped) keys: /);
    });

    it('also loads torchvision\'s state dict through the converter', async () => {
      const tv = checkpoint(arch, `${arch}-tv.pth`, ['--layout', 'torchvision', '--seed', '3']);
      const converted = exportModel(arch, { weights: tv, tag: 'tv3' });
      const { flow } = await flowOf({ model: converted });
      assert.equal(flow.width, 96);
    });
  });
}

describe('weights files that are not checkpoints', function () {
  this.timeout(60_000);
  let architecture: string;
  before(() => { architecture = exportModel('raft-small', { seed: 99 }); });

  it('rejects a truncated checkpoint', async () => {
    const whole = checkpoint('raft-small', 'whole.pth', ['--layout', 'authors']);
    const truncated = path.join(tmpDir(), 'truncated.pth');
    fs.writeFileSync(truncated, fs.readFileSync(whole).subarray(0, 100_000));
    await rejectsWith(FlowEstimator.load({ model: architecture, weights: truncated, device: 'cpu' }), 'ERR_WEIGHTS',
      /cannot read weights file '.*truncated\.pth'/);
  });

  it('rejects a file of text', async () => {
    const text = path.join(tmpDir(), 'notes.pth');
    fs.writeFileSync(text, 'these are not weights\n');
    await rejectsWith(FlowEstimator.load({ model: architecture, weights: text, device: 'cpu' }), 'ERR_WEIGHTS',
      /not a PyTorch checkpoint/);
  });

  it('rejects a TorchScript model given as weights, saying so', async () => {
    await rejectsWith(FlowEstimator.load({ model: architecture, weights: architecture, device: 'cpu' }), 'ERR_WEIGHTS',
      /TorchScript model, not a state dict/);
  });

  it('rejects a weights path that does not exist', async () => {
    await rejectsWith(FlowEstimator.load({ model: architecture, weights: '/nonexistent/raft.pth' }), 'ERR_WEIGHTS',
      /'\/nonexistent\/raft\.pth' does not exist/);
  });
});
