import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_MODEL, FlowEstimator, flowToColor, writeFlo } from '..';
import { readImage, writePng } from './images';
import { CommandSpec, integerOption, loadOptions, stringOption, UsageError, MODEL_LOAD_OPTIONS } from './options';

export const estimateCommand: CommandSpec = {
  name: 'estimate',
  synopsis: '<imageA> <imageB>',
  summary: 'Flow from A to B, written as PREFIX.flo and a colour picture PREFIX.png.',
  options: {
    ...MODEL_LOAD_OPTIONS,
    model: { type: 'string', value: 'M', help: 'model name or export (default raft-small)' },
    iterations: { type: 'string', value: 'N', help: 'refinement iterations (default: the model\'s)' },
    out: { type: 'string', value: 'PREFIX', help: 'output prefix (default flow)' },
  },
  async run(values, positionals) {
    const [a, b] = positionals;
    if (!a || !b || positionals.length > 2) throw new UsageError('estimate needs exactly two images');
    const out = stringOption(values, 'out') ?? 'flow';
    const outDir = path.dirname(path.resolve(out));
    // Checked before the inference, so that a wrong --out does not cost the result.
    if (!fs.existsSync(outDir) || !fs.statSync(outDir).isDirectory()) throw new UsageError(`--out: folder '${outDir}' does not exist`);
    const frames = [readImage(a), readImage(b)];
    const flow = await FlowEstimator.load(loadOptions(values, stringOption(values, 'model') ?? DEFAULT_MODEL));
    try {
      const field = await flow.estimate(frames[0], frames[1], { iterations: integerOption(values, 'iterations') });
      writeFlo(`${out}.flo`, field);
      writePng(`${out}.png`, flowToColor(field));
      console.log(`${field.width}x${field.height}, largest motion ${field.maxMagnitude().toFixed(2)} px: ${out}.flo, ${out}.png`);
    } finally {
      await flow.dispose();
    }
  },
};
