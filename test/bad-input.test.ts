import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { FlowError, FlowEstimator, ImageLike } from '../lib';
import { checkpoint, exportModel, PYTHON, syntheticPair, THREADS, tmpDir } from './helpers';

type Expected = { type: abstract new (...args: never[]) => Error; code: string; message: RegExp };

async function expectError(action: () => Promise<unknown>, expected: Expected) {
  await assert.rejects(action, (error: Error & { code?: string }) => {
    assert.ok(error instanceof expected.type, `expected ${expected.type.name}, got ${error?.constructor?.name}: ${error?.message}`);
    assert.equal(error.code, expected.code, `code of "${error.message}"`);
    assert.match(error.message, expected.message);
    return true;
  });
}

describe('bad input: every entry point answers with a typed error and the process keeps running', function () {
  this.timeout(60_000);
  let model: string;
  let flow: FlowEstimator;
  let a: ImageLike;
  let b: ImageLike;

  before(async () => {
    model = exportModel('raft-small', { seed: 3 });
    flow = await FlowEstimator.load({ model, device: 'cpu', threads: THREADS });
    [a, b] = syntheticPair(64, 48);
  });
  after(() => flow?.dispose());

  describe('FlowEstimator.load', () => {
    it('rejects options that are not an object', () => expectError(() => FlowEstimator.load('raft' as never),
      { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected an options object for load options but received "raft"$/ }));
    it('rejects a misspelled option, suggesting the right name', () => expectError(() => FlowEstimator.load({ model, devcie: 'cpu' } as never),
      { type: TypeError, code: 'ERR_UNKNOWN_OPTION', message: /^Unknown option 'devcie' in load options; did you mean 'device'\?$/ }));
    it('rejects a model that is not a string', () => expectError(() => FlowEstimator.load({ model: 42 as never }),
      { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected a non-empty string for model but received number 42$/ }));
    it('rejects an unknown bundled name, suggesting the closest', () => expectError(() => FlowEstimator.load({ model: 'raft-smal' }),
      { type: FlowError, code: 'ERR_MODEL_LOAD', message: /^unknown model 'raft-smal'; did you mean 'raft-small'\?$/ }));
    it('rejects download options of the wrong type or range, naming the option', async () => {
      await expectError(() => FlowEstimator.load({ weights: 7 as never }),
        { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected a non-empty string for weights but received number 7$/ });
      await expectError(() => FlowEstimator.load({ model: 'raft', offline: 'yes' as never }),
        { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected a boolean for offline but received "yes"$/ });
      await expectError(() => FlowEstimator.load({ model: 'raft', mirror: 'ftp://example.org' }),
        { type: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /^Expected an http\(s\) base URL for mirror but received "ftp:\/\/example\.org"$/ });
      await expectError(() => FlowEstimator.load({ model: 'raft', downloadTimeout: 0 }),
        { type: RangeError, code: 'ERR_OUT_OF_RANGE', message: /^Expected an integer between 1 and 3600000 for downloadTimeout but received number 0$/ });
      await expectError(() => FlowEstimator.load({ model: 'raft', onProgress: 'x' as never }),
        { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected a function for onProgress but received "x"$/ });
    });
    it('rejects a missing weights file', () => expectError(() => FlowEstimator.load({ model: 'raft', weights: '/nonexistent/w.pth' }),
      { type: FlowError, code: 'ERR_WEIGHTS', message: /^weights file '\/nonexistent\/w\.pth' does not exist$/ }));
    it('rejects a missing model file', () => expectError(() => FlowEstimator.load({ model: '/nonexistent/model.pt' }),
      { type: FlowError, code: 'ERR_MODEL_LOAD', message: /^model file '\/nonexistent\/model\.pt' does not exist$/ }));
    it('rejects a truncated model file', async () => {
      const truncated = path.join(tmpDir(), 'truncated.pt');
      fs.writeFileSync(truncated, fs.readFileSync(model).subarray(0, 50_000));
      await expectError(() => FlowEstimator.load({ model: truncated, device: 'cpu' }),
        { type: FlowError, code: 'ERR_MODEL_LOAD', message: /^cannot read model file '.*truncated\.pt': no zip end-of-directory record \(truncated file\?\)$/ });
    });
    it('rejects a file that is not a model at all', async () => {
      const text = path.join(tmpDir(), 'readme.pt');
      fs.writeFileSync(text, 'not a model');
      await expectError(() => FlowEstimator.load({ model: text, device: 'cpu' }),
        { type: FlowError, code: 'ERR_MODEL_LOAD', message: /readme\.pt' is not a TorchScript export \(not a zip archive\)/ });
    });
    it('rejects a TorchScript module that is not a flow export', async () => {
      const other = path.join(tmpDir(), 'linear.pt');
      const script = `import torch; torch.jit.script(torch.nn.Linear(2, 2)).save(${JSON.stringify(other)})`;
      require('child_process').execFileSync(PYTHON, ['-c', script]);
      await expectError(() => FlowEstimator.load({ model: other, device: 'cpu' }),
        { type: FlowError, code: 'ERR_MODEL_LOAD', message: /is a TorchScript module but not an optical-flow export/ });
    });
    it('rejects a checkpoint given as the model, saying what to do', async () => {
      const ckpt = checkpoint('raft-small', 'as-model.pth', ['--layout', 'authors']);
      await expectError(() => FlowEstimator.load({ model: ckpt, device: 'cpu' }),
        { type: FlowError, code: 'ERR_MODEL_LOAD', message: /is a PyTorch checkpoint \(state dict\), not a TorchScript export: pass it as `weights`/ });
    });
    it('rejects an unknown device name', () => expectError(() => FlowEstimator.load({ model, device: 'gpu' as never }),
      { type: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /^Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for device but received "gpu"$/ }));
    for (const device of ['cuda', 'cuda:1'] as const) {
      it(`rejects ${device} where CUDA is absent, saying so`, async function () {
        const { capabilities } = await import('../lib');
        if (capabilities().cuda) this.skip();
        await expectError(() => FlowEstimator.load({ model, device }),
          { type: FlowError, code: 'ERR_DEVICE', message: new RegExp(`^device '${device}' was requested but CUDA is not available`) });
      });
    }
    it("resolves 'auto' to the CPU where CUDA is absent", async () => {
      const auto = await FlowEstimator.load({ model, device: 'auto', threads: 1 });
      assert.equal(auto.device, 'cpu');
      await auto.dispose();
    });
    it('rejects a thread count out of range', () => expectError(() => FlowEstimator.load({ model, threads: 0 }),
      { type: RangeError, code: 'ERR_OUT_OF_RANGE', message: /^Expected an integer between 1 and 1024 for threads but received number 0$/ }));
    it('rejects a fractional thread count', () => expectError(() => FlowEstimator.load({ model, threads: 1.5 }),
      { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected an integer between 1 and 1024 for threads but received number 1.5$/ }));
    it('rejects a queue limit out of range', () => expectError(() => FlowEstimator.load({ model, queueLimit: -1 }),
      { type: RangeError, code: 'ERR_OUT_OF_RANGE', message: /for queueLimit but received number -1$/ }));
  });

  describe('estimate', () => {
    const bad = (frameA: unknown, frameB: unknown, options?: unknown) => () => flow.estimate(frameA as never, frameB as never, options as never);

    it('rejects a frame that is not an image', () => expectError(bad(null, b),
      { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected an image \(\{ data, width, height \}\) or an OpenCV Mat for frameA but received null$/ }));
    it('rejects a frame that is a number', () => expectError(bad(a, 7),
      { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /for frameB but received number 7$/ }));
    it('rejects pixel data of an unsupported type', () => expectError(bad({ ...a, data: new Int16Array(64 * 48 * 3) }, b),
      { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected a Uint8Array, Uint8ClampedArray, Buffer or Float32Array for frameA.data but received Int16Array of length 9216$/ }));
    it('rejects a wrong channel count', () => expectError(bad({ ...a, channels: 2 }, b),
      { type: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /^Expected 1, 3 or 4 for frameA.channels but received number 2$/ }));
    it('rejects a format that contradicts the channels', () => expectError(bad({ ...a, format: 'rgba' }, b),
      { type: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /^Expected a format with 3 channel\(s\) for frameA.format but received "rgba"$/ }));
    it('rejects data shorter than the frame', () => expectError(bad({ ...a, data: a.data.subarray(0, 100) }, b),
      { type: FlowError, code: 'ERR_INPUT_SIZE', message: /^frameA.data has 100 values but 64x48x3 needs 9216$/ }));
    it('rejects data whose length fits no channel count', () => expectError(bad({ data: a.data.subarray(0, 100), width: 64, height: 48 }, b),
      { type: FlowError, code: 'ERR_INPUT_SIZE', message: /^frameA.data has 100 values, which is not 64x48 pixels of 1, 3 or 4 channels$/ }));
    it('rejects frames of different sizes', () => expectError(bad(a, syntheticPair(72, 48)[1]),
      { type: FlowError, code: 'ERR_INPUT_SIZE', message: /^frameA is 64x48 but frameB is 72x48; both frames must have the same size$/ }));
    it('rejects frames smaller than the model takes', () => {
      const [ta, tb] = syntheticPair(6, 6);
      return expectError(bad(ta, tb), { type: FlowError, code: 'ERR_INPUT_SIZE', message: /^frames are 6x6; the smallest this model takes is 8x8$/ });
    });
    it('rejects a non-integer width', () => expectError(bad({ ...a, width: 63.5 }, b),
      { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected an integer for frameA.width but received number 63.5$/ }));
    it('rejects NaN in float pixels', () => {
      const data = Float32Array.from(a.data);
      data[5] = NaN;
      return expectError(bad({ ...a, data }, b), { type: RangeError, code: 'ERR_OUT_OF_RANGE', message: /^Expected a finite pixel value \(0..255\) for frameA.data\[5\] but received number NaN$/ });
    });
    it('rejects a Mat of an unsupported depth', () => {
      const mat = { rows: 48, cols: 64, channels: 3, type: 18 /* CV_16UC3 */, getData: () => Buffer.alloc(64 * 48 * 6) };
      return expectError(bad(mat, b), { type: TypeError, code: 'ERR_INVALID_ARG_VALUE', message: /^Expected a Mat of depth CV_8U or CV_32F for frameA.type but received "type 18 \(depth 2\)"$/ });
    });
    it('rejects an empty Mat', () => {
      const mat = { rows: 0, cols: 0, channels: 3, type: 16, getData: () => Buffer.alloc(0) };
      return expectError(bad(mat, b), { type: FlowError, code: 'ERR_INPUT_SIZE', message: /^frameA is an empty Mat \(0x0\)$/ });
    });
    it('rejects iterations out of range', () => expectError(bad(a, b, { iterations: 0 }),
      { type: RangeError, code: 'ERR_OUT_OF_RANGE', message: /^Expected an integer between 1 and 100 for iterations but received number 0$/ }));
    it('rejects iterations of the wrong type', () => expectError(bad(a, b, { iterations: '12' }),
      { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected an integer between 1 and 100 for iterations but received "12"$/ }));
    it('rejects a misspelled option, suggesting the right name', () => expectError(bad(a, b, { iteration: 3 }),
      { type: TypeError, code: 'ERR_UNKNOWN_OPTION', message: /^Unknown option 'iteration' in estimate options; did you mean 'iterations'\?$/ }));
    it('rejects a signal that is not an AbortSignal', () => expectError(bad(a, b, { signal: {} }),
      { type: TypeError, code: 'ERR_INVALID_ARG_TYPE', message: /^Expected an AbortSignal for signal but received an object$/ }));
    it('still works after all of the above, and never changed the caller\'s frames', async () => {
      const before = Buffer.from(a.data as Uint8Array);
      const field = await flow.estimate(a, b);
      assert.equal(field.width, 64);
      assert.ok(Buffer.from(a.data as Uint8Array).equals(before));
    });
  });

  describe('models that misbehave at run time', () => {
    const script = (name: string, body: string) => {
      const file = path.join(tmpDir(), name);
      const source = [
        'import torch', 'from typing import Optional',
        'class Broken(torch.nn.Module):',
        '    def __init__(self):',
        '        super().__init__()',
        '        self.flow_metadata = \'{"stride": 8, "min_size": 8, "default_iterations": 1}\'',
        '        self.flow_stride, self.flow_min_size, self.flow_default_iterations = 8, 8, 1',
        '    def forward(self, a: torch.Tensor, b: torch.Tensor, iterations: int, flow_init: Optional[torch.Tensor]) -> torch.Tensor:',
        `        ${body}`,
        `torch.jit.script(Broken()).save(${JSON.stringify(file)})`,
      ].join('\n');
      const program = `${file}.py`;  // TorchScript reads the class's source from a file
      fs.writeFileSync(program, source);
      require('child_process').execFileSync(PYTHON, [program]);
      return file;
    };

    it('a wrong output shape is ERR_INFERENCE naming the shape', async () => {
      const broken = await FlowEstimator.load({ model: script('wrong-shape.pt', 'return a[:, :1]'), device: 'cpu' });
      await expectError(() => broken.estimate(a, b), { type: FlowError, code: 'ERR_INFERENCE',
        message: /^the model returned a tensor of unexpected shape \[1, 1, 48, 64\] \(expected \[1, 2, 48, 64\]\)$/ });
      await broken.dispose();
    });

    it('an exception inside the model is ERR_INFERENCE without LibTorch\'s backtrace, and the model stays usable', async () => {
      const broken = await FlowEstimator.load({ model: script('raises.pt', 'raise RuntimeError("the model gave up")'), device: 'cpu' });
      await assert.rejects(broken.estimate(a, b), (e: FlowError) => {
        assert.equal(e.code, 'ERR_INFERENCE');
        assert.match(e.message, /the model gave up/);
        assert.doesNotMatch(e.message, /Exception raised from|frame #/);
        assert.match(e.stack ?? '', /bad-input\.test/, 'the stack is the caller\'s');
        return true;
      });
      await assert.rejects(broken.estimate(a, b), (e: FlowError) => e.code === 'ERR_INFERENCE');
      await broken.dispose();
    });
  });

  describe('after dispose', () => {
    it('rejects estimate with ERR_DISPOSED and allows dispose again', async () => {
      const once = await FlowEstimator.load({ model, device: 'cpu', threads: 1 });
      await once.dispose();
      assert.equal(once.disposed, true);
      await expectError(() => once.estimate(a, b),
        { type: FlowError, code: 'ERR_DISPOSED', message: /^estimate\(\) was called after dispose\(\)$/ });
      await once.dispose();
    });
  });
});
