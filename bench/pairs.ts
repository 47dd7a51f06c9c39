// Single pairs as a user meets them: estimate() against PyTorch eager with the same weights, each side in its own
// warm process, on the same frames. Below 1080p the sides take turns request by request (the order rotated every
// round), so that whatever else the machine does falls on all of them alike; the first request of each process is
// reported apart (cold: graph profiling, first touch of memory). Anchors: torch 1.13 with torchvision's RAFT
// (Debian's), this package's model in PyTorch 2.x eager, and at 1024x436 PyTorch 2.x's other paths (channels-last,
// bfloat16 autocast, torch.compile with --compile). Minor page faults per request show what the allocators cost.
import * as os from 'os';
import { PYTHON, DEBIAN_PYTHON, RequestRunner, type TimedReply } from './RequestRunner';
import { exportWithWeights, framePair } from './inputs';
import { pythonJson } from './python';

export const PAIR_SIZES: [number, number][] = [[320, 240], [1024, 436], [1920, 1080]];
const INTERLEAVED_BELOW = 1920 * 1080;

interface Side { name: string; start: () => Promise<RequestRunner> }
export interface SideResult {
  side: string; cold: number; steady: number; fastest: number; minorFaults: number; peakRssMb: number;
  eventLoopLagMs?: TimedReply['eventLoopLagMs'];
}
export interface PairsRow { model: string; width: number; height: number; frames: string; iterations: number; gflop: number; sides: SideResult[] }

const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];

function sides(model: string, width: number, threads: number, compile: boolean, export_: string): Side[] {
  const raft = model.startsWith('raft');
  const list: Side[] = [
    { name: 'estimate() float32', start: () => RequestRunner.addon('addon', { model: export_, threads }) },
  ];
  if (raft) list.push({ name: 'estimate() bfloat16', start: () => RequestRunner.addon('addon bf16', { model: export_, threads, precision: 'bfloat16' }) });
  list.push({ name: `torch 1.13 eager (${raft ? 'torchvision' : 'this model'})`, start: () => RequestRunner.anchor('torch 1.13', DEBIAN_PYTHON, export_, raft ? 'torchvision' : 'eager', threads) });
  list.push({ name: 'torch 2.x eager', start: () => RequestRunner.anchor('torch 2.x', PYTHON, export_, 'eager', threads) });
  if (raft && width === 1024) {
    list.push({ name: 'torch 2.x eager, channels-last', start: () => RequestRunner.anchor('channels-last', PYTHON, export_, 'channels-last', threads) });
    list.push({ name: 'torch 2.x eager, bfloat16 autocast', start: () => RequestRunner.anchor('autocast', PYTHON, export_, 'autocast', threads) });
    if (compile) list.push({ name: 'torch 2.x torch.compile', start: () => RequestRunner.anchor('compile', PYTHON, export_, 'compile', threads) });
  }
  return list;
}

function summarise(side: string, replies: TimedReply[]): SideResult {
  const [cold, ...steady] = replies;
  const lags = steady.map((r) => r.eventLoopLagMs).filter((l) => l !== undefined);
  return {
    side, cold: cold.seconds, steady: median(steady.map((r) => r.seconds)), fastest: Math.min(...steady.map((r) => r.seconds)),
    minorFaults: median(steady.map((r) => r.minorFaults)), peakRssMb: Math.max(...replies.map((r) => r.peakRssMb)),
    eventLoopLagMs: lags.length ? { p50: median(lags.map((l) => l!.p50)), p99: median(lags.map((l) => l!.p99)), max: Math.max(...lags.map((l) => l!.max)) } : undefined,
  };
}

export async function benchPairs(options: { models: string[]; sizes: [number, number][]; threads: number; rounds: number; compile: boolean; dir: string }): Promise<PairsRow[]> {
  const rows: PairsRow[] = [];
  for (const model of options.models) {
    const export_ = exportWithWeights(model);
    for (const [width, height] of options.sizes) {
      const frames = framePair(width, height, options.dir);
      const iterations = model.startsWith('raft') ? 12 : 1;
      const request = { a: frames.a, b: frames.b, width, height, iterations };
      const gflop = pythonJson<{ gflop: number }>(['bench/python/baseline.py', 'flops', '--model', export_, '--size', String(width), String(height),
        '--iterations', String(iterations)]).gflop;
      let list = sides(model, width, options.threads, options.compile, export_);
      const replies = new Map<string, TimedReply[]>(list.map((s) => [s.name, []]));
      if (width * height < INTERLEAVED_BELOW) {
        const runners = [];
        for (const side of list) runners.push(await side.start());
        try {
          for (const [k, runner] of runners.entries()) replies.get(list[k].name)!.push(await runner.request(request));
          for (let round = 0; round < options.rounds; round++) {
            for (let j = 0; j < runners.length; j++) {
              const k = (j + round) % runners.length;
              replies.get(list[k].name)!.push(await runners[k].request(request));
            }
          }
        } finally {
          await Promise.all(runners.map((r) => r.stop()));
        }
      } else {
        // 1080p: one side at a time (eager holds a 4 GB volume and its working set; two at once would not fit
        // beside the addon's cache), the 1.13 anchor left out as the slower of the eager two.
        list = list.filter((s) => !s.name.startsWith('torch 1.13'));
        for (const side of list) {
          const runner = await side.start();
          try {
            for (let k = 0; k < 3; k++) replies.get(side.name)!.push(await runner.request(request));
          } finally {
            await runner.stop();
          }
        }
      }
      const row: PairsRow = { model, width, height, frames: frames.source, iterations, gflop, sides: list.map((s) => summarise(s.name, replies.get(s.name)!)) };
      rows.push(row);
      for (const line of pairsTable([row]).slice(2)) console.log(line);
    }
  }
  return rows;
}

/** The README's table: per model, size and side, with the ratio of each side's steady time to estimate()'s. */
export function pairsTable(rows: PairsRow[]): string[] {
  const lines = ['| model | size | side | first request s | steady s (median; fastest) | time ÷ estimate() float32 | minor faults / request | peak RSS MB |',
    '|---|---|---|---|---|---|---|---|'];
  for (const row of rows) {
    const addon = row.sides[0].steady;
    for (const side of row.sides) {
      lines.push(`| ${row.model} | ${row.width}x${row.height} | ${side.side} | ${side.cold.toFixed(2)} | ${side.steady.toFixed(3)}; ${side.fastest.toFixed(3)} | ` +
        `${(side.steady / addon).toFixed(2)}x | ${Math.round(side.minorFaults)} | ${side.peakRssMb.toFixed(0)} |`);
    }
  }
  return lines;
}

export const machine = () => ({ cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryGb: Math.round(os.totalmem() / 2 ** 30), load: os.loadavg() });
