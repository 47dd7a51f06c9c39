// optical-flow weights list | fetch NAME... | verify [NAME...] | path NAME: the published weights and the cache.
import { findWeights, weightsCatalogue, weightsSource, type WeightsEntry } from '../weights/catalogue';
import { WeightsStore } from '../weights/WeightsStore';
import { CommandSpec, integerOption, ParsedValues, stringOption, UsageError } from './options';
import { progressBar } from './progress';

const ACTIONS = ['list', 'fetch', 'verify', 'path'];

function store(values: ParsedValues): WeightsStore {
  return new WeightsStore({
    cacheDir: stringOption(values, 'cache-dir'), mirror: stringOption(values, 'mirror'),
    offline: values.offline === true ? true : undefined, timeout: integerOption(values, 'timeout'), onProgress: progressBar(),
  });
}

function entriesNamed(names: string[]): WeightsEntry[] {
  return names.map((name) => findWeights(name, undefined));
}

function metricsText(entry: WeightsEntry): string {
  const parts = Object.entries(entry.metrics).map(([set, values]) =>
    `${set} ${Object.entries(values).map(([k, v]) => `${k.replace('_', '-')} ${v}`).join(' ')}`);
  return parts.length ? parts.join('; ') : '-';
}

function sizeText(entry: WeightsEntry): string {
  if (entry.bytes) return `${(entry.bytes / 2 ** 20).toFixed(1)} MB`;
  return entry.bundled ? 'bundled' : entry.archive ? 'in a zip' : '?';
}

export const weightsCommand: CommandSpec = {
  name: 'weights',
  synopsis: 'list | fetch NAME... | verify [NAME...] | path NAME',
  summary: 'The published weights by name: list them (with what they were trained on, metrics, licence, whether cached), ' +
    'download and verify them into the cache, re-check cached files, or print where one is.',
  options: {
    json: { type: 'boolean', help: 'list: print JSON' },
    'cache-dir': { type: 'string', value: 'DIR', help: 'the cache (default $OPTICAL_FLOW_HOME or ~/.cache/optical-flow)' },
    mirror: { type: 'string', value: 'URL', help: 'download from this base URL instead (default $OPTICAL_FLOW_MIRROR)' },
    offline: { type: 'boolean', help: 'never download (also $OPTICAL_FLOW_OFFLINE=1)' },
    timeout: { type: 'string', value: 'MS', help: 'milliseconds a download may stall (default 30000)' },
  },
  async run(values, positionals) {
    const [action, ...names] = positionals;
    if (action === undefined || !ACTIONS.includes(action)) {
      throw new UsageError(`weights needs one of ${ACTIONS.join(', ')}${action ? `, got '${action}'` : ''}`);
    }
    const cache = store(values);
    if (action === 'list') {
      const entries = weightsCatalogue();
      if (values.json === true) {
        console.log(JSON.stringify(entries.map((entry) => ({
          name: entry.name, model: entry.model, architecture: entry.architecture, source: weightsSource(entry.source)?.title ?? entry.source,
          size: sizeText(entry), trainedOn: entry.trainedOn, metrics: entry.metrics, licence: weightsSource(entry.source)?.licence,
          recommended: entry.recommended, aliases: entry.aliases, cached: cache.locate(entry)?.path ?? null, url: cache.urlOf(entry) ?? null,
        })), null, 2));
        return;
      }
      for (const entry of entries) {
        const source = weightsSource(entry.source);
        const cached = cache.locate(entry)?.path;
        console.log(`${entry.name}${entry.recommended ? `  (default for ${entry.architecture})` : ''}${entry.aliases.length ? `  aliases: ${entry.aliases.join(', ')}` : ''}`);
        console.log(`    model ${entry.model}${entry.architecture !== entry.model ? ` (${entry.architecture})` : ''}, ${sizeText(entry)}, from ${source?.title ?? entry.source}`);
        console.log(`    trained on: ${entry.trainedOn}`);
        console.log(`    published metrics: ${metricsText(entry)}`);
        console.log(`    licence: ${source?.licence ?? '-'}`);
        console.log(`    ${cached ? `cached: ${cached}` : `not cached (${cache.urlOf(entry) ?? 'bundled'})`}`);
      }
      console.log(`\ncache: ${cache.weightsDir}${cache.mirror ? `, mirror ${cache.mirror}` : ''}${cache.offline ? ', offline' : ''}`);
      return;
    }
    if (action === 'path') {
      if (names.length !== 1) throw new UsageError('weights path takes one name');
      const [entry] = entriesNamed(names);
      console.log(cache.locate(entry)?.path ?? cache.cachePath(entry));
      return;
    }
    if (action === 'fetch') {
      if (names.length === 0) throw new UsageError('weights fetch needs at least one name (see weights list)');
      for (const entry of entriesNamed(names)) {
        const located = await cache.fetch(entry);
        console.log(`${entry.name}: ${located.path} (${located.verification})`);
      }
      return;
    }
    const chosen = names.length ? entriesNamed(names) : weightsCatalogue();
    let bad = 0;
    for (const entry of chosen) {
      const result = await cache.verify(entry);
      if (!names.length && !result.path) continue;
      if (!result.ok) bad++;
      console.log(`${result.ok ? 'ok  ' : 'BAD '} ${entry.name}: ${result.message}${result.path ? ` (${result.path})` : ''}`);
    }
    if (bad) throw new Error(`${bad} cached file(s) do not match: delete them and fetch again`);
  },
};
