// One side of a timed comparison, in its own process (so that its memory is its own): the addon through
// bench/requestWorker.js, or a PyTorch anchor through bench/python/anchor.py. Both load once and answer one timed
// request per line, so the benchmarks can alternate between sides request by request and both stay warm.
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';
import type { CorrelationMode, LoadOptions } from '../lib';

export const ROOT = path.resolve(__dirname, '..', '..');
/** The project's Python (PyTorch 2.x) and Debian's (torch 1.13 with torchvision 0.14). */
export const PYTHON = path.join(ROOT, 'scripts', 'python');
export const DEBIAN_PYTHON = '/usr/bin/python3';

export interface TimedRequest { a: string; b: string; width: number; height: number; iterations: number; correlation?: CorrelationMode }
export interface TimedReply {
  seconds: number;
  minorFaults: number;
  peakRssMb: number;
  eventLoopLagMs?: { p50: number; p99: number; max: number };
}

export class RequestRunner {
  private readonly replies: ((line: string) => void)[] = [];
  private readonly exited: Promise<number | null>;
  private stderr = '';

  private constructor(readonly name: string, private readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('{')) this.replies.shift()?.(line);
    });
    child.stderr!.on('data', (chunk) => { this.stderr = (this.stderr + chunk).slice(-4000); });
    this.exited = new Promise((resolve) => child.on('exit', (code) => {
      for (const reply of this.replies.splice(0)) reply('');
      resolve(code);
    }));
  }

  /** The addon with these load options (and environment, for OPTICAL_FLOW_ALLOCATOR). */
  static addon(name: string, options: LoadOptions, env: NodeJS.ProcessEnv = {}): Promise<RequestRunner> {
    return RequestRunner.start(name, process.execPath, [path.join(__dirname, 'requestWorker.js'), JSON.stringify(options)], env);
  }

  /** A PyTorch anchor: `impl` as anchor.py takes it, in Debian's torch 1.13 or the project's PyTorch 2.x. */
  static anchor(name: string, python: string, model: string, impl: string, threads: number): Promise<RequestRunner> {
    return RequestRunner.start(name, python, [path.join(ROOT, 'bench', 'python', 'anchor.py'), '--model', model, '--impl', impl,
      '--threads', String(threads)], { PYTHONPATH: path.join(ROOT, 'python') });
  }

  private static async start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RequestRunner> {
    const merged = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, value]) => value !== undefined));
    const runner = new RequestRunner(name, spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: merged }));
    await runner.next();
    return runner;
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => this.replies.push((line) => {
      if (!line) reject(new Error(`${this.name} exited: ${this.stderr.trim().split('\n').slice(-5).join('\n')}`));
      else resolve(JSON.parse(line) as Record<string, unknown>);
    }));
  }

  async request(request: TimedRequest): Promise<TimedReply> {
    const reply = this.next();
    this.child.stdin!.write(`${JSON.stringify(request)}\n`);
    return (await reply) as unknown as TimedReply;
  }

  async stop(): Promise<void> {
    this.child.stdin!.end();
    await this.exited;
  }
}
