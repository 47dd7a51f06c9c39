// Architectures by name. Their properties are defined once, in python/flowlib/models.py, which writes
// models/architectures.json; each export also carries them itself. Nothing here restates them.
import * as fs from 'fs';
import * as path from 'path';
import { PACKAGE_ROOT } from './binding';
import { FlowError } from './FlowError';
import { closest } from './validate';

/** What models/architectures.json says of one architecture. */
export interface ArchitectureProperties {
  family: string;
  stride: number;
  min_size: number;
  default_iterations: number;
  accepts_flow_init: boolean;
  upsampling: string;
}

export const MODELS_DIR = path.join(PACKAGE_ROOT, 'models');
/** The model `load()`, the command line and the service use when none is named. */
export const DEFAULT_MODEL = 'raft-small';
/** The most refinement iterations a call may ask for (the addon's kMaxIterations, held against this by a test). */
export const MAX_ITERATIONS = 100;
const REGISTRY_FILE = path.join(MODELS_DIR, 'architectures.json');

let registry: Record<string, ArchitectureProperties> | undefined;

/** Every architecture the project defines, by name. */
export function architectures(): Readonly<Record<string, ArchitectureProperties>> {
  registry ??= JSON.parse(fs.readFileSync(REGISTRY_FILE, 'utf8')) as Record<string, ArchitectureProperties>;
  return registry;
}

/**
 * Names that load without a path: every architecture has an export in models/ under its own name. The trained
 * RAFT-S carries its weights; the others hold the architecture alone and take published weights at load.
 */
export function bundledModels(): string[] {
  return Object.keys(architectures());
}

/**
 * Whether a `model` or `weights` value names a file rather than a name: it has a path separator or a model or
 * checkpoint extension, or a file of that name exists.
 */
export function looksLikePath(value: string): boolean {
  return value.includes('/') || value.includes('\\') || /\.(pth|pt|ckpt|tar|pkl|bin)$/i.test(value) || fs.existsSync(value);
}

/** A bundled model's name, or a path to a TorchScript export; returns the file to load. */
export function resolveModel(model: string): string {
  const bundled = bundledModels();
  if (bundled.includes(model)) {
    const file = path.join(MODELS_DIR, `${model}.pt`);
    if (!fs.existsSync(file)) {
      throw new FlowError('ERR_MODEL_LOAD', `bundled model '${model}' is not exported yet (${file} is missing); run \`npm run setup\``);
    }
    return file;
  }
  if (looksLikePath(model)) {
    if (!fs.existsSync(model)) throw new FlowError('ERR_MODEL_LOAD', `model file '${model}' does not exist`);
    if (!fs.statSync(model).isFile()) throw new FlowError('ERR_MODEL_LOAD', `model path '${model}' is not a file`);
    return path.resolve(model);
  }
  const guess = closest(model, bundled);
  throw new FlowError('ERR_MODEL_LOAD', `unknown model '${model}'` +
    (guess ? `; did you mean '${guess}'?` : `; bundled models are ${bundled.join(', ')}, or give a path to a .pt export`));
}
