import * as fs from 'fs';
import * as path from 'path';
import { FlowEstimator, flowMetrics, readFlo } from '..';
import { readImage } from './images';
import { CommandSpec, integerOption, loadOptions, stringOption, UsageError, WEIGHTS_OPTION } from './options';

interface GroundTruthPair { name: string; a: string; b: string; flow: string }

/** Image pairs with ground truth in a folder, in the naming schemes of FlyingChairs, mmflow's fixtures and Sintel. */
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

export const evaluateCommand: CommandSpec = {
  name: 'eval',
  synopsis: '<folder>...',
  summary: 'End-point error and Fl-all of each model on every pair with ground truth in the folders ' +
    '(NAME-img0/-img1 + NAME-gt.flo, NAME_img1/_img2 + NAME_flow.flo, frame_N + frame_N+1 + flow_N.flo).',
  options: {
    ...WEIGHTS_OPTION,
    model: { type: 'string', value: 'M[,M...]', help: 'models to evaluate (default raft-small)' },
    iterations: { type: 'string', value: 'N', help: 'refinement iterations (default: the model\'s)' },
    json: { type: 'string', value: 'FILE', help: 'also write the rows as JSON' },
  },
  async run(values, positionals) {
    if (positionals.length === 0) throw new UsageError('eval needs at least one folder');
    const folders = positionals.map((folder) => {
      if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw new UsageError(`'${folder}' is not a folder`);
      const pairs = findPairs(folder);
      if (pairs.length === 0) throw new UsageError(`no image pairs with ground truth found in '${folder}'`);
      return { folder, pairs };
    });
    const json = stringOption(values, 'json');
    if (json !== undefined && !fs.existsSync(path.dirname(path.resolve(json)))) {
      throw new UsageError(`--json: folder '${path.dirname(path.resolve(json))}' does not exist`);
    }
    const models = (stringOption(values, 'model') ?? 'raft-small').split(',');
    const rows: Record<string, unknown>[] = [];
    for (const model of models) {
      const flow = await FlowEstimator.load(loadOptions(values, model));
      try {
        for (const { folder, pairs } of folders) {
          const sums = { epe: 0, flAll: 0 };
          for (const pair of pairs) {
            const field = await flow.estimate(readImage(pair.a), readImage(pair.b), { iterations: integerOption(values, 'iterations') });
            const m = flowMetrics(field, readFlo(pair.flow));
            sums.epe += m.epe;
            sums.flAll += m.flAll;
          }
          const row = { model, folder, pairs: pairs.length, epe: sums.epe / pairs.length, flAll: sums.flAll / pairs.length };
          rows.push(row);
          console.log(`${model.padEnd(11)} ${path.basename(path.resolve(folder)).padEnd(14)} ${String(pairs.length).padStart(3)} pairs  ` +
            `EPE ${row.epe.toFixed(3)} px  Fl-all ${(100 * row.flAll).toFixed(1)}%`);
        }
      } finally {
        await flow.dispose();
      }
    }
    if (json) fs.writeFileSync(json, JSON.stringify(rows, null, 2));
  },
};
