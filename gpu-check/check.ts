// The check a GPU machine runs (gpu-check/run builds the addon against that machine's PyTorch, makes the exports
// with it and calls this): the addon's CUDA path against its CPU path for all four architectures, bfloat16 on CUDA,
// a video stream on CUDA, time per pair, and GPU memory at 1080p and 4K. Writes a JSON report and prints a summary;
// exits 1 when a check fails.
//   node check.js --exports exports.json --out report.json [--allow-no-gpu]
import { execFile } from 'child_process';
import * as fs from 'fs';
import { parseArgs } from 'util';
import { capabilities, FlowError, FlowEstimator, FlowField, type LoadOptions } from '../lib';

/** CUDA against CPU, float32 with TensorFloat-32 off: the largest difference allowed, in pixels. */
const PARITY = 1e-3;
/** bfloat16 against float32 on CUDA: the mean difference allowed, in pixels (0.009-0.021 px measured on the CPU). */
const BFLOAT16_MEAN = 0.05;

interface Check { name: string; passed: boolean; detail: Record<string, unknown> }

/** A smooth, textured RGB frame and the same scene moved by (dx, dy) with some local motion. */
function texturedPair(width: number, height: number, dx = 3.5, dy = -2.25) {
  const render = (ox: number, oy: number) => {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const swirl = 2 * Math.sin(x / 57) * Math.cos(y / 43);
        const u = x - ox - swirl, v = y - oy;
        const i = 3 * (y * width + x);
        data[i] = 128 + 100 * Math.sin(u * 0.21 + Math.cos(v * 0.13) * 2);
        data[i + 1] = 128 + 100 * Math.sin(v * 0.17 + u * 0.05);
        data[i + 2] = 128 + 90 * Math.cos((u + v) * 0.11) * Math.sin(u * 0.07);
      }
    }
    return { data, width, height };
  };
  return [render(0, 0), render(dx, dy)];
}

function differences(a: FlowField, b: FlowField) {
  let max = 0, sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    max = Number.isNaN(d) ? Infinity : Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.data.length };
}

/** GPU memory this process uses now, in MB, from nvidia-smi (undefined where it cannot tell). */
function gpuMemoryMb(): Promise<number | undefined> {
  return new Promise((resolve) => execFile('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'],
    { timeout: 5000 }, (error, stdout) => {
      if (error) return resolve(undefined);
      const line = stdout.split('\n').find((l) => Number(l.split(',')[0]) === process.pid);
      resolve(line ? Number(line.split(',')[1]) : 0);
    }));
}

/** Runs `work` while sampling this process's GPU memory every 100 ms; the peak seen, in MB. */
async function peakGpuMemory<T>(work: () => Promise<T>): Promise<{ result: T; peakMb?: number }> {
  let peak: number | undefined;
  let running = true;
  const sampler = (async () => {
    while (running) {
      const now = await gpuMemoryMb();
      if (now !== undefined) peak = Math.max(peak ?? 0, now);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    return { result: await work(), peakMb: peak };
  } finally {
    running = false;
    await sampler;
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const start = process.hrtime.bigint();
  const result = await work();
  return { result, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

async function withModel<T>(options: LoadOptions, use: (flow: FlowEstimator) => Promise<T>): Promise<T> {
  const flow = await FlowEstimator.load(options);
  try {
    return await use(flow);
  } finally {
    await flow.dispose();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { exports: { type: 'string' }, out: { type: 'string' }, 'allow-no-gpu': { type: 'boolean' } } });
  if (!values.exports || !values.out) throw new Error('usage: check.js --exports exports.json --out report.json [--allow-no-gpu]');
  const exports = JSON.parse(fs.readFileSync(values.exports, 'utf8')) as Record<string, string>;
  const caps = capabilities();
  const checks: Check[] = [];
  const record = (name: string, passed: boolean, detail: Record<string, unknown>) => {
    checks.push({ name, passed, detail });
    console.log(`${passed ? 'ok  ' : 'FAIL'} ${name}: ${JSON.stringify(detail)}`);
  };
  record('the addon runs on a CUDA build of LibTorch, with its headers', caps.cudaBuild && caps.torchVersion === caps.torchHeadersVersion, { ...caps });
  const cuda = caps.cuda;
  if (!cuda) {
    const error = await FlowEstimator.load({ model: exports['raft-small'], device: 'cuda' }).then(() => undefined, (e: FlowError) => e);
    record('without a visible GPU, device \'cuda\' is ERR_DEVICE', error?.code === 'ERR_DEVICE', { code: error?.code, message: error?.message });
    if (!values['allow-no-gpu']) record('a CUDA device is visible', false, { cudaDevices: caps.cudaDevices });
  } else {
    const outOfRange = `cuda:${caps.cudaDevices}` as const;
    const error = await FlowEstimator.load({ model: exports['raft-small'], device: outOfRange }).then(() => undefined, (e: FlowError) => e);
    record(`device '${outOfRange}' (one past the last) is ERR_DEVICE`, error?.code === 'ERR_DEVICE', { message: error?.message });
  }
  const devices = ['cpu', 'cuda'] as const;

  for (const [width, height] of cuda ? [[512, 384], [1024, 436]] : []) {
    const [a, b] = texturedPair(width, height);
    for (const [arch, model] of Object.entries(exports)) {
      const flows: Record<string, FlowField> = {};
      const seconds: Record<string, number> = {};
      for (const device of devices) {
        await withModel({ model, device }, async (flow) => {
          await flow.estimate(a, b, { iterations: 2 });
          const run = await timed(() => flow.estimate(a, b));
          flows[device] = run.result;
          seconds[device] = run.seconds;
        });
      }
      const diff = differences(flows.cuda, flows.cpu);
      record(`${arch} ${width}x${height}: CUDA equals CPU (max |difference| under ${PARITY} px)`, diff.max <= PARITY, { ...diff, seconds });
      if (arch.startsWith('raft')) {
        await withModel({ model, device: 'cuda', precision: 'bfloat16' }, async (flow) => {
          await flow.estimate(a, b, { iterations: 2 });
          const run = await timed(() => flow.estimate(a, b));
          const bf = differences(run.result, flows.cuda);
          record(`${arch} ${width}x${height}: bfloat16 on CUDA within ${BFLOAT16_MEAN} px of float32 on average`, bf.mean <= BFLOAT16_MEAN,
            { ...bf, seconds: run.seconds, float32Seconds: seconds.cuda });
        });
      }
    }
  }

  if (cuda) {
    // A video on CUDA: feature reuse and warm start on the device, against the same stream on the CPU.
    const frames = Array.from({ length: 6 }, (_, k) => texturedPair(640, 360, 2 * k, -k)[1]);
    const streams: Record<string, FlowField[]> = {};
    for (const device of devices) {
      streams[device] = await withModel({ model: exports['raft-small'], device }, async (flow) => {
        const stream = flow.stream();
        const out: FlowField[] = [];
        for (const frame of frames) {
          const field = await stream.push(frame);
          if (field) out.push(field);
        }
        await stream.close();
        return out;
      });
    }
    const worst = Math.max(...streams.cuda.map((f, k) => differences(f, streams.cpu[k]).max));
    record(`raft-small stream of ${frames.length} frames: CUDA equals CPU (max |difference| under ${PARITY} px)`, worst <= PARITY, { max: worst });

    // GPU memory and time at 1080p and 4K, each correlation mode where it applies; memoryLimit is the host's
    // estimate and is lifted here so that the device's own limit is what is measured.
    for (const arch of ['raft-small', 'raft']) {
      for (const [width, height, modes] of [[1920, 1080, ['all-pairs', 'on-the-fly']], [3840, 2160, ['on-the-fly', 'all-pairs']]] as const) {
        const [a, b] = texturedPair(width, height);
        for (const correlation of modes) {
          for (const precision of ['float32', 'bfloat16'] as const) {
            try {
              const detail = await withModel({ model: exports[arch], device: 'cuda', precision, memoryLimit: Number.MAX_SAFE_INTEGER }, async (flow) => {
                await flow.estimate(a, b, { iterations: 1, correlation });
                const measured = await peakGpuMemory(() => timed(() => flow.estimate(a, b, { correlation })));
                return { seconds: measured.result.seconds, peakGpuMemoryMb: measured.peakMb };
              });
              record(`${arch} ${width}x${height} ${correlation} ${precision} on CUDA`, true, detail);
            } catch (error) {
              const { code, message } = error as FlowError;
              // The all-pairs volume at 4K is 67 GB for RAFT-S: running out of device memory there is an answer, not a failure.
              const expected = correlation === 'all-pairs' && width === 3840;
              record(`${arch} ${width}x${height} ${correlation} ${precision} on CUDA`, expected, { code, message: message?.slice(0, 300) });
            }
          }
        }
      }
    }
  }
  const failed = checks.filter((c) => !c.passed);
  fs.writeFileSync(values.out, JSON.stringify({ date: new Date().toISOString(), capabilities: caps, checks }, null, 2));
  console.log(`\n${checks.length - failed.length} passed, ${failed.length} failed; report: ${values.out}`);
  return failed.length ? 1 : 0;
}

main().then((code) => process.exit(code), (error) => {
  console.error(error);
  process.exit(1);
});
