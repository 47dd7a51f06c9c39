// `npm run bench`: seconds per pair through FlowEstimator.estimate() next to PyTorch eager on the same weights,
// sizes and thread count, measured in one run; written to bench/results.json.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FlowEstimator } from '../lib';

const ROOT = path.resolve(__dirname, '..', '..');
const THREADS = Number(process.env.BENCH_THREADS ?? os.availableParallelism());
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);

interface Case { model: string; width: number; height: number; iterations: number }

const CASES: Case[] = [
  { model: 'raft-small', width: 1024, height: 440, iterations: 12 },
  { model: 'raft-small', width: 320, height: 256, iterations: 12 },
  { model: 'raft', width: 1024, height: 440, iterations: 12 },
  { model: 'flownets', width: 1024, height: 436, iterations: 1 },
  { model: 'flownetc', width: 1024, height: 436, iterations: 1 },
];

function noisePair(width: number, height: number) {
  const a = new Uint8Array(width * height * 3);
  let seed = 1;
  for (let i = 0; i < a.length; i++) { seed = (seed * 1103515245 + 12345) >>> 0; a[i] = seed >>> 24; }
  const b = new Uint8Array(a.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sx = Math.max(0, x - 3), sy = Math.max(0, y - 2);
      b.set(a.subarray(3 * (sy * width + sx), 3 * (sy * width + sx) + 3), 3 * (y * width + x));
    }
  }
  return [{ data: a, width, height }, { data: b, width, height }];
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timeNode(c: Case): Promise<number> {
  const flow = await FlowEstimator.load({ model: c.model, device: 'cpu', threads: THREADS });
  const [a, b] = noisePair(c.width, c.height);
  const times: number[] = [];
  for (let i = 0; i <= REPEAT; i++) {
    const start = process.hrtime.bigint();
    await flow.estimate(a, b, { iterations: c.iterations });
    if (i > 0) times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  await flow.dispose();
  return median(times);
}

function timePython(c: Case): { eager: number; torchscript: number } {
  const model = path.join(ROOT, 'models', `${c.model}.pt`);
  const result = spawnSync('/usr/bin/python3', [path.join(ROOT, 'scripts', 'reference.py'), 'time', '--model', model,
    '--size', String(c.width), String(c.height), '--iterations', String(c.iterations), '--threads', String(THREADS),
    '--repeat', String(REPEAT)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}

async function main() {
  const rows = [];
  for (const c of CASES) {
    const node = await timeNode(c);
    const python = timePython(c);
    const row = { ...c, threads: THREADS, nodeSeconds: node, eagerSeconds: python.eager,
      pythonTorchScriptSeconds: python.torchscript, eagerOverNode: python.eager / node };
    rows.push(row);
    console.log(`${c.model.padEnd(11)} ${c.width}x${c.height} x${c.iterations}: estimate() ${node.toFixed(3)} s, ` +
      `eager ${python.eager.toFixed(3)} s, TorchScript from Python ${python.torchscript.toFixed(3)} s, ` +
      `eager/estimate ${(python.eager / node).toFixed(2)}x`);
  }
  const corr = spawnSync('/usr/bin/python3', [path.join(ROOT, 'scripts', 'reference.py'), 'correlation', '--size', '1024', '436',
    '--threads', String(THREADS)], { encoding: 'utf8' });
  const correlation = corr.status === 0 ? JSON.parse(corr.stdout) : { error: corr.stderr };
  console.log(`FlowNetC correlation at 1024x436: ${JSON.stringify(correlation)}`);
  const out = path.join(ROOT, 'bench', 'results.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model, repeat: REPEAT, rows, correlation }, null, 2));
  console.log(`written to ${path.relative(process.cwd(), out)}`);
}

main().catch((error) => { console.error(error); process.exit(1); });
