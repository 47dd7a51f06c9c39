import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEFAULT_MODEL, FlowEstimator, FlowField, FlowMetrics, flowMetrics, poolMetrics, readFlo } from '..';
import { findPairs, GroundTruthPair, readTruth } from './groundTruthPairs';
import { readImage } from './images';
import { PYTHON, PYTHON_PACKAGE, runPython } from './python';
import { CommandSpec, integerOption, loadOptions, numberOption, stringOption, UsageError, MODEL_LOAD_OPTIONS } from './options';

/** OpenCV's classical methods, run by the project's Python package (python/flowlib/baselines.py). */
export const CLASSICAL_METHODS = ['dis-medium', 'dis-fast', 'farneback', 'deepflow', 'zero'] as const;

interface Folder { folder: string; pairs: GroundTruthPair[] }
export interface EvaluationRow extends FlowMetrics {
  method: string; folder: string; pairs: number;
  /** Mean refinement iterations a pair took (RAFT models; fewer than --iterations where --tolerance stopped early). */
  iterations?: number;
}

/** Flows of the classical methods for every pair, as flow[method][pair index across the folders]. */
function classicalFlows(methods: string[], pairs: GroundTruthPair[], dir: string): (k: number, method: string) => FlowField {
  if (!fs.existsSync(path.join(PYTHON_PACKAGE, 'flowlib', 'baselines.py'))) {
    throw new UsageError(`--classical runs the project's Python package, which is not at ${PYTHON_PACKAGE} (it is in a clone, not in the npm package)`);
  }
  const list = path.join(dir, 'pairs.json');
  fs.writeFileSync(list, JSON.stringify(pairs.map((p) => [p.a, p.b])));
  const result = runPython(['-m', 'flowlib.baselines', '--pairs', list, '--flows-out', dir, '--methods', methods.join(',')]);
  if (result.error || result.status !== 0) {
    throw new Error(`--classical: ${PYTHON} -m flowlib.baselines failed: ` +
      `${result.error?.message ?? result.stderr.trim().split('\n').slice(-1)[0]}`);
  }
  return (k, method) => readFlo(path.join(dir, method, `${k}.flo`));
}

function formatRow(row: EvaluationRow): string {
  const bands = row.bySpeed.map((b) => (Number.isNaN(b.epe) ? '      -' : b.epe.toFixed(2).padStart(7))).join(' ');
  return `${row.method.padEnd(12)} ${row.folder.padEnd(16)} ${String(row.pairs).padStart(3)}  ${row.epe.toFixed(3).padStart(7)}  ` +
    `${(100 * row.flAll).toFixed(1).padStart(5)}%  ${bands}  ${row.iterations === undefined ? '    -' : row.iterations.toFixed(1).padStart(5)}`;
}

export const evaluateCommand: CommandSpec = {
  name: 'eval',
  synopsis: '<folder>...',
  summary: 'End-point error (mean over pairs), Fl-all and EPE by true speed (under 10, 10-40, over 40 px) of each model, ' +
    'and optionally of OpenCV\'s classical methods, on every pair with ground truth in the folders: FlyingChairs ' +
    '(NAME-img0/-img1 + NAME-gt.flo), NAME_img1/_img2 + NAME_flow.flo, frame_N + frame_N+1 + flow_N.flo, MPI-Sintel ' +
    'training (clean/, final/, flow/, invalid/) and KITTI (image_2/ or image_0/ with flow_occ/ or flow_noc/), counting ' +
    'only the pixels with known flow.',
  options: {
    ...MODEL_LOAD_OPTIONS,
    model: { type: 'string', value: 'M[,M...]', help: 'models to evaluate (default raft-small; none with --model "")' },
    iterations: { type: 'string', value: 'N', help: 'refinement iterations (default: the model\'s); with --tolerance, the most' },
    tolerance: { type: 'string', value: 'PX', help: 'RAFT: stop refining a pair once an iteration moves its flow by less than PX on average; the table gives the mean iterations run' },
    classical: { type: 'string', value: 'M[,M...]|all', help: `also OpenCV's ${CLASSICAL_METHODS.join(', ')} on the same pairs (needs python3-opencv and this project's python/)` },
    json: { type: 'string', value: 'FILE', help: 'also write the rows as JSON' },
  },
  async run(values, positionals) {
    if (positionals.length === 0) throw new UsageError('eval needs at least one folder');
    const folders: Folder[] = positionals.map((folder) => {
      if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw new UsageError(`'${folder}' is not a folder`);
      const pairs = findPairs(folder);
      if (pairs.length === 0) throw new UsageError(`no image pairs with ground truth found in '${folder}'`);
      return { folder, pairs };
    });
    const json = stringOption(values, 'json');
    if (json !== undefined && !fs.existsSync(path.dirname(path.resolve(json)))) {
      throw new UsageError(`--json: folder '${path.dirname(path.resolve(json))}' does not exist`);
    }
    const classicalOption = stringOption(values, 'classical');
    const classical = classicalOption === undefined ? [] : classicalOption === 'all' ? [...CLASSICAL_METHODS] : classicalOption.split(',');
    const unknown = classical.find((m) => !(CLASSICAL_METHODS as readonly string[]).includes(m));
    if (unknown !== undefined) throw new UsageError(`--classical: unknown method '${unknown}'; the methods are ${CLASSICAL_METHODS.join(', ')}, or all`);
    const modelOption = stringOption(values, 'model') ?? DEFAULT_MODEL;
    const models = modelOption === '' ? [] : modelOption.split(',');
    if (models.length === 0 && classical.length === 0) throw new UsageError('nothing to evaluate: give a --model or --classical');
    const iterations = integerOption(values, 'iterations');
    const tolerance = numberOption(values, 'tolerance');

    // The truth of every pair, read once; the pairs of all folders in one list, so the classical methods run once.
    const all = folders.flatMap((f) => f.pairs);
    const truths = all.map(readTruth);
    const rows: EvaluationRow[] = [];
    console.log(`${'method'.padEnd(12)} ${'set'.padEnd(16)} pairs      EPE  Fl-all   <10px 10-40px  >40px  iters`);
    const measure = async (method: string, estimate: (pair: GroundTruthPair, k: number) => Promise<FlowField> | FlowField) => {
      let offset = 0;
      for (const { folder, pairs } of folders) {
        const perPair: FlowMetrics[] = [];
        const ran: number[] = [];
        for (let k = 0; k < pairs.length; k++) {
          const { flow, valid } = truths[offset + k];
          const field = await estimate(pairs[k], offset + k);
          if (field.iterations !== undefined) ran.push(field.iterations);
          perPair.push(flowMetrics(field, flow, valid));
        }
        offset += pairs.length;
        const row: EvaluationRow = { method, folder: path.basename(path.resolve(folder)), pairs: pairs.length, ...poolMetrics(perPair) };
        if (ran.length === pairs.length) row.iterations = ran.reduce((a, b) => a + b, 0) / ran.length;
        rows.push(row);
        console.log(formatRow(row));
      }
    };
    for (const model of models) {
      const flow = await FlowEstimator.load(loadOptions(values, model));
      try {
        await measure(model, (pair) => flow.estimate(readImage(pair.a), readImage(pair.b), { iterations, tolerance }));
      } finally {
        await flow.dispose();
      }
    }
    if (classical.length) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optical-flow-eval-'));
      try {
        const flowOf = classicalFlows(classical, all, dir);
        for (const method of classical) await measure(method, (_pair, k) => flowOf(k, method));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    if (json) fs.writeFileSync(json, JSON.stringify(rows, (_key, value) => (value === Infinity ? null : value), 2));
  },
};
