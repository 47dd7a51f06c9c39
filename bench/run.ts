// npm run bench [-- --only pairs,mixed-sizes,hd,samples,video --models M,... --rounds N --compile]: every benchmark
// in one run, on this machine, side by side with its baselines; tables printed, results in bench/results/*.json.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { capabilities } from '../lib';
import { benchHd } from './hd';
import { RESULTS } from './inputs';
import { benchMixedSizes } from './mixedSizes';
import { benchPairs, machine, PAIR_SIZES, pairsTable } from './pairs';
import { pythonJson } from './python';
import { benchSamples } from './samples';
import { benchVideo } from './video';

const BENCHMARKS = ['pairs', 'mixed-sizes', 'hd', 'samples', 'video'] as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' }, models: { type: 'string' }, sizes: { type: 'string' }, rounds: { type: 'string' }, threads: { type: 'string' },
      compile: { type: 'boolean' }, help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(`npm run bench -- [--only ${BENCHMARKS.join(',')}] [--models raft-small,raft,flownets,flownetc] [--rounds N (default 5)] ` +
      '[--sizes WxH,... (pairs; default 320x240,1024x436,1920x1080)] [--threads N] [--compile (also time torch.compile, minutes to compile)]');
    return;
  }
  const only = (values.only ?? BENCHMARKS.join(',')).split(',');
  const unknown = only.find((name) => !(BENCHMARKS as readonly string[]).includes(name));
  if (unknown) throw new Error(`--only: unknown benchmark '${unknown}' (the benchmarks are ${BENCHMARKS.join(', ')})`);
  const threads = Number(values.threads ?? os.availableParallelism());
  const rounds = Number(values.rounds ?? 5);
  const models = (values.models ?? 'raft-small,raft,flownets,flownetc').split(',');
  fs.mkdirSync(RESULTS, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optical-flow-bench-'));
  const sgemm = pythonJson<{ gflops: number }>(['bench/python/baseline.py', 'sgemm', '--threads', String(threads)]).gflops;
  const context = { date: new Date().toISOString(), machine: machine(), threads, sgemmGflops: sgemm, libtorch: capabilities() };
  console.log(`${context.machine.cpu}, ${threads} threads, sgemm ${sgemm.toFixed(0)} GFLOP/s, addon on LibTorch ${context.libtorch.torchVersion}`);
  const write = (name: string, result: unknown) => {
    const file = path.join(RESULTS, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify({ ...context, result }, null, 2));
    console.log(`written to ${file}`);
  };
  try {
    if (only.includes('pairs')) {
      const sizes = values.sizes ? values.sizes.split(',').map((size) => size.split('x').map(Number) as [number, number]) : PAIR_SIZES;
      if (sizes.some(([w, h]) => !(w >= 64 && h >= 64))) throw new Error(`--sizes: expected WxH,... with sides of at least 64, got '${values.sizes}'`);
      const rows = await benchPairs({ models, sizes, threads, rounds, compile: values.compile === true, dir });
      console.log(['', ...pairsTable(rows)].join('\n'));
      write('pairs', rows);
    }
    if (only.includes('mixed-sizes')) write('mixed-sizes', await benchMixedSizes({ threads, rounds: rounds - 1, dir }));
    if (only.includes('hd')) write('hd', await benchHd({ models, threads, dir }));
    if (only.includes('samples')) write('samples', await benchSamples(threads));
    if (only.includes('video')) write('video', await benchVideo(threads));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
