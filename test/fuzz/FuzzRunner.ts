// Loads every case of a fuzz corpus in worker processes and classifies what happened: a correct load, a coded
// error, or a failure (a signal, a hang, memory past the bound, an error without the right code). A worker that
// dies is replaced, and the run continues from the next case.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface FuzzCase {
  kind: 'weights' | 'model';
  file: string;
  mutation: string;
  what: string;
}

export type FuzzOutcome =
  | { kind: 'loaded' }
  | { kind: 'coded'; stage: string; code: string; message: string }
  | { kind: 'failure'; why: string };

export interface FuzzResult {
  fuzzCase: FuzzCase;
  outcome: FuzzOutcome;
  seconds: number;
}

export interface FuzzOptions {
  /** A case running longer than this is a hang. */
  timeoutMs: number;
  /** A worker whose resident memory passes this is killed and its case fails. */
  rssLimitBytes: number;
}

export interface FuzzSummary {
  results: FuzzResult[];
  signals: number;
  hangs: number;
  overMemory: number;
  uncoded: number;
  /** Largest resident memory any worker reached, in bytes. */
  peakRssBytes: number;
}

const WORKER = path.join(__dirname, 'worker.js');
// The codes each stage may answer with: anything else is a failure.
const ALLOWED: Record<FuzzCase['kind'], Record<string, string[]>> = {
  weights: { load: ['ERR_WEIGHTS'], estimate: ['ERR_INFERENCE'] },
  model: { load: ['ERR_MODEL_LOAD'], estimate: ['ERR_INFERENCE'] },
};

function memoryOf(pid: number): { rss: number; peak: number } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: field('VmRSS'), peak: field('VmHWM') };
  } catch {
    return { rss: 0, peak: 0 };
  }
}

export class FuzzRunner {
  private readonly cases: FuzzCase[];
  private readonly casesFile: string;
  private readonly options: FuzzOptions;

  constructor(casesFile: string, options: FuzzOptions) {
    this.casesFile = casesFile;
    this.cases = JSON.parse(fs.readFileSync(casesFile, 'utf8')) as FuzzCase[];
    this.options = options;
  }

  async run(onResult?: (result: FuzzResult, index: number) => void): Promise<FuzzSummary> {
    const results: FuzzResult[] = new Array(this.cases.length);
    let peakRssBytes = 0;
    let next = 0;
    while (next < this.cases.length) {
      // The system allocator, so that resident memory is what the case holds, not blocks cached for reuse.
      const worker = spawn(process.execPath, [WORKER, this.casesFile, String(next)],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPTICAL_FLOW_ALLOCATOR: 'system' } });
      const outcome = await this.supervise(worker, next, (index, result) => {
        results[index] = result;
        onResult?.(result, index);
      });
      peakRssBytes = Math.max(peakRssBytes, outcome.peakRssBytes);
      next = outcome.nextIndex;
    }
    const failures = (why: RegExp) => results.filter((r) => r.outcome.kind === 'failure' && why.test(r.outcome.why)).length;
    return {
      results,
      signals: failures(/^signal/),
      hangs: failures(/^hang/),
      overMemory: failures(/^memory/),
      uncoded: failures(/^uncoded|^worker exited/),
      peakRssBytes,
    };
  }

  /** Follows one worker until it finishes or dies; returns where the next worker should start. */
  private supervise(worker: ChildProcess, first: number, record: (index: number, result: FuzzResult) => void) {
    return new Promise<{ nextIndex: number; peakRssBytes: number }>((resolve) => {
      let current = -1;
      let lastFinished = first - 1;
      let started = Date.now();
      let killedFor: string | undefined;
      let peakRssBytes = 0;
      let buffered = '';
      let stderr = '';
      const finish = (index: number, outcome: FuzzOutcome) => {
        record(index, { fuzzCase: this.cases[index], outcome, seconds: (Date.now() - started) / 1000 });
      };
      worker.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000); });
      worker.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (line.startsWith('start ')) {
            current = Number(line.slice(6));
            started = Date.now();
          } else if (line.startsWith('done ')) {
            const done = JSON.parse(line.slice(5)) as { index: number; stage: string; code?: string; message?: string };
            finish(done.index, this.classify(this.cases[done.index], done));
            lastFinished = done.index;
            current = -1;
          }
        }
      });
      const poll = setInterval(() => {
        const memory = memoryOf(worker.pid!);
        peakRssBytes = Math.max(peakRssBytes, memory.peak, memory.rss);
        if (current < 0 || killedFor) return;
        if (memory.rss > this.options.rssLimitBytes) killedFor = `memory: ${(memory.rss / 2 ** 30).toFixed(2)} GB resident`;
        else if (Date.now() - started > this.options.timeoutMs) killedFor = `hang: still running after ${this.options.timeoutMs / 1000} s`;
        if (killedFor) worker.kill('SIGKILL');
      }, 50);
      worker.on('exit', (code, signal) => {
        clearInterval(poll);
        if (code === 0 && current < 0) {
          resolve({ nextIndex: this.cases.length, peakRssBytes });
          return;
        }
        // The case in progress (or, between cases, the next one) is blamed, and the next worker starts after it.
        const blamed = current >= 0 ? current : lastFinished + 1;
        const why = killedFor ?? (signal ? `signal ${signal}` : `worker exited with code ${code}: ${stderr.trim().split('\n').pop()}`);
        if (blamed < this.cases.length) finish(blamed, { kind: 'failure', why });
        resolve({ nextIndex: blamed + 1, peakRssBytes });
      });
    });
  }

  private classify(fuzzCase: FuzzCase, done: { stage: string; code?: string; message?: string }): FuzzOutcome {
    if (done.stage === 'done') return { kind: 'loaded' };
    const allowed = ALLOWED[fuzzCase.kind][done.stage] ?? [];
    if (done.code && allowed.includes(done.code)) return { kind: 'coded', stage: done.stage, code: done.code, message: done.message ?? '' };
    return { kind: 'failure', why: `uncoded: ${done.stage} failed with ${done.code ?? 'no code'}: ${done.message}` };
  }
}
