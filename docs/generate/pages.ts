// The generated parts of docs/: docs/api.md whole, and in the other pages the blocks between
// `<!-- generated: NAME -->` and `<!-- end generated -->`, each made from the one place its facts live.
import * as fs from 'fs';
import * as path from 'path';
import {
  ARGUMENT_ERROR_MEANINGS, DEFAULT_MODEL, FLOW_ERROR_MEANINGS, MAX_ITERATIONS, weightsCatalogue,
} from '../../lib';
import { COMMANDS } from '../../lib/cli/main';
import { usage } from '../../lib/cli/options';
import { weightsSource } from '../../lib/weights/catalogue';
import { LISTEN_OPTIONS, SERVER_SETTINGS, SERVICE_ERROR_MEANINGS, STATUS } from 'torch-optical-flow-server';
import { COMMANDS as SERVER_COMMANDS } from 'torch-optical-flow-server/dist/cli/main';
import { apiPage } from './api';

const MiB = 2 ** 20;

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function amount(value: number | string | undefined, unit: string): string {
  if (value === undefined) return 'none';
  if (typeof value === 'string') return value;
  if (unit === 'BYTES' && value % MiB === 0) return value >= 1024 * MiB && value % (1024 * MiB) === 0 ? `${value / 1024 / MiB} GiB` : `${value / MiB} MiB`;
  if (unit === 'MS') return `${value} ms`;
  return String(value);
}

const BLOCKS: Record<string, () => string> = {
  'cli-core': () => `\`\`\`\n${usage(COMMANDS, 'optical-flow')}\n\`\`\``,
  'cli-server': () => `\`\`\`\n${usage(SERVER_COMMANDS, 'optical-flow-server')}\n\`\`\``,
  'server-settings': () => table(['option', 'flag', 'environment', 'default', 'bounds', ''], [
    ...Object.entries(LISTEN_OPTIONS).map(([flag, s]) => ['', `\`--${flag} ${s.value}\``, `\`${s.env}\``, '', '', s.help]),
    ...SERVER_SETTINGS.map((s) => [
      `\`${s.option}\``, `\`--${s.flag} ${s.value}\``, `\`${s.env}\``, amount(s.default, s.value),
      s.min !== undefined ? `${amount(s.min, s.value)} to ${amount(s.max, s.value)}` : '', s.help,
    ]),
  ]),
  'http-statuses': () => {
    const meanings: Record<string, string> = { ...ARGUMENT_ERROR_MEANINGS, ...FLOW_ERROR_MEANINGS, ...SERVICE_ERROR_MEANINGS };
    const rows = Object.entries(STATUS).sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))
      .map(([code, status]) => [String(status), `\`${code}\``, meanings[code] ?? '']);
    return table(['status', 'code', 'when'], rows);
  },
  'error-codes': () => table(['code', 'raised as', 'when'], [
    ...Object.entries(ARGUMENT_ERROR_MEANINGS).map(([code, when]) => [`\`${code}\``, '`TypeError` / `RangeError`', when]),
    ...Object.entries(FLOW_ERROR_MEANINGS).map(([code, when]) => [`\`${code}\``, '`FlowError`', when]),
  ]),
  'weights-table': () => table(['name', 'model', 'default', 'trained on', 'published metrics', 'licence'], weightsCatalogue().map((e) => [
    `\`${e.name}\`${e.aliases.length ? ` (${e.aliases.map((a) => `\`${a}\``).join(', ')})` : ''}`,
    e.architecture === e.model ? e.model : `${e.model} (${e.architecture})`,
    e.recommended ? 'yes' : '',
    e.trainedOn.replace(/\|/g, '/'),
    Object.entries(e.metrics).map(([set, m]) => `${set}: ${Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; '),
    (weightsSource(e.source)?.licence ?? '').split(/[.;]/)[0],
  ])),
  limits: () => [
    `- The default model is \`${DEFAULT_MODEL}\`.`,
    `- \`iterations\` is at most ${MAX_ITERATIONS}, in the library, its streams, the service and the addon (which refuses exports declaring more).`,
  ].join('\n'),
};

/** Every generated page: file (relative to the root) -> its content as it should be. */
export function generatedPages(root: string): Map<string, string> {
  const pages = new Map<string, string>([['docs/api.md', apiPage(root)]]);
  for (const file of fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md') && f !== 'api.md')) {
    const relative = `docs/${file}`;
    const text = fs.readFileSync(path.join(root, relative), 'utf8');
    const filled = text.replace(/(<!-- generated: ([\w-]+) -->)\n(?:(?!<!-- generated:)[\s\S])*?(<!-- end generated -->)/g, (_all, open: string, name: string, close: string) => {
      const make = BLOCKS[name];
      if (!make) throw new Error(`${relative}: unknown generated block '${name}' (known: ${Object.keys(BLOCKS).join(', ')})`);
      return `${open}\n${make()}\n${close}`;
    });
    pages.set(relative, filled);
  }
  return pages;
}
