// The addon's caching CPU allocator reuses freed blocks; it must never change a result. The same pair in two
// processes, one with the cache and one with the system allocator, gives the same flow to the bit.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tmpDir } from './helpers';

describe('the caching CPU allocator', function () {
  this.timeout(120_000);

  function flowIn(allocator: 'caching' | 'system'): Buffer {
    const out = path.join(tmpDir(), `flow-${allocator}.bin`);
    // Several pairs of two sizes, so that blocks freed by one request serve the next.
    const program = `
      const { FlowEstimator } = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))});
      const { syntheticPair } = require(${JSON.stringify(path.join(ROOT, 'dist', 'test', 'helpers'))});
      (async () => {
        const flow = await FlowEstimator.load({ model: 'raft-small', device: 'cpu', threads: 2 });
        const fields = [];
        for (const [w, h] of [[200, 120], [160, 96], [200, 120], [200, 120]]) {
          const [a, b] = syntheticPair(w, h, 4, -3);
          fields.push((await flow.estimate(a, b)).data);
        }
        await flow.dispose();
        require('fs').writeFileSync(${JSON.stringify(out)}, Buffer.concat(fields.map((f) => Buffer.from(f.buffer))));
      })();`;
    const env = { ...process.env };
    if (allocator === 'system') env.OPTICAL_FLOW_ALLOCATOR = 'system';
    else delete env.OPTICAL_FLOW_ALLOCATOR;
    const result = spawnSync(process.execPath, ['-e', program], { encoding: 'utf8', env });
    assert.equal(result.status, 0, result.stderr);
    return fs.readFileSync(out);
  }

  it('gives the same flow to the bit as the system allocator, request after request', () => {
    const cached = flowIn('caching');
    const system = flowIn('system');
    assert.equal(cached.length, (3 * 200 * 120 + 160 * 96) * 2 * 4);  // three 200x120 fields and one 160x96
    assert.ok(cached.equals(system), 'flows differ between allocators');
  });
});
