import { strict as assert } from 'assert';
import * as path from 'path';
import { FuzzRunner } from './fuzz/FuzzRunner';
import { makeCorpus, table } from './fuzz/run';
import { tmpDir } from './helpers';

// A bounded fuzz run (npm run fuzz runs a longer one): hostile checkpoints and exports, each loaded in a worker
// process that is watched for signals, hangs and memory.
describe('fuzzing the checkpoint reader and the export loader', function () {
  this.timeout(600_000);
  const RSS_LIMIT = 2 * 2 ** 30;

  it('no file kills, hangs or exhausts the process: every case loads correctly or is a coded error', async () => {
    const cases = makeCorpus(path.join(tmpDir(), 'fuzz'), 160, 40, 20261125);
    const summary = await new FuzzRunner(cases, { timeoutMs: 60_000, rssLimitBytes: RSS_LIMIT }).run();
    for (const line of table(summary)) console.log(`      ${line}`);
    console.log(`      ${summary.results.length} cases: ${summary.signals} signals, ${summary.hangs} hangs, ` +
      `${summary.overMemory} over ${RSS_LIMIT / 2 ** 30} GB, ${summary.uncoded} without the right code; ` +
      `peak worker RSS ${(summary.peakRssBytes / 2 ** 20).toFixed(0)} MB`);
    const failures = summary.results.filter((r) => r.outcome.kind === 'failure')
      .map((r) => `${r.fuzzCase.mutation} (${r.fuzzCase.file}): ${(r.outcome as { why: string }).why}`);
    assert.deepEqual(failures, []);
    const valid = summary.results.filter((r) => r.fuzzCase.mutation === 'valid');
    assert.ok(valid.length > 0 && valid.every((r) => r.outcome.kind === 'loaded'), 'unmodified files must load');
  });
});
