// npm run bench:service: the service under load and under faults, on loopback, bounded in time and connections.
// Writes bench/results/service.json and prints a table.
//   load:  autocannon against POST /v1/flow (64x64 PNG pairs) on a server in its own process; at the queue limit
//          and at four times it (where 503 + Retry-After is the expected answer to the excess); status counts,
//          latency, throughput, the server's RSS before and after each run, and its event-loop delay.
//   fault: two worker processes, twenty jobs, one worker killed with SIGKILL mid-job, Redis restarted.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { createFlowServer, EVENT_LOOP_PRECISION_MS } from 'torch-optical-flow-server';
import { makeDemoClip } from '../../lib/cli/demoClip';
import { matFromRgb, opencv } from '../../lib/opencv';
import { ROOT, syntheticPair, tmpDir } from '../../test/helpers';
import { faultRun, waitFor } from '../test/FaultRun';
import { freePort, hasRedis, RedisServer } from '../test/RedisServer';

const OUT = path.join(ROOT, 'bench', 'results', 'service.json');
const DURATION = Number(process.env.BENCH_SECONDS ?? 20);
const QUEUE_LIMIT = 4;
// The bundled weights: they need no network (raft-small's default weights are downloaded), and the speed measured
// here does not depend on which weights the architecture runs.
const MODEL = 'raft-small=bundled';

async function multipart(): Promise<{ body: Buffer; contentType: string }> {
  const [a, b] = syntheticPair(64, 64, 2, 1);
  const png = (image: typeof a) => sharp(image.data as Uint8Array, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
  const boundary = 'optical-flow-bench';
  const part = (name: string, data: Buffer) => Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}.png"\r\nContent-Type: image/png\r\n\r\n`), data, Buffer.from('\r\n')]);
  const body = Buffer.concat([part('frameA', await png(a)), part('frameB', await png(b)), Buffer.from(`--${boundary}--\r\n`)]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** One value of the server's own Prometheus metrics. */
async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const match = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  return match ? Number(match[1]) : NaN;
}

async function startServer(): Promise<{ base: string; stop: () => Promise<number | null> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'server', 'dist', 'cli', 'main.js'), 'serve', '--port', String(port), '--queue-limit', String(QUEUE_LIMIT),
    '--model', MODEL],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' } });
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the server', async () => (await fetch(`${base}/readyz`).then((r) => r.ok, () => false) ? true : undefined));
  return {
    base,
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }),
  };
}

async function loadRun(base: string, connections: number, request: { body: Buffer; contentType: string }) {
  await metric(base, 'optical_flow_nodejs_eventloop_lag_p99_seconds');  // a scrape resets the delay histogram
  const rssBefore = await metric(base, 'optical_flow_process_resident_memory_bytes');
  const result = await autocannon({
    url: `${base}/v1/flow`, method: 'POST', body: request.body, headers: { 'content-type': request.contentType },
    connections, duration: DURATION, timeout: 60,
  });
  const lagText = await (await fetch(`${base}/metrics`)).text();
  // The metric includes its sampling period; what is left is the delay callbacks saw.
  const lag = (q: string) => Number(new RegExp(`^optical_flow_nodejs_eventloop_lag_${q}_seconds ([0-9.e+-]+)$`, 'm').exec(lagText)?.[1]) * 1000 - EVENT_LOOP_PRECISION_MS;
  const rssAfter = await metric(base, 'optical_flow_process_resident_memory_bytes');
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats as unknown as Record<string, { count: number }>).map(([k, v]) => [k, Number(v.count)]));
  const otherErrors = Object.entries(statuses).filter(([code]) => code !== '200' && code !== '503').reduce((n, [, c]) => n + c, 0) + result.errors;
  return {
    connections, seconds: result.duration, statuses, otherErrors, timeouts: result.timeouts,
    okPerSecond: (statuses['200'] ?? 0) / result.duration,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    rssMB: { before: rssBefore / 2 ** 20, after: rssAfter / 2 ** 20 },
    eventLoopDelayMs: { p50: lag('p50'), p99: lag('p99'), max: lag('max') },
  };
}

async function main() {
  const request = await multipart();
  const server = await startServer();
  const load = [];
  try {
    for (const connections of [QUEUE_LIMIT, 4 * QUEUE_LIMIT, 4 * QUEUE_LIMIT]) {
      process.stderr.write(`load: ${connections} connections for ${DURATION} s...\n`);
      load.push(await loadRun(server.base, connections, request));
    }
  } finally {
    await server.stop();
  }

  let fault: unknown = 'skipped: redis-server is not installed';
  if (hasRedis()) {
    process.stderr.write('fault run: two workers, 20 jobs, SIGKILL and a Redis restart...\n');
    const dir = fs.mkdtempSync(path.join(tmpDir(), 'bench-fault-'));
    const shared = path.join(dir, 'shared');
    const redis = await RedisServer.start(path.join(dir, 'redis'));
    const clipFile = path.join(dir, 'clip.avi');
    const cv = opencv();
    const clip = makeDemoClip(64, 48, 8);
    const writer = new cv.VideoWriter(clipFile, cv.VideoWriter.fourcc('MJPG'), 24, new cv.Size(64, 48), true);
    for (const frame of clip.frames) writer.write(matFromRgb({ data: frame, width: 64, height: 48 }));
    writer.release();
    const flow = await createFlowServer({ models: [MODEL], threads: 1, redis: redis.url, sharedDir: shared });
    try {
      const base = await flow.listen({ port: 0 });
      const run = await faultRun({ base, redis, shared, video: fs.readFileSync(clipFile) });
      const times = new Map<string, number>();
      for (const id of run.completions) times.set(id, (times.get(id) ?? 0) + 1);
      fault = {
        jobs: run.ids.length, completed: run.states.filter((s) => s === 'completed').length, failed: run.states.filter((s) => s === 'failed').length,
        completedExactlyOnce: run.ids.filter((id) => times.get(id) === 1).length, duplicates: run.ids.filter((id) => (times.get(id) ?? 0) > 1).length,
        seconds: run.seconds, survivorExitCode: run.survivorExitCode,
      };
    } finally {
      await flow.close();
      await redis.stop();
    }
  }

  const results = { date: new Date().toISOString(), durationPerRun: DURATION, queueLimit: QUEUE_LIMIT, frames: `64x64 PNG pair, ${MODEL}, 12 iterations`, load, fault };
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify(results, null, 2));
  const rows = load.map((r) => `| ${r.connections} | ${r.statuses['200'] ?? 0} | ${r.statuses['503'] ?? 0} | ${r.otherErrors} | ${r.okPerSecond.toFixed(1)} | ` +
    `${r.latencyMs.p50} / ${r.latencyMs.p99} | ${r.rssMB.before.toFixed(0)} → ${r.rssMB.after.toFixed(0)} | ` +
    `${r.eventLoopDelayMs.p50.toFixed(1)} / ${r.eventLoopDelayMs.p99.toFixed(1)} / ${r.eventLoopDelayMs.max.toFixed(1)} |`);
  console.log(['| connections | 200 | 503 | other errors | flows/s | latency p50 / p99 ms | server RSS MB | event-loop delay p50 / p99 / max ms |',
    '|---|---|---|---|---|---|---|---|', ...rows].join('\n'));
  console.log(`fault run: ${JSON.stringify(fault)}`);
  console.log(`results: ${OUT}`);
}

main().catch((error) => { console.error(error); process.exitCode = 1; });
