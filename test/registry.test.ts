import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { architectures, bundledModels, FLOW_ERROR_CODES, FlowError, FlowEstimator, MAX_ITERATIONS } from '../lib';
import { native } from '../lib/binding';
import { paddingFor } from '../lib/padding';
import { exportModel, flowlib, pythonWithFlowlib, ROOT, THREADS, tmpDir } from './helpers';

// Architectures are defined once (python/flowlib/models.py); everything else reads them from there.
describe('one registry of architectures', function () {
  this.timeout(120_000);

  it('models/architectures.json is what the Python registry prints', () => {
    const printed = JSON.parse(flowlib('models', []));
    const committed = JSON.parse(fs.readFileSync(path.join(ROOT, 'models', 'architectures.json'), 'utf8'));
    assert.deepEqual(committed, printed,
      'models/architectures.json is stale: run `scripts/python -m flowlib.models > models/architectures.json`');
    assert.deepEqual([...bundledModels()].sort(), Object.keys(printed).sort());
  });

  it('each bundled export carries the registry\'s properties, and the library reads them from the export', async () => {
    for (const name of bundledModels()) {
      const flow = await FlowEstimator.load({ model: name, weights: 'random', device: 'cpu', threads: THREADS });
      try {
        const expected = architectures()[name];
        assert.deepEqual([flow.info.arch, flow.info.stride, flow.info.minSize, flow.info.defaultIterations],
          [name, expected.stride, expected.min_size, expected.default_iterations], name);
      } finally {
        await flow.dispose();
      }
    }
  });

  it('the addon raises only FlowError codes and caps iterations where the library does', () => {
    const codes = native().errorCodes;
    assert.ok(codes.length >= 8, `the addon lists ${codes.length} codes`);
    for (const code of codes) assert.ok((FLOW_ERROR_CODES as readonly string[]).includes(code), `native code ${code} is not in FLOW_ERROR_CODES`);
    assert.equal(new Set(codes).size, codes.length, 'native codes are distinct');
    assert.equal(native().maxIterations, MAX_ITERATIONS);
  });

  it('reports a code the addon should never raise as ERR_INFERENCE, naming it, and passes known codes through', () => {
    const stray = FlowError.fromNative(Object.assign(new Error('it broke'), { code: 'ERR_BOGUS' }), undefined);
    assert.equal(stray.code, 'ERR_INFERENCE');
    assert.equal(stray.message, 'it broke (native code ERR_BOGUS)');
    const known = FlowError.fromNative(Object.assign(new Error('no such device'), { code: 'ERR_DEVICE' }), undefined);
    assert.deepEqual([known.code, known.message], ['ERR_DEVICE', 'no such device']);
    const uncoded = FlowError.fromNative('plain text', undefined);
    assert.deepEqual([uncoded.code, uncoded.message], ['ERR_INFERENCE', 'plain text']);
  });

  it('pads frames the same way in TypeScript, C++ and Python', () => {
    const cases: [number, number, number, number][] = [];
    for (const [stride, minSize] of [[8, 64], [64, 64], [8, 8], [4, 100], [1, 1]]) {
      for (const [height, width] of [[8, 8], [63, 65], [64, 64], [101, 157], [436, 1024], [375, 1242], [1, 700]]) {
        cases.push([height, width, stride, minSize]);
      }
    }
    const python = JSON.parse(pythonWithFlowlib(
      `import json; from flowlib.padding import padding_for\n` +
      `print(json.dumps([padding_for(h, w, stride=s, min_size=m) for h, w, s, m in ${JSON.stringify(cases)}]))`)) as number[][];
    cases.forEach(([height, width, stride, minSize], k) => {
      const ts = paddingFor(height, width, stride, minSize);
      const cpp = native().paddingFor(height, width, stride, minSize);
      const py = python[k];
      const label = `${height}x${width}, stride ${stride}, min ${minSize}`;
      assert.deepEqual(cpp, ts, `C++ vs TypeScript, ${label}`);
      assert.deepEqual([ts.top, ts.left, ts.paddedHeight, ts.paddedWidth], py, `TypeScript vs Python, ${label}`);
      assert.ok(ts.paddedHeight % stride === 0 && ts.paddedHeight >= Math.max(height, minSize), label);
    });
  });

  describe('an export whose properties are out of range is refused on load, naming the property', () => {
    const cases: [string, string, RegExp][] = [
      ['stride 0', 'flow_stride = 0', /declares flow_stride = 0, outside 1\.\.64/],
      ['a stride that is not a power of two', 'flow_stride = 24', /declares flow_stride = 24, not a power of two/],
      ['a huge stride', 'flow_stride = 99999999999', /declares flow_stride = 99999999999, outside 1\.\.64/],
      ['a minimum size of 20000', 'flow_min_size = 20000', /declares flow_min_size = 20000, outside 1\.\.1024/],
      ['a billion default iterations', 'flow_default_iterations = 1000000000', /flow_default_iterations = 1000000000, outside 1\.\.100/],
    ];
    for (const [what, assignment, message] of cases) {
      it(what, async () => {
        const out = path.join(tmpDir(), `bad-${assignment.replace(/\W+/g, '-')}.pt`);
        pythonWithFlowlib(`import json, torch\nfrom flowlib import models\nm = models.build('raft-small').eval()\n` +
          `models.attach_metadata(m, models.metadata('raft-small', name='bad', trained_on='random', weights_source='random'))\n` +
          `m.${assignment}\ntorch.jit.script(m).save(${JSON.stringify(out)})`);
        await assert.rejects(FlowEstimator.load({ model: out, device: 'cpu' }),
          (e: FlowError) => e instanceof FlowError && e.code === 'ERR_MODEL_LOAD' && message.test(e.message) || assert.fail(e));
      });
    }
    it('an export from before the typed properties, saying to export it again', async () => {
      const out = path.join(tmpDir(), 'untyped.pt');
      pythonWithFlowlib(`import json, torch\nfrom flowlib import models\nm = models.build('raft-small').eval()\n` +
        `m.flow_metadata = json.dumps(models.metadata('raft-small', name='old', trained_on='random', weights_source='random'))\n` +
        `torch.jit.script(m).save(${JSON.stringify(out)})`);
      await assert.rejects(FlowEstimator.load({ model: out, device: 'cpu' }),
        (e: FlowError) => e.code === 'ERR_MODEL_LOAD' && /has no integer attribute 'flow_stride' \(it was exported by an older version/.test(e.message));
    });
    it('a valid export still loads', async () => {
      const flow = await FlowEstimator.load({ model: exportModel('raft-small'), device: 'cpu', threads: THREADS });
      assert.equal(flow.info.stride, 8);
      await flow.dispose();
    });
  });
});
