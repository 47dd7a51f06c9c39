// One benchmark for the whole library, side by side with its baselines in the same run: seconds per pair of
// estimate() against torchvision's RAFT in eager mode (the same weights), peak memory and event-loop lag per case,
// achieved GFLOP/s against this machine's sgemm, HD both ways, adaptive iterations on the shared samples with ground
// truth, and a video against the plain loop. The PyTorch side lives in the test suite's oracle, so it runs in a clone.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CorrelationMode, FlowEstimator, FlowField, flowMetrics, poolMetrics, Precision, VideoFlowSession } from '..';
import { PACKAGE_ROOT } from '../binding';
import { matFromRgb, opencv } from '../opencv';
import { makeDemoClip } from './demoClip';
import { findPairs, readTruth } from './groundTruthPairs';
import { readImage } from './images';
import { runPython } from './python';
import { CommandSpec, integerOption, stringOption, UsageError } from './options';

const BASELINE = path.join(PACKAGE_ROOT, 'test', 'oracle', 'baseline.py');
const SHARED_DATA = path.resolve(PACKAGE_ROOT, '..', 'shared', 'data');
const SIZES: [number, number][] = [[320, 240], [1024, 440], [1920, 1080]];
/** The shared sets' frame sizes (KITTI, Sintel, FlyingChairs), for requests of mixed sizes. */
const MIXED_SIZES: [number, number][] = [[1242, 375], [1024, 436], [512, 384]];
/** The adaptive default measured here: see the curve this command writes. */
const TOLERANCE = 0.2;
const MAX_ITERATIONS = 24;

/**
 * One timed case: `repeat` requests at width x height (their median), or, with `sizes`, `repeat` rounds of requests
 * cycling through those sizes (the mean request after the first round), as a service meets frames.
 */
interface Case {
  model: string; width: number; height: number; iterations: number; correlation: CorrelationMode; repeat: number; threads: number;
  precision?: Precision; sizes?: [number, number][];
}
interface CaseResult { seconds: number; peakRssMb: number; lagMs: { p50: number; p99: number; max: number } }

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

function baseline<T>(args: string[]): T {
  const result = runPython([BASELINE, ...args]);
  if (result.status !== 0) throw new Error(`baseline.py ${args[0]} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
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

const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
const quantile = (v: number[], q: number) => [...v].sort((x, y) => x - y)[Math.min(v.length - 1, Math.floor(q * v.length))];

/** One timed case in this process (run as a child, so that its peak memory is its own). */
async function runCase(c: Case): Promise<CaseResult> {
  const flow = await FlowEstimator.load({ model: exportWithWeights(c.model), device: 'cpu', threads: c.threads, precision: c.precision });
  const pairs = (c.sizes ?? [[c.width, c.height]]).map(([width, height]) => noisePair(width, height));
  await flow.estimate(pairs[0][0], pairs[0][1], { iterations: 1, correlation: c.correlation });  // compiles and profiles the graph
  const lags: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => { const now = performance.now(); lags.push(now - last - 5); last = now; }, 5);
  const times: number[] = [];
  for (let i = 0; i < c.repeat; i++) {
    for (const [a, b] of pairs) {
      const start = process.hrtime.bigint();
      await flow.estimate(a, b, { iterations: c.iterations, correlation: c.correlation });
      times.push(Number(process.hrtime.bigint() - start) / 1e9);
    }
  }
  clearInterval(timer);
  await flow.dispose();
  const afterFirstRound = times.slice(pairs.length);
  return {
    seconds: c.sizes ? afterFirstRound.reduce((s, t) => s + t, 0) / afterFirstRound.length : median(times),
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    lagMs: { p50: quantile(lags, 0.5), p99: quantile(lags, 0.99), max: Math.max(...lags) },
  };
}

function childCase(c: Case, env: NodeJS.ProcessEnv = process.env): CaseResult {
  const result = spawnSync(process.execPath, [process.argv[1], 'bench', '--case', JSON.stringify(c)], { encoding: 'utf8', maxBuffer: 1 << 24, env });
  if (result.status !== 0) throw new Error(`bench case ${JSON.stringify(c)} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as CaseResult;
}

export const benchCommand: CommandSpec = {
  name: 'bench',
  synopsis: '',
  summary: 'Seconds per pair through estimate() (RAFT also in bfloat16) next to torchvision eager at 320x240, 1024x440 ' +
    'and 1080p (peak memory, event-loop lag, GFLOP/s), HD with and without the all-pairs volume, adaptive iterations ' +
    'and bfloat16 on the shared samples (EPE and time), and a video against the plain loop; one table printed, all of ' +
    'it written as JSON.',
  options: {
    models: { type: 'string', value: 'M[,M...]', help: 'models to time (default raft-small,raft,flownets,flownetc)' },
    out: { type: 'string', value: 'FILE', help: 'results file (default bench/results.json)' },
    repeat: { type: 'string', value: 'N', help: 'timed runs per case under 1080p (default 3; 1 at 1080p and above)' },
    'no-hd': { type: 'boolean', help: 'skip 720p/1080p/4K with and without the volume' },
    'no-samples': { type: 'boolean', help: 'skip the shared samples with ground truth' },
    'no-video': { type: 'boolean', help: 'skip the video' },
    case: { type: 'string', value: 'JSON', help: 'run one timed case and print its result (used by bench itself)' },
  },
  async run(values, positionals) {
    if (positionals.length > 0) throw new UsageError(`bench takes no arguments, got '${positionals[0]}'`);
    const caseJson = stringOption(values, 'case');
    if (caseJson !== undefined) {
      console.log(JSON.stringify(await runCase(JSON.parse(caseJson) as Case)));
      return;
    }
    if (!fs.existsSync(BASELINE)) throw new UsageError(`bench compares with PyTorch through ${BASELINE}, which only a clone of the project has`);
    const threads = integerOption(values, 'threads') ?? os.availableParallelism();
    const repeat = integerOption(values, 'repeat') ?? 3;
    const models = (stringOption(values, 'models') ?? 'raft-small,raft,flownets,flownetc').split(',');
    const sgemm = baseline<{ gflops: number }>(['sgemm', '--threads', String(threads)]).gflops;
    console.log(`sgemm (float32, 2048x2048, ${threads} threads): ${sgemm.toFixed(0)} GFLOP/s`);
    const table: string[] = ['| model | size | precision | estimate() s | torchvision eager s | speed-up | GFLOP/s (of sgemm) | peak RSS MB (eager) | event-loop lag p50/p99/max ms |', '|---|---|---|---|---|---|---|---|---|'];
    const pairs = [];
    for (const model of models) {
      const raft = model.startsWith('raft');
      for (const [width, height] of SIZES) {
        const iterations = raft ? 12 : 1;
        const base: Case = { model, width, height, iterations, correlation: 'auto', repeat: width >= 1920 ? 1 : repeat, threads };
        const eager = baseline<{ seconds: number; peak_rss_mb: number }>(['time', '--model', exportWithWeights(model), '--size', String(width), String(height),
          '--iterations', String(iterations), '--threads', String(threads), '--repeat', String(base.repeat)]);
        const gflop = baseline<{ gflop: number }>(['flops', '--model', exportWithWeights(model), '--size', String(width), String(height), '--iterations', String(iterations)]).gflop;
        // RAFT also in bfloat16 (its float32 GFLOP count, for comparison), against the same float32 eager run.
        for (const precision of raft ? ['float32', 'bfloat16'] as const : ['float32'] as const) {
          const c: Case = { ...base, precision };
          const node = childCase(c);
          const row = { ...c, node, eager: { seconds: eager.seconds, peakRssMb: eager.peak_rss_mb }, speedup: eager.seconds / node.seconds, gflop, gflops: gflop / node.seconds };
          pairs.push(row);
          const line = `| ${model} | ${width}x${height} | ${precision} | ${node.seconds.toFixed(3)} | ${eager.seconds.toFixed(3)} | ${row.speedup.toFixed(2)}x | ` +
            `${row.gflops.toFixed(0)} (${(100 * row.gflops / sgemm).toFixed(0)}%) | ${node.peakRssMb.toFixed(0)} (${eager.peak_rss_mb.toFixed(0)}) | ` +
            `${node.lagMs.p50.toFixed(1)}/${node.lagMs.p99.toFixed(1)}/${node.lagMs.max.toFixed(1)} |`;
          table.push(line);
          console.log(line);
        }
      }
    }
    const mixedSizes = benchMixedSizes(threads, repeat + 1);
    const hd = values['no-hd'] === true ? undefined : benchHd(models.filter((m) => m.startsWith('raft')), threads);
    const samples = values['no-samples'] === true ? undefined : await benchSamples(threads);
    const video = values['no-video'] === true ? undefined : await benchVideo(threads);
    console.log(['', ...table].join('\n'));
    const out = path.resolve(stringOption(values, 'out') ?? path.join(PACKAGE_ROOT, 'bench', 'results.json'));
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), cpu: os.cpus()[0]?.model, threads, repeat, sgemmGflops: sgemm, pairs, mixedSizes, hd, samples, video }, null, 2));
    console.log(`written to ${out}`);
  },
};

/**
 * The bundled RAFT-S on requests cycling through the shared sets' frame sizes, with this package's caching allocator
 * and with the system's: what a service meeting frames of several sizes pays.
 */
function benchMixedSizes(threads: number, rounds: number) {
  const c: Case = { model: 'raft-small', width: 0, height: 0, sizes: MIXED_SIZES, iterations: 12, correlation: 'auto', repeat: rounds, threads };
  const cachingEnv = { ...process.env };
  delete cachingEnv.OPTICAL_FLOW_ALLOCATOR;
  const caching = childCase(c, cachingEnv);
  const system = childCase(c, { ...process.env, OPTICAL_FLOW_ALLOCATOR: 'system' });
  console.log(`\nraft-small, requests cycling through ${MIXED_SIZES.map(([w, h]) => `${w}x${h}`).join(', ')} (${rounds} rounds; the mean ` +
    `request after the first round): caching allocator ${caching.seconds.toFixed(3)} s, peak RSS ${caching.peakRssMb.toFixed(0)} MB; ` +
    `system allocator ${system.seconds.toFixed(3)} s, ${system.peakRssMb.toFixed(0)} MB (${(system.seconds / caching.seconds).toFixed(2)}x)`);
  return { sizes: MIXED_SIZES, rounds, caching, system };
}

/** RAFT at 720p, 1080p and 4K: seconds and peak memory with the all-pairs volume (where it fits) and on the fly. */
function benchHd(models: string[], threads: number) {
  const rows = [];
  for (const model of models) {
    for (const [width, height, modes] of [[1280, 720, ['all-pairs', 'on-the-fly']], [1920, 1080, ['all-pairs', 'on-the-fly']], [3840, 2160, ['on-the-fly']]] as const) {
      for (const correlation of modes) {
        const result = childCase({ model, width, height, iterations: 12, correlation, repeat: 1, threads });
        rows.push({ model, width, height, correlation, ...result });
        console.log(`HD ${model} ${width}x${height} ${correlation}: ${result.seconds.toFixed(2)} s, peak RSS ${result.peakRssMb.toFixed(0)} MB`);
      }
    }
  }
  return rows;
}

interface Sample { set: string; a: string; b: string; truth: FlowField; valid?: Uint8Array }

/** The shared pairs with ground truth: FlyingChairs, Sintel (clean and final), KITTI 2015 and 2012. */
function sharedSamples(): Sample[] {
  const sets = [['FlyingChairs', 'flyingchairs'], ['Sintel', 'sintel-training'], ['KITTI 2015', 'kitti2015'], ['KITTI 2012', 'kitti2012']];
  return sets.filter(([, folder]) => fs.existsSync(path.join(SHARED_DATA, folder))).flatMap(([set, folder]) =>
    findPairs(path.join(SHARED_DATA, folder)).map((pair) => {
      const { flow, valid } = readTruth(pair);
      return { set, a: pair.a, b: pair.b, truth: flow, ...(valid ? { valid } : {}) };
    }));
}

/**
 * The bundled RAFT-S on the shared samples: torchvision eager at 12 iterations against estimate() at fixed counts
 * and with tolerances (the time-EPE curve), per set.
 */
async function benchSamples(threads: number) {
  const samples = sharedSamples();
  if (samples.length === 0) {
    console.log(`no shared samples at ${SHARED_DATA}: skipped`);
    return undefined;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optical-flow-bench-'));
  try {
    const list = path.join(dir, 'pairs.json');
    fs.writeFileSync(list, JSON.stringify(samples.map((s) => [s.a, s.b])));
    const eager = baseline<{ seconds: number[] }>(['pairs', '--model', exportWithWeights('raft-small'), '--list', list, '--out-dir', dir, '--threads', String(threads)]);
    const eagerFlows = samples.map((s, k) => new FlowField(s.truth.width, s.truth.height, new Float32Array(fs.readFileSync(path.join(dir, `${k}.bin`)).buffer.slice(0))));
    const flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads });
    const mixed = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads, precision: 'bfloat16' });
    const frames = samples.map((s) => [readImage(s.a), readImage(s.b)]);
    await flow.estimate(frames[0][0], frames[0][1], { iterations: 1 });
    await mixed.estimate(frames[0][0], frames[0][1], { iterations: 1 });
    const sets = [...new Set(samples.map((s) => s.set))];
    const summarise = (fields: FlowField[], seconds: number[], iterations?: number[]) => Object.fromEntries(sets.map((set) => {
      const ks = samples.map((s, k) => (s.set === set ? k : -1)).filter((k) => k >= 0);
      const pooled = poolMetrics(ks.map((k) => flowMetrics(fields[k], samples[k].truth, samples[k].valid)));
      return [set, {
        pairs: ks.length, epe: pooled.epe, flAll: pooled.flAll,
        seconds: ks.reduce((s, k) => s + seconds[k], 0), iterations: iterations ? ks.reduce((s, k) => s + iterations[k], 0) / ks.length : undefined,
      }];
    }));
    const run = async (options: { iterations: number; tolerance?: number }, model = flow) => {
      const fields: FlowField[] = [];
      const seconds: number[] = [];
      for (const [a, b] of frames) {
        const start = process.hrtime.bigint();
        fields.push(await model.estimate(a, b, options));
        seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
      }
      return summarise(fields, seconds, fields.map((f) => f.iterations ?? options.iterations));
    };
    const torchvision = summarise(eagerFlows, eager.seconds);
    const fixed12 = await run({ iterations: 12 });
    const adaptive = await run({ iterations: MAX_ITERATIONS, tolerance: TOLERANCE });
    const curve = [];
    for (const iterations of [1, 2, 4, 8, 16, 24]) curve.push({ iterations, ...(await run({ iterations })) });
    curve.push({ iterations: 12, ...fixed12 });
    for (const tolerance of [0.05, 0.1, 0.5, 1]) curve.push({ tolerance, ...(await run({ iterations: MAX_ITERATIONS, tolerance })) });
    curve.push({ tolerance: TOLERANCE, ...adaptive });
    const bfloat16 = { fixed12: await run({ iterations: 12 }, mixed), adaptive: await run({ iterations: MAX_ITERATIONS, tolerance: TOLERANCE }, mixed) };
    await flow.dispose();
    await mixed.dispose();
    console.log(`\n| set | torchvision eager (12) EPE / s | estimate() 12 EPE / s | estimate() tolerance ${TOLERANCE} EPE / s / iterations | speed-up over eager | bfloat16: 12 EPE / s | bfloat16: tolerance ${TOLERANCE} EPE / s | bfloat16 speed-up over eager |\n|---|---|---|---|---|---|---|---|`);
    for (const set of sets) {
      const [t, f, a, bf, ba] = [torchvision[set], fixed12[set], adaptive[set], bfloat16.fixed12[set], bfloat16.adaptive[set]];
      console.log(`| ${set} (${t.pairs}) | ${t.epe.toFixed(3)} / ${t.seconds.toFixed(2)} | ${f.epe.toFixed(3)} / ${f.seconds.toFixed(2)} | ` +
        `${a.epe.toFixed(3)} / ${a.seconds.toFixed(2)} / ${a.iterations!.toFixed(1)} | ${(t.seconds / a.seconds).toFixed(2)}x | ` +
        `${bf.epe.toFixed(3)} / ${bf.seconds.toFixed(2)} | ${ba.epe.toFixed(3)} / ${ba.seconds.toFixed(2)} | ${(t.seconds / ba.seconds).toFixed(2)}x |`);
    }
    return { tolerance: TOLERANCE, maxIterations: MAX_ITERATIONS, torchvision, fixed12, adaptive, curve, bfloat16 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The demo clip (known motion) as an MJPG video: the plain loop (frames read with OpenCV, torchvision eager per
 * pair, 12 iterations) against a VideoFlowSession (features encoded once, warm start, adaptive iterations).
 */
async function benchVideo(threads: number) {
  const clip = makeDemoClip();
  const cv = opencv();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optical-flow-bench-'));
  try {
    const file = path.join(dir, 'clip.avi');
    const writer = new cv.VideoWriter(file, cv.VideoWriter.fourcc('MJPG'), 24, new cv.Size(clip.width, clip.height), true);
    for (const frame of clip.frames) writer.write(matFromRgb({ data: frame, width: clip.width, height: clip.height }));
    writer.release();
    const epeOf = (fields: FlowField[]) => fields.reduce((s, f, k) => s + flowMetrics(f, clip.truth[k]).epe, 0) / fields.length;
    const plain = baseline<{ seconds: number; pairs: number }>(['video', '--model', exportWithWeights('raft-small'), '--video', file, '--out-dir', dir, '--threads', String(threads)]);
    const plainFields = clip.truth.slice(0, plain.pairs).map((_, k) => new FlowField(clip.width, clip.height, new Float32Array(fs.readFileSync(path.join(dir, `${k}.bin`)).buffer.slice(0))));
    const flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads });
    const mixed = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads, precision: 'bfloat16' });
    const [a, b] = noisePair(clip.width, clip.height);
    await flow.estimate(a, b, { iterations: 1 });
    await mixed.estimate(a, b, { iterations: 1 });
    const modes = [
      { name: 'independent pairs, 12 iterations', options: { iterations: 12, reuseFeatures: false, warmStart: false } },
      { name: 'features once, 12 iterations', options: { iterations: 12, warmStart: false } },
      { name: 'features once + warm start, 12 iterations', options: { iterations: 12 } },
      { name: `features once + warm start + tolerance ${TOLERANCE}`, options: { iterations: MAX_ITERATIONS, tolerance: TOLERANCE } },
      { name: `features once + tolerance ${TOLERANCE} (cold)`, options: { iterations: MAX_ITERATIONS, tolerance: TOLERANCE, warmStart: false } },
      { name: `bfloat16: features once + warm start + tolerance ${TOLERANCE}`, options: { iterations: MAX_ITERATIONS, tolerance: TOLERANCE }, model: mixed },
    ];
    const rows = [{ name: 'plain loop: OpenCV + torchvision eager, 12 iterations', seconds: plain.seconds, pairs: plain.pairs, epe: epeOf(plainFields), speedup: 1 }];
    for (const mode of modes) {
      const fields: FlowField[] = [];
      const start = process.hrtime.bigint();
      for await (const step of VideoFlowSession.open(mode.model ?? flow, file, mode.options)) fields.push(step.flow);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      rows.push({ name: mode.name, seconds, pairs: fields.length, epe: epeOf(fields), speedup: plain.seconds / plain.pairs / (seconds / fields.length) });
    }
    await flow.dispose();
    await mixed.dispose();
    console.log(`\n| video (demo clip ${clip.width}x${clip.height}, MJPG, ${plain.pairs} pairs) | pairs/s | EPE px | over the plain loop |\n|---|---|---|---|`);
    for (const r of rows) console.log(`| ${r.name} | ${(r.pairs / r.seconds).toFixed(2)} | ${r.epe.toFixed(3)} | ${r.speedup.toFixed(2)}x |`);
    return rows;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
