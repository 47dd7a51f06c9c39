// Seconds per pair through estimate() next to PyTorch eager on the same weights, and video modes on a clip with
// known motion. The PyTorch side is the test suite's oracle (test/oracle), so this command runs in a clone.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FlowEstimator, FlowField, flowMetrics } from '..';
import { PACKAGE_ROOT } from '../binding';
import { makeDemoClip } from './demoClip';
import { CommandSpec, integerOption, stringOption, UsageError } from './options';

const ORACLE = path.join(PACKAGE_ROOT, 'test', 'oracle', 'reference.py');

/** The PyTorch oracle, run with the project's Python package importable. */
/** An export that carries weights: the bundled trained one, or one exported with random (seeded) weights. */
function exportWithWeights(model: string): string {
  const bundled = path.join(PACKAGE_ROOT, 'models', `${model}.pt`);
  if (model === 'raft-small') return bundled;
  const out = path.join(PACKAGE_ROOT, 'bench', 'exports', `${model}.pt`);
  if (!fs.existsSync(out)) {
    const result = spawnSync(path.join(PACKAGE_ROOT, 'scripts', 'export'), ['--arch', model, '--out', out, '--seed', '0'], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`exporting ${model} failed: ${result.stderr}`);
  }
  return out;
}

function oracle(args: string[]) {
  return spawnSync('/usr/bin/python3', [ORACLE, ...args], {
    encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(PACKAGE_ROOT, 'python') },
  });
}

function noisePair(width: number, height: number) {
  const a = new Uint8Array(width * height * 3);
  let seed = 1;
  for (let i = 0; i < a.length; i++) { seed = (seed * 1103515245 + 12345) >>> 0; a[i] = seed >>> 24; }
  const b = new Uint8Array(a.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = 3 * (Math.max(0, y - 2) * width + Math.max(0, x - 3));
      b.set(a.subarray(s, s + 3), 3 * (y * width + x));
    }
  }
  return [{ data: a, width, height }, { data: b, width, height }];
}

export const benchCommand: CommandSpec = {
  name: 'bench',
  synopsis: '',
  summary: 'Seconds per pair through estimate() next to PyTorch eager, FlowNetC\'s correlation alone, and RAFT-S on a ' +
    'clip with known motion (independent pairs vs feature reuse vs warm start; EPE per iteration count), written as JSON.',
  options: {
    models: { type: 'string', value: 'M[,M...]', help: 'models to time (default raft-small,raft,flownets,flownetc)' },
    out: { type: 'string', value: 'FILE', help: 'results file (default bench/results.json)' },
    repeat: { type: 'string', value: 'N', help: 'timed runs per case (default 3)' },
    'no-video': { type: 'boolean', help: 'skip the video modes' },
    'video-only': { type: 'boolean', help: 'only the video modes' },
  },
  async run(values, positionals) {
    if (positionals.length > 0) throw new UsageError(`bench takes no arguments, got '${positionals[0]}'`);
    if (!fs.existsSync(ORACLE)) throw new UsageError(`bench compares with PyTorch through ${ORACLE}, which only a clone of the project has`);
    const threads = integerOption(values, 'threads') ?? os.availableParallelism();
    const repeat = integerOption(values, 'repeat') ?? 3;
    const models = (stringOption(values, 'models') ?? 'raft-small,raft,flownets,flownetc').split(',');
    const cases = values['video-only'] === true ? [] : models.flatMap((model) => (model.startsWith('raft')
      ? [{ model, width: 1024, height: 440, iterations: 12 }, { model, width: 320, height: 256, iterations: 12 }]
      : [{ model, width: 1024, height: 436, iterations: 1 }]));
    const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
    const rows = [];
    for (const c of cases) {
      // The same weights on both sides: the trained RAFT-S as bundled, the others exported with random weights.
      const model = exportWithWeights(c.model);
      const flow = await FlowEstimator.load({ model, device: 'cpu', threads });
      const [a, b] = noisePair(c.width, c.height);
      const times: number[] = [];
      for (let i = 0; i <= repeat; i++) {
        const start = process.hrtime.bigint();
        await flow.estimate(a, b, { iterations: c.iterations });
        if (i > 0) times.push(Number(process.hrtime.bigint() - start) / 1e9);
      }
      await flow.dispose();
      const py = oracle(['time', '--model', model, '--size', String(c.width), String(c.height), '--iterations',
        String(c.iterations), '--threads', String(threads), '--repeat', String(repeat)]);
      if (py.status !== 0) throw new Error(py.stderr);
      const python = JSON.parse(py.stdout) as { eager: number; torchscript: number };
      const node = median(times);
      rows.push({ ...c, threads, nodeSeconds: node, eagerSeconds: python.eager, pythonTorchScriptSeconds: python.torchscript, eagerOverNode: python.eager / node });
      console.log(`${c.model.padEnd(11)} ${c.width}x${c.height} x${c.iterations}: estimate() ${node.toFixed(3)} s, eager ${python.eager.toFixed(3)} s, ` +
        `TorchScript from Python ${python.torchscript.toFixed(3)} s, eager/estimate ${(python.eager / node).toFixed(2)}x`);
    }
    const video = values['no-video'] === true ? undefined : await benchVideo(threads);
    let correlation: unknown;
    if (values['video-only'] !== true) {
      const corr = oracle(['correlation', '--size', '1024', '436', '--threads', String(threads)]);
      correlation = corr.status === 0 ? JSON.parse(corr.stdout) : { error: corr.stderr };
      console.log(`FlowNetC correlation at 1024x436: ${JSON.stringify(correlation)}`);
    }
    const out = path.resolve(stringOption(values, 'out') ?? path.join(PACKAGE_ROOT, 'bench', 'results.json'));
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), cpu: os.cpus()[0]?.model, threads, repeat, rows, correlation, video }, null, 2));
    console.log(`written to ${out}`);
  },
};

/**
 * RAFT-S on the demo clip (known motion): seconds for the whole clip as independent pairs, as a stream that
 * encodes each frame once, and as a stream that also warm-starts; and mean EPE per iteration count, cold and warm.
 */
async function benchVideo(threads: number) {
  const clip = makeDemoClip();
  const frames = clip.frames.map((data) => ({ data, width: clip.width, height: clip.height }));
  const flow = await FlowEstimator.load({ model: 'raft-small', device: 'cpu', threads });
  const meanEpe = (fields: FlowField[]) => fields.reduce((s, f, k) => s + flowMetrics(f, clip.truth[k]).epe, 0) / fields.length;
  const timed = async (run: () => Promise<FlowField[]>) => {
    const start = process.hrtime.bigint();
    const fields = await run();
    return { seconds: Number(process.hrtime.bigint() - start) / 1e9, epe: meanEpe(fields) };
  };
  const pairs = (iterations: number) => timed(async () => {
    const out: FlowField[] = [];
    for (let k = 1; k < frames.length; k++) out.push(await flow.estimate(frames[k - 1], frames[k], { iterations }));
    return out;
  });
  const streamed = (iterations: number, warmStart: boolean) => timed(async () => {
    const stream = flow.stream({ iterations, reuseFeatures: true, warmStart });
    const out: FlowField[] = [];
    for (const frame of frames) { const f = await stream.push(frame); if (f) out.push(f); }
    await stream.close();
    return out;
  });
  const independent = await pairs(12);
  const reuse = await streamed(12, false);
  const warm = await streamed(12, true);
  console.log(`video (demo clip ${clip.width}x${clip.height}, ${frames.length - 1} pairs, 12 iterations): independent pairs ` +
    `${independent.seconds.toFixed(2)} s, feature reuse ${reuse.seconds.toFixed(2)} s (${(independent.seconds / reuse.seconds).toFixed(2)}x), ` +
    `reuse + warm start ${warm.seconds.toFixed(2)} s (${(independent.seconds / warm.seconds).toFixed(2)}x)`);
  const perIteration = [];
  for (const iterations of [1, 2, 4, 8, 12]) {
    const cold = await streamed(iterations, false);
    const hot = await streamed(iterations, true);
    perIteration.push({ iterations, coldEpe: cold.epe, warmEpe: hot.epe, coldSeconds: cold.seconds, warmSeconds: hot.seconds });
    console.log(`  ${String(iterations).padStart(2)} iterations: EPE cold ${cold.epe.toFixed(3)} px, warm ${hot.epe.toFixed(3)} px`);
  }
  await flow.dispose();
  return { model: flow.info.name, trainedOn: flow.info.trainedOn, pairs: frames.length - 1, independent, reuse, warm, perIteration };
}
