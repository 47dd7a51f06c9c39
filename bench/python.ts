// Runs a PyTorch-side command of the benchmarks (bench/python/baseline.py) and reads the JSON it prints last.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { PYTHON, ROOT } from './RequestRunner';

export function pythonJson<T>(args: string[], python = PYTHON): T {
  const result = spawnSync(python, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } });
  if (result.status !== 0) throw new Error(`${path.basename(python)} ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as T;
}
