import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { PYTHON, ROOT } from './helpers';

// The Python side (model parts, losses, data generator) has its own unit tests; each file runs here.
describe('Python unit tests (scripts/tests)', function () {
  this.timeout(120_000);
  const dir = path.join(ROOT, 'scripts', 'tests');
  for (const file of fs.readdirSync(dir).filter((f) => /^test_.*\.py$/.test(f)).sort()) {
    it(file, () => {
      const result = spawnSync(PYTHON, ['-m', 'unittest', '-v', path.join('scripts', 'tests', file)], { cwd: ROOT, encoding: 'utf8' });
      const printed = `${result.stdout}${result.stderr}`;
      for (const line of printed.split('\n').filter((l) => /difference|^Ran /.test(l))) console.log(`      ${line}`);
      assert.equal(result.status, 0, printed);
      assert.match(printed, /\nOK/);
    });
  }
});
