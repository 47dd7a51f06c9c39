// The fault run, shared by the job tests (which assert on its record) and the service benchmark (which reports
// its timings): two worker processes on one queue, twenty short video jobs, the first worker killed with SIGKILL
// as it starts a job, and Redis stopped and restarted while jobs remain.
import { ChildProcess, spawn } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { QueueEvents } from 'bullmq';
import { ROOT } from '../../test/helpers';
import type { RedisServer } from './RedisServer';

const CLI = path.join(ROOT, 'server', 'dist', 'cli', 'main.js');

export interface FaultRunWorker {
  child: ChildProcess;
  id: string;
  log: string;
  /** The worker's stdout, line by line (its log is JSON, one record per line). */
  stdoutLines: readline.Interface;
}

export interface FaultRunRecord {
  ids: string[];
  /** Final state of each job. */
  states: string[];
  /** The job the first worker had just started when it was killed. */
  killedJob: string;
  /** Completions per BullMQ's event stream, in order (whichever worker made them, whether or not it lived to log). */
  completions: string[];
  workers: FaultRunWorker[];
  /** Exit code of the surviving worker after SIGTERM. */
  survivorExitCode: number | null;
  seconds: { total: number; killToKilledJobDone: number; redisDown: number };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Kills the worker with SIGKILL as soon as its output says it started a job; resolves with that job's id. */
function killOnNextJob(worker: FaultRunWorker, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { worker.stdoutLines.off('line', onLine); reject(new Error('timed out waiting for the first worker to start a job')); }, timeoutMs);
    const onLine = (line: string) => {
      if (!line.includes('"msg":"job started"')) return;
      worker.child.kill('SIGKILL');
      worker.stdoutLines.off('line', onLine);
      clearTimeout(timer);
      resolve((JSON.parse(line) as { job: string }).job);
    };
    worker.stdoutLines.on('line', onLine);
  });
}

export async function faultRun(options: {
  base: string; redis: RedisServer; shared: string; video: Buffer; jobs?: number; queueName?: string;
}): Promise<FaultRunRecord> {
  const { base, redis, shared } = options;
  const count = options.jobs ?? 20;
  const workers: FaultRunWorker[] = [];
  const start = () => {
    const child = spawn(process.execPath, [CLI, 'worker', '--redis', redis.url, '--shared-dir', shared, '--threads', '1',
      '--lock-duration', '2000', '--stalled-interval', '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const entry = { child, id: `${os.hostname()}:${child.pid}`, log: '', stdoutLines: readline.createInterface({ input: child.stdout! }) };
    entry.stdoutLines.on('line', (line) => { entry.log += `${line}\n`; });
    child.stderr!.on('data', (chunk) => { entry.log += chunk; });
    workers.push(entry);
    return entry;
  };
  const [first, second] = [start(), start()];
  const events = new QueueEvents(options.queueName ?? 'optical-flow-video', {
    connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null },
  });
  events.on('error', () => undefined);
  const completions: string[] = [];
  const completedAt = new Map<string, number>();
  events.on('completed', ({ jobId }) => { completions.push(jobId); completedAt.set(jobId, Date.now()); });
  try {
    await events.waitUntilReady();
    await waitFor('two ready workers', async () => (workers.every((w) => w.log.includes('"msg":"worker ready"')) ? true : undefined));
    const started = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const body = new FormData();
      body.append('video', new Blob([new Uint8Array(options.video)]), 'clip.avi');
      for (const [k, v] of Object.entries({ outputs: 'flo', maxFrames: '6', iterations: '12' })) body.append(k, v);
      const response = await fetch(`${base}/v1/jobs`, { method: 'POST', body });
      if (response.status !== 202) throw new Error(`submit answered ${response.status}: ${await response.text()}`);
      ids.push((await response.json() as { id: string }).id);
    }
    const states = () => Promise.all(ids.map(async (id) => ((await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { state: string }).state));
    const completed = async () => (await states()).filter((s) => s === 'completed').length;

    await waitFor('three completed jobs', async () => ((await completed()) >= 3 ? true : undefined));
    // The kill lands in the same tick as the worker's "job started" line: a job lasts a few hundred milliseconds,
    // so a polling loop could find it already done.
    const killedJob = await killOnNextJob(first, 30_000);
    const killedAt = Date.now();

    const atKill = await completed();
    await waitFor('two more completed jobs', async () => ((await completed()) >= Math.min(count, atKill + 2) ? true : undefined));
    const downAt = Date.now();
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await redis.restart();
    const upAt = Date.now();

    await waitFor(`all ${count} jobs`, async () => ((await states()).every((s) => s === 'completed' || s === 'failed') ? true : undefined), 120_000);
    const finished = Date.now();
    const exited = new Promise<number | null>((resolve) => second.child.once('exit', resolve));
    second.child.kill('SIGTERM');
    const survivorExitCode = await exited;
    return {
      ids, states: await states(), killedJob, completions, workers, survivorExitCode,
      seconds: {
        total: (finished - started) / 1000,
        killToKilledJobDone: ((completedAt.get(killedJob) ?? NaN) - killedAt) / 1000,
        redisDown: (upAt - downAt) / 1000,
      },
    };
  } finally {
    await events.close();
    for (const w of workers) {
      if (w.child.exitCode === null && w.child.signalCode === null) {
        const exited = new Promise((resolve) => w.child.once('exit', resolve));
        w.child.kill('SIGKILL');
        await exited;
      }
    }
  }
}
