// The project's Python package (python/flowlib), which the commands that compare with PyTorch or OpenCV run through
// scripts/python: the environment setup makes (PyTorch 2.x, with Debian's OpenCV), the package importable. Both are
// in a clone of the project, not in the npm package.
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as path from 'path';
import { PACKAGE_ROOT } from '../binding';

export const PYTHON = path.join(PACKAGE_ROOT, 'scripts', 'python');
export const PYTHON_PACKAGE = path.join(PACKAGE_ROOT, 'python');

/** Runs the project's Python with `args`; output as text. */
export function runPython(args: string[], maxBuffer = 1 << 26): SpawnSyncReturns<string> {
  return spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer });
}
