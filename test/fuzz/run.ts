// npm run fuzz: makes a corpus of hostile checkpoints and exports, loads each in a worker process, prints the
// outcome per mutation and writes bench/results/fuzz.json. Exits non-zero on any signal, hang, memory past the bound or
// error without the right code.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { FuzzRunner, FuzzSummary } from './FuzzRunner';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** Writes a corpus with the Python generator; returns its cases.json. */
export function makeCorpus(out: string, weights: number, models: number, seed: number): string {
  const result = spawnSync(path.join(ROOT, 'scripts', 'python'), [path.join(ROOT, 'test', 'fuzz', 'corpus.py'), '--out', out,
    '--weights', String(weights), '--models', String(models), '--seed', String(seed)],
  { encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } });
  if (result.status !== 0) throw new Error(`corpus.py failed:\n${result.stderr}`);
  return path.join(out, 'cases.json');
}

/** One line per mutation: how many cases loaded, how many were refused with a code, how many failed. */
export function table(summary: FuzzSummary): string[] {
  const rows = new Map<string, { loaded: number; coded: number; failed: number }>();
  for (const { fuzzCase, outcome } of summary.results) {
    const key = `${fuzzCase.kind} ${fuzzCase.mutation}`;
    const row = rows.get(key) ?? { loaded: 0, coded: 0, failed: 0 };
    if (outcome.kind === 'loaded') row.loaded++;
    else if (outcome.kind === 'coded') row.coded++;
    else row.failed++;
    rows.set(key, row);
  }
  return [...rows.entries()].sort().map(([key, r]) =>
    `${key.padEnd(34)} ${String(r.loaded + r.coded + r.failed).padStart(5)} cases: ${r.loaded} loaded, ${r.coded} coded errors, ${r.failed} failures`);
}

async function main() {
  const { values } = parseArgs({
    options: {
      weights: { type: 'string', default: '1000' }, models: { type: 'string', default: '300' },
      seed: { type: 'string' }, timeout: { type: 'string', default: '60' }, 'rss-limit-gb': { type: 'string', default: '3' },
    },
  });
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 1e9);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optical-flow-fuzz-'));
  try {
    const started = Date.now();
    const cases = makeCorpus(dir, Number(values.weights), Number(values.models), seed);
    console.log(`corpus: ${values.weights} weights files and ${values.models} exports, seed ${seed}`);
    const runner = new FuzzRunner(cases, { timeoutMs: Number(values.timeout) * 1000, rssLimitBytes: Number(values['rss-limit-gb']) * 2 ** 30 });
    const summary = await runner.run((result, index) => {
      if (result.outcome.kind === 'failure') console.log(`FAIL ${index} ${result.fuzzCase.mutation} ${result.fuzzCase.file}: ${result.outcome.why}`);
    });
    for (const line of table(summary)) console.log(line);
    const seconds = (Date.now() - started) / 1000;
    console.log(`${summary.results.length} cases in ${seconds.toFixed(0)} s: ${summary.signals} signals, ${summary.hangs} hangs, ` +
      `${summary.overMemory} over memory, ${summary.uncoded} without the right code; peak worker RSS ${(summary.peakRssBytes / 2 ** 20).toFixed(0)} MB`);
    const out = path.join(ROOT, 'bench', 'results', 'fuzz.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify({
      date: new Date().toISOString(), seed, seconds, signals: summary.signals, hangs: summary.hangs, overMemory: summary.overMemory,
      uncoded: summary.uncoded, peakRssBytes: summary.peakRssBytes, table: table(summary),
      failures: summary.results.filter((r) => r.outcome.kind === 'failure'),
    }, null, 2));
    console.log(`written to ${out}`);
    process.exitCode = summary.signals + summary.hangs + summary.overMemory + summary.uncoded > 0 ? 1 : 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
