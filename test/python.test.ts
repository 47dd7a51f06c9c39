import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { PYTHON, ROOT } from './helpers';

// The Python package (model parts, losses, data generator, trainer) has its own unit tests beside it; each file
// runs here, from python/, where `flowlib` is importable as it is.
describe('Python unit tests (python/tests)', function () {
  this.timeout(120_000);
  const packageParent = path.join(ROOT, 'python');
  const dir = path.join(packageParent, 'tests');
  for (const file of fs.readdirSync(dir).filter((f) => /^test_.*\.py$/.test(f)).sort()) {
    it(file, () => {
      const result = spawnSync(PYTHON, ['-m', 'unittest', '-v', `tests.${path.basename(file, '.py')}`], { cwd: packageParent, encoding: 'utf8' });
      const printed = `${result.stdout}${result.stderr}`;
      for (const line of printed.split('\n').filter((l) => /difference|^Ran /.test(l))) console.log(`      ${line}`);
      assert.equal(result.status, 0, printed);
      assert.match(printed, /\nOK/);
    });
  }
});
