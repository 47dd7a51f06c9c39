// The project's Python package (python/flowlib), which the commands that compare with PyTorch or OpenCV run: only
// Debian's /usr/bin/python3 has torch and cv2, and the package is found through PYTHONPATH.
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as path from 'path';
import { PACKAGE_ROOT } from '../binding';

export const PYTHON = '/usr/bin/python3';
export const PYTHON_PACKAGE = path.join(PACKAGE_ROOT, 'python');

/** Runs `/usr/bin/python3 args...` with the project's package importable; output as text. */
export function runPython(args: string[], maxBuffer = 1 << 26): SpawnSyncReturns<string> {
  return spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer, env: { ...process.env, PYTHONPATH: PYTHON_PACKAGE } });
}
