// The published weights, by name. The facts (addresses, checksums, key formats, training data, metrics, licences)
// live once, in models/weights.json; this module reads them, resolves names and lets an application add its own.
import * as fs from 'fs';
import * as path from 'path';
import { FlowError } from '../FlowError';
import { architectures, MODELS_DIR } from '../models';
import * as is from '../validate';

/** Published metrics by dataset, as torchvision's `meta['_metrics']`: `{ 'sintel-train-clean': { epe: 1.44 } }`. */
export type WeightsMetrics = Record<string, Record<string, number>>;

/** One set of weights the library can load by name. */
export interface WeightsEntry {
  /** `source:name`, e.g. `authors:raft-things`, `torchvision:raft_large_C_T_SKHT_V2`. */
  name: string;
  /** Short names that resolve within `model`, e.g. `things` for `{ model: 'raft' }`. */
  aliases: string[];
  /** The model name users give (`raft`, `raft-small`, `flownets`, `flownetc`). */
  model: string;
  /** The export the weights go into (usually `model`; e.g. `flownet2-s` for ptlflow's FlowNetS). */
  architecture: string;
  /** Who publishes them (a key of the sources table). */
  source: string;
  /** The file's name in the cache. */
  file: string;
  /** Where it is downloaded from (absent for archive members and bundled weights). */
  url?: string;
  /** The archive (a key of the archives table) and the member inside it, for weights published in a zip. */
  archive?: string;
  member?: string;
  /** The full SHA-256, when published. */
  sha256?: string;
  /** The SHA-256's leading hex digits in the file name (torch.hub's check), when that is all that is published. */
  sha256Prefix?: string;
  /** The size in bytes, when published. */
  bytes?: number;
  /** How the file names the tensors (a key of the key-formats table). */
  keyFormat: string;
  /** The channel order the weights expect; the library converts frames to it. */
  inputOrder: 'rgb' | 'bgr';
  /** The weights are inside the bundled export itself. */
  bundled: boolean;
  /** The architecture's default when `weights` is not given. */
  recommended: boolean;
  trainedOn: string;
  metrics: WeightsMetrics;
  metricsNote?: string;
  note?: string;
}

export interface WeightsSource {
  title: string;
  container: string;
  licence: string;
  verification: string;
}

export interface WeightsArchive {
  source: string;
  file: string;
  url: string;
  note?: string;
}

export interface KeyFormat {
  name: string;
  description: string;
  /** Architectures the format applies to (all when absent). */
  architectures?: string[];
  /** Regular-expression rewrites (ECMAScript syntax, `$1` in replacements) applied in order to each key. */
  rules: [string, string][];
}

interface CatalogueFile {
  keyFormats: Record<string, Omit<KeyFormat, 'name'>>;
  sources: Record<string, WeightsSource>;
  archives: Record<string, WeightsArchive>;
  weights: Partial<WeightsEntry>[];
}

export const CATALOGUE_FILE = path.join(MODELS_DIR, 'weights.json');
const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]*:[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const HEX = /^[0-9a-f]+$/;

class Catalogue {
  readonly keyFormats = new Map<string, KeyFormat>();
  readonly sources = new Map<string, WeightsSource>();
  readonly archives = new Map<string, WeightsArchive>();
  readonly entries = new Map<string, WeightsEntry>();

  constructor(file: CatalogueFile) {
    for (const [name, format] of Object.entries(file.keyFormats)) this.keyFormats.set(name, { name, ...format });
    for (const [name, source] of Object.entries(file.sources)) this.sources.set(name, source);
    for (const [name, archive] of Object.entries(file.archives)) this.archives.set(name, archive);
    for (const raw of file.weights) this.add(raw, false);
  }

  add(raw: Partial<WeightsEntry>, replace: boolean): WeightsEntry {
    const entry = this.check(raw);
    if (this.entries.has(entry.name) && !replace) {
      throw is.valueError('entry.name', 'a name not yet in the catalogue (or { replace: true })', entry.name);
    }
    this.entries.set(entry.name, entry);
    return entry;
  }

  private check(raw: Partial<WeightsEntry>): WeightsEntry {
    if (raw === null || typeof raw !== 'object') throw is.typeError('entry', 'a weights entry object', raw);
    const name = is.string('entry.name', raw.name);
    if (!NAME_PATTERN.test(name)) throw is.valueError('entry.name', "'source:name' (letters, digits, '_', '-', '.')", name);
    const arches = architectures();
    const architecture = is.string('entry.architecture', raw.architecture ?? raw.model);
    if (!(architecture in arches)) throw is.valueError('entry.architecture', `one of ${Object.keys(arches).join(', ')}`, architecture);
    const model = is.string('entry.model', raw.model ?? architecture);
    const source = is.string('entry.source', raw.source ?? name.slice(0, name.indexOf(':')));
    const keyFormat = is.string('entry.keyFormat', raw.keyFormat ?? 'state-dict');
    if (!this.keyFormats.has(keyFormat)) throw is.valueError('entry.keyFormat', `one of ${[...this.keyFormats.keys()].join(', ')}`, keyFormat);
    const bundled = raw.bundled === true;
    if (raw.archive !== undefined && !this.archives.has(raw.archive)) {
      throw is.valueError('entry.archive', `one of ${[...this.archives.keys()].join(', ')}`, raw.archive);
    }
    if (!bundled && raw.url === undefined && raw.archive === undefined) throw is.typeError('entry.url', 'a URL (or an archive)', raw.url);
    if (raw.url !== undefined) {
      let url: URL;
      try {
        url = new URL(is.string('entry.url', raw.url));
      } catch {
        throw is.valueError('entry.url', 'an http(s) URL', raw.url);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw is.valueError('entry.url', 'an http(s) URL', raw.url);
    }
    if (raw.archive !== undefined && raw.member === undefined) throw is.typeError('entry.member', 'the file inside the archive', raw.member);
    if (raw.sha256 !== undefined && (typeof raw.sha256 !== 'string' || raw.sha256.length !== 64 || !HEX.test(raw.sha256))) {
      throw is.valueError('entry.sha256', '64 lower-case hex digits', raw.sha256);
    }
    const prefix = raw.sha256Prefix;
    if (prefix !== undefined && (typeof prefix !== 'string' || prefix.length < 6 || prefix.length > 64 || !HEX.test(prefix))) {
      throw is.valueError('entry.sha256Prefix', '6 to 64 lower-case hex digits', prefix);
    }
    if (raw.bytes !== undefined) is.integer('entry.bytes', raw.bytes, 1, Number.MAX_SAFE_INTEGER);
    const file = raw.file ?? (raw.url !== undefined ? path.posix.basename(new URL(raw.url).pathname) : undefined);
    if (!bundled && (typeof file !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(file))) {
      throw is.valueError('entry.file', 'a plain file name', file);
    }
    const inputOrder = raw.inputOrder ?? 'rgb';
    if (inputOrder !== 'rgb' && inputOrder !== 'bgr') throw is.valueError('entry.inputOrder', "'rgb' or 'bgr'", inputOrder);
    return {
      name, model, architecture, source, keyFormat, bundled, inputOrder,
      aliases: Array.isArray(raw.aliases) ? raw.aliases.map((a, i) => is.string(`entry.aliases[${i}]`, a)) : [],
      file: bundled ? `${architecture}.pt` : file as string,
      url: raw.url, archive: raw.archive, member: raw.member, sha256: raw.sha256, sha256Prefix: prefix, bytes: raw.bytes,
      recommended: raw.recommended === true,
      trainedOn: typeof raw.trainedOn === 'string' ? raw.trainedOn : 'not stated',
      metrics: raw.metrics && typeof raw.metrics === 'object' ? raw.metrics : {},
      metricsNote: raw.metricsNote, note: raw.note,
    };
  }
}

let catalogue: Catalogue | undefined;

function load(): Catalogue {
  catalogue ??= new Catalogue(JSON.parse(fs.readFileSync(CATALOGUE_FILE, 'utf8')) as CatalogueFile);
  return catalogue;
}

/** Every set of weights the library knows by name, in catalogue order. */
export function weightsCatalogue(): WeightsEntry[] {
  return [...load().entries.values()];
}

export function weightsSource(name: string): WeightsSource | undefined {
  return load().sources.get(name);
}

export function weightsArchive(name: string): WeightsArchive | undefined {
  return load().archives.get(name);
}

/**
 * Adds weights to the catalogue, for example an application's fine-tuned set on its own server; afterwards
 * `load({ weights: entry.name })` fetches, verifies and caches them like the published ones. An existing name is
 * replaced only with `{ replace: true }`.
 */
export function registerWeights(entry: Partial<WeightsEntry> & { name: string }, options: { replace?: boolean } = {}): WeightsEntry {
  return load().add(entry, options.replace === true);
}

/**
 * The key formats a weights file may use: a catalogue entry's own, or for a file given by path every format that
 * applies to `architecture` (every format when the architecture is not known).
 */
export function keyFormatsFor(architecture: string | undefined, entry?: WeightsEntry): KeyFormat[] {
  const formats = load().keyFormats;
  if (entry) return [formats.get(entry.keyFormat) as KeyFormat];
  return [...formats.values()].filter((f) => !f.architectures || architecture === undefined || f.architectures.includes(architecture));
}

/** The weights an architecture loads when `weights` is not given, if it has published ones. */
export function recommendedWeights(architecture: string): WeightsEntry | undefined {
  return weightsCatalogue().find((e) => e.architecture === architecture && e.recommended);
}

/**
 * The entry a `weights` name means for `model` (a model name, or undefined when only the weights were given):
 * a full `source:name`, an alias within the model (`things`), or a name unique in the catalogue
 * (`raft_large_C_T_SKHT_V2`). Unknown names are an `ERR_WEIGHTS` error suggesting the closest.
 */
export function findWeights(name: string, model: string | undefined): WeightsEntry {
  const entries = weightsCatalogue();
  const fits = (e: WeightsEntry) => model === undefined || e.model === model || e.architecture === model;
  const exact = entries.find((e) => e.name === name);
  if (exact) {
    if (!fits(exact)) {
      throw new FlowError('ERR_WEIGHTS', `weights '${name}' are for ${exact.architecture === exact.model ? `'${exact.model}'` : `'${exact.model}' (${exact.architecture})`}, not '${model}'`);
    }
    return exact;
  }
  const byAlias = entries.filter((e) => fits(e) && e.aliases.includes(name));
  if (byAlias.length === 1) return byAlias[0];
  const byStem = entries.filter((e) => fits(e) && e.name.slice(e.name.indexOf(':') + 1) === name);
  if (byStem.length === 1) return byStem[0];
  const candidates = entries.filter(fits);
  const ambiguous = [...byAlias, ...byStem];
  if (ambiguous.length > 1) {
    throw new FlowError('ERR_WEIGHTS', `weights '${name}' could mean ${ambiguous.map((e) => `'${e.name}'`).join(' or ')}; give the full name`);
  }
  const names = candidates.flatMap((e) => [e.name, ...e.aliases]);
  const guess = is.closest(name, names);
  throw new FlowError('ERR_WEIGHTS', `unknown weights '${name}'${model ? ` for '${model}'` : ''}` +
    (guess ? `; did you mean '${guess}'?` : `; known: ${candidates.map((e) => e.name).join(', ')} (or a path to a file, or 'random')`));
}
