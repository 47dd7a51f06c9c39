// One fuzz worker: loads cases in order from a given index and reports each, synchronously, so that the runner
// knows which case was running if this process dies. Run by FuzzRunner, never directly.
import * as fs from 'fs';
import * as path from 'path';
import { FlowError, FlowEstimator } from '../../lib';
import type { FuzzCase } from './FuzzRunner';

const BUNDLED = path.resolve(__dirname, '..', '..', '..', 'models', 'raft-small.pt');

function report(line: string) {
  fs.writeSync(1, `${line}\n`);
}

function pair() {
  const data = new Uint8Array(64 * 64 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 7) * 11) % 251;
  const moved = new Uint8Array(data.length);
  moved.set(data.subarray(3 * 2));
  return [{ data, width: 64, height: 64 }, { data: moved, width: 64, height: 64 }];
}

async function run(fuzzCase: FuzzCase): Promise<{ stage: string; code?: string; message?: string }> {
  let stage = 'load';
  let flow: FlowEstimator | undefined;
  try {
    flow = await FlowEstimator.load(fuzzCase.kind === 'weights'
      ? { model: BUNDLED, weights: fuzzCase.file, device: 'cpu', threads: 1 }
      : { model: fuzzCase.file, device: 'cpu', threads: 1 });
    stage = 'estimate';
    const [a, b] = pair();
    await flow.estimate(a, b);  // the model's own default iterations
    return { stage: 'done' };
  } catch (error) {
    const code = error instanceof FlowError ? error.code : (error as { code?: string }).code;
    return { stage, code, message: String((error as Error).message ?? error).slice(0, 300) };
  } finally {
    await flow?.dispose();
  }
}

async function main() {
  const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as FuzzCase[];
  for (let i = Number(process.argv[3]); i < cases.length; i++) {
    report(`start ${i}`);
    report(`done ${JSON.stringify({ index: i, ...(await run(cases[i])) })}`);
  }
}

main().then(() => process.exit(0), (error) => { console.error(error); process.exit(3); });
