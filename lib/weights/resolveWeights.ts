// Turns `model` and `weights` load options into what the addon loads: an export, a weights file (fetched when it is
// a published name), the key formats to read it with, and a description of the weights for `flow.info`.
import * as fs from 'fs';
import * as path from 'path';
import { FlowError } from '../FlowError';
import { architectures, DEFAULT_MODEL, looksLikePath, resolveModel } from '../models';
import { findWeights, keyFormatsFor, recommendedWeights, weightsCatalogue, weightsSource, type KeyFormat, type WeightsEntry, type WeightsMetrics } from './catalogue';
import { WeightsStore } from './WeightsStore';

/** What `flow.info.weights` says about the weights a model runs with. */
export interface WeightsInfo {
  /** The catalogue name (`authors:raft-things`), `random`, the file's name, or `export` (the export's own). */
  name: string;
  /** False only for random weights. */
  pretrained: boolean;
  /** Who published them (`authors`, `torchvision`, `flownetpytorch`, `ptlflow`, `project`), or `file` / `export`. */
  source: string;
  /** The file the weights were read from. */
  file?: string;
  url?: string;
  sha256?: string;
  /** How the file's integrity was established. */
  verification?: string;
  trainedOn: string;
  licence?: string;
  metrics: WeightsMetrics;
  metricsNote?: string;
  note?: string;
  /** The key format the file was read with. */
  keyFormat?: string;
}

export interface LoadPlan {
  modelPath: string;
  weightsPath?: string;
  keyFormats: KeyFormat[];
  randomSeed?: number;
  inputBgr: boolean;
  weights: WeightsInfo;
}

const RANDOM = 'random';

function describeEntry(entry: WeightsEntry, located: { path: string; verification: string; url?: string; sha256?: string }): WeightsInfo {
  return {
    name: entry.name, pretrained: true, source: entry.source, file: located.path, url: located.url ?? entry.url,
    sha256: located.sha256 ?? entry.sha256, verification: located.verification, trainedOn: entry.trainedOn,
    licence: weightsSource(entry.source)?.licence, metrics: entry.metrics, metricsNote: entry.metricsNote, note: entry.note,
    keyFormat: entry.bundled ? undefined : entry.keyFormat,
  };
}

/**
 * The weights' file. When the architecture's recommended weights (chosen because none were named) cannot be had
 * without the network, the error says which weights need none: never a silent fallback to other weights.
 */
async function fetchOrNameBundled(store: WeightsStore, entry: WeightsEntry, byDefault: boolean) {
  try {
    return await store.fetch(entry);
  } catch (error) {
    const bundled = weightsCatalogue().find((e) => e.bundled && e.architecture === entry.architecture);
    const code = (error as FlowError).code;
    if (!byDefault || !bundled || (code !== 'ERR_OFFLINE' && code !== 'ERR_DOWNLOAD')) throw error;
    const alias = bundled.aliases[0] ?? bundled.name;
    throw new FlowError(code, `${(error as Error).message}. These are '${entry.architecture}'s default weights; the ` +
      `weights trained by this project ship with the package and need no network: weights: '${alias}'`);
  }
}

/**
 * The export and weights for `model` (a name or an export's path) and `weights` (a published name, a file,
 * 'random', or undefined for the architecture's recommended published weights).
 */
export async function resolveWeights(model: string | undefined, weights: string | undefined, store: WeightsStore): Promise<LoadPlan> {
  const modelIsPath = model !== undefined && !(model in architectures()) && looksLikePath(model);
  if (model !== undefined && !modelIsPath) resolveModel(model); // an unknown name fails here, with a suggestion
  let entry: WeightsEntry | undefined;
  if (weights !== undefined && weights !== RANDOM && !looksLikePath(weights)) {
    entry = findWeights(weights, modelIsPath ? undefined : model);
  }
  const modelName = model ?? entry?.model ?? DEFAULT_MODEL;
  const architecture = entry?.architecture ?? (modelIsPath ? undefined : modelName);
  const modelPath = resolveModel(modelIsPath ? modelName : architecture ?? modelName);

  if (weights === RANDOM) {
    return {
      modelPath, keyFormats: [], randomSeed: 0, inputBgr: false,
      weights: { name: RANDOM, pretrained: false, source: 'random', trainedOn: 'nothing: random weights (seed 0), as asked', metrics: {} },
    };
  }
  if (weights !== undefined && entry === undefined) {
    const file = path.resolve(weights);
    if (!fs.existsSync(file)) throw new FlowError('ERR_WEIGHTS', `weights file '${weights}' does not exist`);
    if (!fs.statSync(file).isFile()) throw new FlowError('ERR_WEIGHTS', `weights path '${weights}' is not a file`);
    return {
      modelPath, weightsPath: file, keyFormats: keyFormatsFor(architecture), inputBgr: false,
      weights: { name: path.basename(file), pretrained: true, source: 'file', file, trainedOn: 'see the weights file', metrics: {} },
    };
  }
  if (entry === undefined) {
    if (modelIsPath) {
      return { modelPath, keyFormats: [], inputBgr: false, weights: { name: 'export', pretrained: true, source: 'export', file: modelPath, trainedOn: 'see the export', metrics: {} } };
    }
    entry = recommendedWeights(modelName);
    if (!entry) {
      throw new FlowError('ERR_WEIGHTS', `'${modelName}' has no published weights; give weights (a file) or weights: 'random' for random ones`);
    }
  }
  const located = await fetchOrNameBundled(store, entry, weights === undefined);
  const keyFormats = keyFormatsFor(entry.architecture, entry);
  if (entry.bundled) {
    return { modelPath: located.path, keyFormats: [], inputBgr: entry.inputOrder === 'bgr', weights: describeEntry(entry, located) };
  }
  return { modelPath, weightsPath: located.path, keyFormats, inputBgr: entry.inputOrder === 'bgr', weights: describeEntry(entry, located) };
}
