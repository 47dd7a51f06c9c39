import * as fs from 'fs';
import * as path from 'path';
import { PACKAGE_ROOT } from './binding';
import { FlowError } from './FlowError';
import { closest } from './validate';

/** Models bundled in the package's models/ folder, by name. */
export const BUNDLED_MODELS = ['raft-small', 'raft', 'flownets', 'flownetc'] as const;
export type BundledModel = typeof BUNDLED_MODELS[number];

export const MODELS_DIR = path.join(PACKAGE_ROOT, 'models');

/** A bundled model's name, or a path to a TorchScript export; returns the file to load. */
export function resolveModel(model: string): string {
  if ((BUNDLED_MODELS as readonly string[]).includes(model)) {
    const file = path.join(MODELS_DIR, `${model}.pt`);
    if (!fs.existsSync(file)) {
      throw new FlowError('ERR_MODEL_LOAD', `bundled model '${model}' is not exported yet (${file} is missing); run \`npm run setup\``);
    }
    return file;
  }
  const looksLikePath = model.includes('/') || model.includes('\\') || model.endsWith('.pt') || model.endsWith('.pth');
  if (looksLikePath || fs.existsSync(model)) {
    if (!fs.existsSync(model)) throw new FlowError('ERR_MODEL_LOAD', `model file '${model}' does not exist`);
    if (!fs.statSync(model).isFile()) throw new FlowError('ERR_MODEL_LOAD', `model path '${model}' is not a file`);
    return path.resolve(model);
  }
  const guess = closest(model, BUNDLED_MODELS);
  throw new FlowError('ERR_MODEL_LOAD', `unknown model '${model}'` +
    (guess ? `; did you mean '${guess}'?` : `; bundled models are ${BUNDLED_MODELS.join(', ')}, or give a path to a .pt export`));
}
