// The addon's caching CPU allocator reuses freed blocks; it must never change a result. The same pairs in two
// processes, one with the cache and one with the system allocator, give the same flows to the bit.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tmpDir } from './helpers';

describe('the caching CPU allocator', function () {
  this.timeout(240_000);
  const SIZES = [[200, 120], [160, 96], [1024, 440], [640, 480], [200, 120], [1024, 440], [200, 120]];

  function flowIn(allocator: 'caching' | 'system'): Buffer {
    const out = path.join(tmpDir(), `flow-${allocator}.bin`);
    // Pairs of four sizes: blocks freed by one request serve the next; the 1024x440 requests leave more than the
    // cache's slack, so the following ones evict blocks; their volumes are blocks on huge pages.
    const program = `
      const SIZES = ${JSON.stringify(SIZES)};
      const { FlowEstimator } = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))});
      const { syntheticPair } = require(${JSON.stringify(path.join(ROOT, 'dist', 'test', 'helpers'))});
      (async () => {
        const flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: 2 });
        const fields = [];
        for (const [w, h] of SIZES) {
          const [a, b] = syntheticPair(w, h, 4, -3);
          fields.push((await flow.estimate(a, b, { iterations: 6 })).data);
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

  it('gives the same flows to the bit as the system allocator, request after request, through evictions', () => {
    const cached = flowIn('caching');
    const system = flowIn('system');
    assert.equal(cached.length, SIZES.reduce((sum, [w, h]) => sum + w * h * 2 * 4, 0));
    assert.ok(cached.equals(system), 'flows differ between allocators');
  });
});
