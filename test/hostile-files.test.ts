import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { FlowError, FlowEstimator } from '../lib';
import { PYTHON, pythonWithFlowlib, ROOT, syntheticPair, THREADS, tmpDir } from './helpers';

/** One named hostile file from the fuzz corpus generator (test/fuzz/corpus.py --craft). */
function craft(name: string): string {
  const out = path.join(tmpDir(), `crafted-${name}.pt`);
  const result = spawnSync(PYTHON, [path.join(ROOT, 'test', 'fuzz', 'corpus.py'), '--craft', name, '--out', out],
    { encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } });
  if (result.status !== 0) throw new Error(result.stderr);
  return out;
}

const BUNDLED = path.join(ROOT, 'models', 'raft-small.pt');

// Each finding of the hostile-file review, as the coded error it now is (the fuzz test covers the rest at random).
describe('hostile weights files are coded errors naming the file and the fault', function () {
  this.timeout(120_000);
  const cases: [string, RegExp][] = [
    ['storage-1-byte', /storage \d+ holds 1 bytes, not a whole number of 4-byte elements/],
    ['storage-short-by-2', /storage \d+ holds \d+ bytes, not a whole number of 4-byte elements/],
    ['strides-short', /a tensor with 4 sizes but 3 strides/],
    ['strides-empty', /a tensor with 4 sizes but 0 strides/],
    ['nested-lists', /builds more objects than a checkpoint of its size can|nests containers deeper than 1000/],
    ['nested-tuples', /builds more objects than a checkpoint of its size can|nests containers deeper than 1000/],
    ['nested-dicts', /builds more objects than a checkpoint of its size can|nests containers deeper than 1000/],
    ['marks-20mb', /corrupt pickle \(a MARK where a value belongs\)/],
    ['flipped-tensor-data', /record 'data\/\d+' is corrupt \(its CRC-32 does not match\)/],
    ['local-header-shifted', /record '.*' is corrupt \(its CRC-32 does not match\)/],
    ['legacy-huge-count', /storage \d+ declares 2305843009213693953 elements, more than the file holds/],
  ];
  for (const [name, message] of cases) {
    it(name, async () => {
      const file = craft(name);
      await assert.rejects(FlowEstimator.load({ model: BUNDLED, weights: file, device: 'cpu', threads: THREADS }),
        (e: FlowError) => e instanceof FlowError && e.code === 'ERR_WEIGHTS' &&
          e.message.startsWith(`cannot read weights file '${file}': `) && message.test(e.message) || assert.fail(e));
    });
  }
});

describe('weights files whose keys would make renaming slow are refused before any rule runs', function () {
  this.timeout(120_000);
  const cases: [string, string, RegExp][] = [
    ['20,000 keys', "{'fnet.convnormrelu' * 30 + str(i): t for i in range(20000)}", /holds 20000 tensors; the model has 106: these are not weights for this architecture/],
    ['a 1501-character key', "{'fnet.' * 300 + str(i): t for i in range(3)}", /has a key of 1501 characters \(at most 1024 are read\)/],
  ];
  for (const [name, dict, message] of cases) {
    it(name, async () => {
      const file = path.join(tmpDir(), `keys-${name.replace(/\W+/g, '-')}.pth`);
      pythonWithFlowlib(`import torch\nt = torch.zeros(1)\ntorch.save(${dict}, ${JSON.stringify(file)})`);
      const started = Date.now();
      await assert.rejects(FlowEstimator.load({ model: BUNDLED, weights: file, device: 'cpu', threads: THREADS }),
        (e: FlowError) => e instanceof FlowError && e.code === 'ERR_WEIGHTS' && message.test(e.message) || assert.fail(e));
      console.log(`      refused in ${Date.now() - started} ms`);
    });
  }
});

describe('hostile exports are coded errors on load, or on the estimate that would go wrong', function () {
  this.timeout(120_000);
  const onLoad: [string, RegExp][] = [
    ['export-stride-0', /declares flow_stride = 0, outside 1\.\.64/],
    ['export-stride-huge', /declares flow_stride = 99999999999, outside 1\.\.64/],
    ['export-min-size-20000', /declares flow_min_size = 20000, outside 1\.\.1024/],
    ['export-iterations-1e9', /declares flow_default_iterations = 1000000000, outside 1\.\.100/],
    ['export-storage-short', /tensor record data\/0 holds \d+ bytes, its storage declares \d+/],
    ['export-view-past-storage', /a tensor in data\.pkl reaches past its storage data\/0 \(2352 elements\)/],
    ['export-debug-memo-huge', /corrupt pickle \(memo key 400000000 out of order\) in code\/__torch__\/.*\.debug_pkl$/],
  ];
  for (const [name, message] of onLoad) {
    it(name, async () => {
      await assert.rejects(FlowEstimator.load({ model: craft(name), device: 'cpu', threads: THREADS }),
        (e: FlowError) => e.code === 'ERR_MODEL_LOAD' && message.test(e.message) || assert.fail(e));
    });
  }

  it('non-finite flow (from NaN weights) is ERR_INFERENCE naming the likely cause, not a result', async () => {
    const flow = await FlowEstimator.load({ model: craft('export-nan-weights'), device: 'cpu', threads: THREADS });
    const [a, b] = syntheticPair(64, 64);
    await assert.rejects(flow.estimate(a, b, { iterations: 2 }), (e: FlowError) => e.code === 'ERR_INFERENCE' &&
      /the model produced non-finite flow \(NaN or infinity\) for this pair: its weights are likely corrupt/.test(e.message));
    await flow.dispose();
  });
});

describe('frames too large for the memory limit are refused before anything is allocated', function () {
  this.timeout(60_000);
  let flow: FlowEstimator;
  before(async () => { flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: THREADS }); });
  after(() => flow?.dispose());

  it('a 2048x1536 pair on raft-small with the all-pairs volume, with the default limit (half the machine\'s memory)', async () => {
    const big = { data: new Uint8Array(2048 * 1536 * 3), width: 2048, height: 1536 };
    const started = Date.now();
    await assert.rejects(flow.estimate(big, big, { correlation: 'all-pairs' }), (e: FlowError) => e.code === 'ERR_INPUT_SIZE' &&
      /^a 2048x1536 pair on raft-small needs about 19\.\d GB \(all-pairs correlation 9\.\d GB\), over this model's memoryLimit of [\d.]+ GB: use smaller frames, correlation 'on-the-fly', or raise memoryLimit$/.test(e.message) || assert.fail(e));
    assert.ok(Date.now() - started < 1000, 'refused without running');
    assert.ok(flow.memoryLimit > 0);
  });

  it('a lower memoryLimit refuses 640x512 and accepts 320x256, for pairs and for streams', async () => {
    const small = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: THREADS, memoryLimit: 256 * 2 ** 20 });
    try {
      const frame = (w: number, h: number) => ({ data: new Uint8Array(w * h * 3).map((_, i) => i % 251), width: w, height: h });
      await assert.rejects(small.estimate(frame(640, 512), frame(640, 512)),
        (e: FlowError) => e.code === 'ERR_INPUT_SIZE' && /over this model's memoryLimit of 256 MB/.test(e.message));
      assert.equal((await small.estimate(frame(320, 256), frame(320, 256), { iterations: 1 })).width, 320);
      const stream = small.stream({ iterations: 1 });
      await assert.rejects(stream.push(frame(640, 512)), (e: FlowError) => e.code === 'ERR_INPUT_SIZE');
      await stream.close();
    } finally {
      await small.dispose();
    }
    await assert.rejects(FlowEstimator.load({ model: 'raft-small', weights: 'bundled', memoryLimit: 1000 }),
      (e: RangeError & { code?: string }) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE' && /memoryLimit/.test(e.message));
  });
});
