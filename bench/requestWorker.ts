// A Node process that the benchmarks time beside the PyTorch anchors (bench/python/anchor.py): it loads one model
// through the library, then answers one timed request per line on stdin, with the same reply as the anchors.
//   node requestWorker.js '{"model": "raft-small", "weights": "bundled", "threads": 2, "precision": "float32"}'
// Request: {"a": FILE, "b": FILE, "width": W, "height": H, "iterations": N, "correlation"?: MODE} (raw RGB).
// Reply: {"seconds", "minorFaults", "peakRssMb", "eventLoopLagMs": {"p50", "p99", "max"}}.
import * as fs from 'fs';
import * as readline from 'readline';
import { FlowEstimator, type CorrelationMode, type LoadOptions } from '../lib';

interface Request { a: string; b: string; width: number; height: number; iterations: number; correlation?: CorrelationMode }

const quantile = (v: number[], q: number) => [...v].sort((x, y) => x - y)[Math.min(v.length - 1, Math.floor(q * v.length))] ?? 0;

async function main(): Promise<void> {
  const flow = await FlowEstimator.load({ device: 'cpu', ...(JSON.parse(process.argv[2]) as LoadOptions) });
  console.log(JSON.stringify({ ready: true }));
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const request = JSON.parse(line) as Request;
    const frame = (file: string) => ({ data: new Uint8Array(fs.readFileSync(file)), width: request.width, height: request.height });
    const [a, b] = [frame(request.a), frame(request.b)];
    // The event loop's delay while the request runs on the model's thread: a timer every 5 ms.
    const lags: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => { const now = performance.now(); lags.push(now - last - 5); last = now; }, 5);
    const faults = process.resourceUsage().minorPageFault;
    const start = process.hrtime.bigint();
    await flow.estimate(a, b, { iterations: request.iterations, correlation: request.correlation });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    clearInterval(timer);
    const usage = process.resourceUsage();
    console.log(JSON.stringify({ seconds, minorFaults: usage.minorPageFault - faults, peakRssMb: usage.maxRSS / 1024,
      eventLoopLagMs: { p50: quantile(lags, 0.5), p99: quantile(lags, 0.99), max: Math.max(0, ...lags) } }));
  }
  await flow.dispose();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
