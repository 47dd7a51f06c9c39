#!/usr/bin/env node
// optical-flow: estimate a pair, run the demo, evaluate a folder against ground truth, benchmark.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  colorWheelLegend, encodePng, FlowEstimator, FlowField, flowMetrics, flowToColor, readFlo,
  RgbImage, sideBySide, VideoFlowSession, writeFlo,
} from '../lib';
import { matFromRgb, opencv, rgbFromMat, VideoWriterLike } from '../lib/opencv';
import { makeDemoClip } from './demoClip';

const ROOT = path.resolve(__dirname, '..', '..');
const USAGE = `Usage: optical-flow <command> [options]

Commands:
  estimate <imageA> <imageB> [--model M] [--iterations N] [--out PREFIX]
      Flow from A to B, written as PREFIX.flo and a colour picture PREFIX.png.
  demo [--video FILE | --camera N] [--model M] [--iterations N] [--out DIR] [--max-frames N] [--window]
      A video turned into a side-by-side flow video and pictures. Without --video or --camera it makes a
      clip with known motion and reports the error against it.
  eval <folder>... [--model M[,M...]] [--iterations N]
      End-point error and Fl-all of each model on every pair with ground truth in the folders
      (NAME-img0/-img1 + NAME-gt.flo, NAME_img1/_img2 + NAME_flow.flo, frame_N + frame_N+1 + flow_N.flo).
  bench [--models M[,M...]] [--out FILE] [--no-video | --video-only]
      Seconds per pair through estimate() next to PyTorch eager, FlowNetC's correlation alone, and RAFT-S on a
      clip with known motion (independent pairs vs feature reuse vs warm start; EPE per iteration count),
      written as JSON (default bench/results.json).

Common: --device auto|cpu|cuda|cuda:N, --threads N`;

type Args = { positional: string[]; flags: Map<string, string | true> };

function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('--')) {
      const [key, inline] = arg.slice(2).split('=', 2);
      if (inline !== undefined) flags.set(key, inline);
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) flags.set(key, argv[++i]);
      else flags.set(key, true);
    } else positional.push(arg);
  }
  return { positional, flags };
}

function flag(args: Args, name: string, fallback?: string): string | undefined {
  const value = args.flags.get(name);
  if (value === true) throw new Error(`--${name} needs a value`);
  return value ?? fallback;
}

function intFlag(args: Args, name: string): number | undefined {
  const value = flag(args, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer, got '${value}'`);
  return n;
}

function loadOptions(args: Args, model: string) {
  return { model, device: (flag(args, 'device') ?? 'auto') as 'auto', threads: intFlag(args, 'threads') };
}

function checkFlags(args: Args, known: string[]) {
  for (const key of args.flags.keys()) {
    if (!known.includes(key)) throw new Error(`unknown option --${key} (known: ${known.map((k) => `--${k}`).join(', ')})`);
  }
}

function writePng(file: string, image: RgbImage) {
  fs.writeFileSync(file, encodePng(image.width, image.height, 3, 8, image.data));
}

function readImage(file: string) {
  if (!fs.existsSync(file)) throw new Error(`image '${file}' does not exist`);
  const mat = opencv().imread(file);
  if (mat.empty) throw new Error(`image '${file}' could not be decoded`);
  return mat;
}

async function estimate(args: Args) {
  checkFlags(args, ['model', 'iterations', 'out', 'device', 'threads']);
  const [a, b] = args.positional;
  if (!a || !b) throw new Error('estimate needs two images');
  const out = flag(args, 'out', 'flow')!;
  const flow = await FlowEstimator.load(loadOptions(args, flag(args, 'model', 'raft-small')!));
  try {
    const field = await flow.estimate(readImage(a), readImage(b), { iterations: intFlag(args, 'iterations') });
    writeFlo(`${out}.flo`, field);
    writePng(`${out}.png`, flowToColor(field));
    console.log(`${field.width}x${field.height}, largest motion ${field.maxMagnitude().toFixed(2)} px: ${out}.flo, ${out}.png`);
  } finally {
    await flow.dispose();
  }
}

function progress(done: number, total: number, started: number) {
  const fps = done / ((Date.now() - started) / 1000);
  if (process.stderr.isTTY) {
    const width = 30, filled = total ? Math.round((width * done) / total) : 0;
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total || '?'} pairs, ${fps.toFixed(2)} fps`);
  } else if (done === 1 || done % 10 === 0 || done === total) {
    process.stderr.write(`${done}/${total || '?'} pairs, ${fps.toFixed(2)} fps\n`);
  }
}

async function demo(args: Args) {
  checkFlags(args, ['video', 'camera', 'model', 'iterations', 'out', 'max-frames', 'window', 'device', 'threads', 'normalize']);
  const cv = opencv();
  const outDir = path.resolve(flag(args, 'out', path.join(ROOT, 'demo-output'))!);
  fs.mkdirSync(outDir, { recursive: true });
  let source: string | number;
  let truth: FlowField[] | undefined;
  if (flag(args, 'video')) source = flag(args, 'video')!;
  else if (flag(args, 'camera') !== undefined) source = intFlag(args, 'camera')!;
  else {
    const clip = makeDemoClip();
    source = path.join(outDir, 'input-clip.avi');
    const writer = new cv.VideoWriter(source, cv.VideoWriter.fourcc('MJPG'), 24, new cv.Size(clip.width, clip.height), true);
    for (const frame of clip.frames) writer.write(matFromRgb({ data: frame, width: clip.width, height: clip.height }));
    writer.release();
    truth = clip.truth;
    console.log(`made a ${clip.frames.length}-frame clip with known motion: ${source}`);
  }
  const modelName = flag(args, 'model', 'raft-small')!;
  const flow = await FlowEstimator.load(loadOptions(args, modelName));
  const session = VideoFlowSession.open(flow, source, { iterations: intFlag(args, 'iterations'), maxFrames: intFlag(args, 'max-frames') });
  const window = args.flags.has('window') && !!process.env.DISPLAY;
  const perFrame = flag(args, 'normalize', 'video') === 'frame';
  const legend = colorWheelLegend(48);
  const videoOut = path.join(outDir, 'flow.avi');
  let writer: VideoWriterLike | undefined;
  const pictures: string[] = [];
  const total = Math.max(0, Math.min(session.frameCount || 0, intFlag(args, 'max-frames') ?? Infinity) - 1);
  const wanted = new Set([1, Math.max(1, Math.floor(total / 2)), total]);
  let maxMagnitude: number | undefined;
  let pairs = 0;
  const errors: number[] = [];
  const started = Date.now();
  for await (const { index, frame, flow: field } of session) {
    if (maxMagnitude === undefined) maxMagnitude = Math.max(1, field.maxMagnitude() * 1.25);
    const colour = flowToColor(field, perFrame ? {} : { maxMagnitude });
    const picture = sideBySide([rgbFromMat(frame), colour], { legend });
    if (!writer) writer = new cv.VideoWriter(videoOut, cv.VideoWriter.fourcc('MJPG'), session.fps || 24, new cv.Size(picture.width, picture.height), true);
    writer.write(matFromRgb(picture));
    if (wanted.has(index) || (total === 0 && index === 1)) {
      const file = path.join(outDir, `flow-${String(index).padStart(4, '0')}.png`);
      writePng(file, picture);
      pictures.push(file);
    }
    if (window) {
      const gui = cv as unknown as { imshow(n: string, m: unknown): void; waitKey(ms: number): number };
      gui.imshow('optical flow', matFromRgb(picture));
      gui.waitKey(1);  // lets HighGUI repaint
    }
    if (truth && truth[index - 1]) errors.push(flowMetrics(field, truth[index - 1]).epe);
    pairs++;
    progress(pairs, total, started);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  writer?.release();
  await flow.dispose();
  const seconds = (Date.now() - started) / 1000;
  console.log(`model ${modelName} (${flow.info.trainedOn}), ${pairs} pairs in ${seconds.toFixed(1)} s: ${(pairs / seconds).toFixed(2)} fps`);
  if (errors.length) console.log(`end-point error against the known motion: ${(errors.reduce((a, b) => a + b, 0) / errors.length).toFixed(3)} px (mean over pairs)`);
  console.log(`flow video: ${videoOut}`);
  for (const file of pictures) console.log(`picture: ${file}`);
}

interface GroundTruthPair { name: string; a: string; b: string; flow: string }

export function findPairs(folder: string): GroundTruthPair[] {
  const files = new Set(fs.readdirSync(folder));
  const pairs: GroundTruthPair[] = [];
  for (const file of [...files].sort()) {
    let m = /^(.*)-img0\.(ppm|png|jpg)$/.exec(file);
    if (m && files.has(`${m[1]}-img1.${m[2]}`) && files.has(`${m[1]}-gt.flo`)) {
      pairs.push({ name: m[1], a: file, b: `${m[1]}-img1.${m[2]}`, flow: `${m[1]}-gt.flo` });
      continue;
    }
    m = /^(.*)_img1\.(ppm|png|jpg)$/.exec(file);
    if (m && files.has(`${m[1]}_img2.${m[2]}`) && files.has(`${m[1]}_flow.flo`)) {
      pairs.push({ name: m[1], a: file, b: `${m[1]}_img2.${m[2]}`, flow: `${m[1]}_flow.flo` });
      continue;
    }
    m = /^frame_(\d+)\.(png|jpg)$/.exec(file);
    if (m) {
      const next = `frame_${String(Number(m[1]) + 1).padStart(m[1].length, '0')}.${m[2]}`;
      if (files.has(next) && files.has(`flow_${m[1]}.flo`)) pairs.push({ name: `frame_${m[1]}`, a: file, b: next, flow: `flow_${m[1]}.flo` });
    }
  }
  return pairs.map((p) => ({ name: p.name, a: path.join(folder, p.a), b: path.join(folder, p.b), flow: path.join(folder, p.flow) }));
}

async function evaluate(args: Args) {
  checkFlags(args, ['model', 'iterations', 'device', 'threads', 'json']);
  if (args.positional.length === 0) throw new Error('eval needs at least one folder');
  const models = flag(args, 'model', 'raft-small')!.split(',');
  const rows: Record<string, unknown>[] = [];
  for (const model of models) {
    const flow = await FlowEstimator.load(loadOptions(args, model));
    for (const folder of args.positional) {
      const pairs = findPairs(folder);
      if (pairs.length === 0) throw new Error(`no image pairs with ground truth found in '${folder}'`);
      const sums = { epe: 0, flAll: 0 };
      for (const pair of pairs) {
        const field = await flow.estimate(readImage(pair.a), readImage(pair.b), { iterations: intFlag(args, 'iterations') });
        const m = flowMetrics(field, readFlo(pair.flow));
        sums.epe += m.epe;
        sums.flAll += m.flAll;
      }
      const row = { model, folder, pairs: pairs.length, epe: sums.epe / pairs.length, flAll: sums.flAll / pairs.length };
      rows.push(row);
      console.log(`${model.padEnd(11)} ${path.basename(path.resolve(folder)).padEnd(14)} ${String(pairs.length).padStart(3)} pairs  EPE ${row.epe.toFixed(3)} px  Fl-all ${(100 * row.flAll).toFixed(1)}%`);
    }
    await flow.dispose();
  }
  const json = flag(args, 'json');
  if (json) fs.writeFileSync(json, JSON.stringify(rows, null, 2));
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

async function bench(args: Args) {
  checkFlags(args, ['models', 'out', 'repeat', 'threads', 'device', 'no-video', 'video-only']);
  const threads = intFlag(args, 'threads') ?? os.availableParallelism();
  const repeat = intFlag(args, 'repeat') ?? 3;
  const models = (flag(args, 'models') ?? 'raft-small,raft,flownets,flownetc').split(',');
  const cases = args.flags.has('video-only') ? [] : models.flatMap((model) => (model.startsWith('raft')
    ? [{ model, width: 1024, height: 440, iterations: 12 }, { model, width: 320, height: 256, iterations: 12 }]
    : [{ model, width: 1024, height: 436, iterations: 1 }]));
  const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
  const rows = [];
  for (const c of cases) {
    const flow = await FlowEstimator.load({ model: c.model, device: 'cpu', threads });
    const [a, b] = noisePair(c.width, c.height);
    const times: number[] = [];
    for (let i = 0; i <= repeat; i++) {
      const start = process.hrtime.bigint();
      await flow.estimate(a, b, { iterations: c.iterations });
      if (i > 0) times.push(Number(process.hrtime.bigint() - start) / 1e9);
    }
    await flow.dispose();
    const py = spawnSync('/usr/bin/python3', [path.join(ROOT, 'scripts', 'reference.py'), 'time', '--model',
      path.join(ROOT, 'models', `${c.model}.pt`), '--size', String(c.width), String(c.height), '--iterations',
      String(c.iterations), '--threads', String(threads), '--repeat', String(repeat)], { encoding: 'utf8' });
    if (py.status !== 0) throw new Error(py.stderr);
    const python = JSON.parse(py.stdout) as { eager: number; torchscript: number };
    const node = median(times);
    rows.push({ ...c, threads, nodeSeconds: node, eagerSeconds: python.eager, pythonTorchScriptSeconds: python.torchscript, eagerOverNode: python.eager / node });
    console.log(`${c.model.padEnd(11)} ${c.width}x${c.height} x${c.iterations}: estimate() ${node.toFixed(3)} s, eager ${python.eager.toFixed(3)} s, ` +
      `TorchScript from Python ${python.torchscript.toFixed(3)} s, eager/estimate ${(python.eager / node).toFixed(2)}x`);
  }
  const video = args.flags.has('no-video') ? undefined : await benchVideo(threads);
  let correlation: unknown;
  if (!args.flags.has('video-only')) {
    const corr = spawnSync('/usr/bin/python3', [path.join(ROOT, 'scripts', 'reference.py'), 'correlation', '--size', '1024', '436',
      '--threads', String(threads)], { encoding: 'utf8' });
    correlation = corr.status === 0 ? JSON.parse(corr.stdout) : { error: corr.stderr };
    console.log(`FlowNetC correlation at 1024x436: ${JSON.stringify(correlation)}`);
  }
  const out = path.resolve(flag(args, 'out', path.join(ROOT, 'bench', 'results.json'))!);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), cpu: os.cpus()[0]?.model, threads, repeat, rows, correlation, video }, null, 2));
  console.log(`written to ${out}`);
}

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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const args = parseArgs(rest);
  switch (command) {
    case 'estimate': await estimate(args); return 0;
    case 'demo': await demo(args); return 0;
    case 'eval': await evaluate(args); return 0;
    case 'bench': await bench(args); return 0;
    case undefined: case 'help': case '--help': case '-h': console.log(USAGE); return 0;
    default: console.error(`unknown command '${command}'\n\n${USAGE}`); return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error: Error & { code?: string }) => {
    console.error(`optical-flow: ${error.code ? `${error.code}: ` : ''}${error.message}`);
    process.exitCode = 1;
  });
}

export { main };
