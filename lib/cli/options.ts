// The CLI's commands and options, declared once: util.parseArgs reads them and the usage text is made from them.
import { parseArgs } from 'util';
import { progressBar } from './progress';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** The value's placeholder in the usage text (string options). */
  value?: string;
  help: string;
}

export type ParsedValues = Record<string, string | boolean | undefined>;

export interface CommandSpec {
  name: string;
  /** Positional arguments, as the usage shows them. */
  synopsis: string;
  summary: string;
  options: Record<string, OptionSpec>;
  run(values: ParsedValues, positionals: string[]): Promise<void>;
}

/** Options every command takes. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  device: { type: 'string', value: 'auto|cpu|cuda|cuda:N', help: 'where the model runs (default auto)' },
  threads: { type: 'string', value: 'N', help: 'intra-op threads (default: the number of CPUs)' },
};

export function usage(commands: readonly CommandSpec[], program = 'optical-flow'): string {
  const lines = [`Usage: ${program} <command> [options]`, '', 'Commands:'];
  const describe = (name: string, spec: OptionSpec) => `--${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`;
  for (const command of commands) {
    lines.push(`  ${command.name}${command.synopsis ? ` ${command.synopsis}` : ''}`, `      ${command.summary}`);
    for (const [name, spec] of Object.entries(command.options)) lines.push(`      ${describe(name, spec).padEnd(30)} ${spec.help}`);
    lines.push('');
  }
  lines.push('Every command also takes:');
  for (const [name, spec] of Object.entries(COMMON_OPTIONS)) lines.push(`      ${describe(name, spec).padEnd(30)} ${spec.help}`);
  return lines.join('\n');
}

/** A mistake on the command line: printed with the usage hint, exit code 2. */
export class UsageError extends Error {}

/** Runs a command line program of these commands on `argv` (without node and the script); resolves to the exit code. */
export async function runCommands(program: string, commands: readonly CommandSpec[], argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    console.log(usage(commands, program));
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  try {
    if (!command) throw new UsageError(`unknown command '${name}' (commands: ${commands.map((c) => c.name).join(', ')})`);
    const { values, positionals } = parseCommand(command, rest);
    await command.run(values, positionals);
    return 0;
  } catch (error) {
    console.error(`${program}: ${describeError(error)}`);
    if (error instanceof UsageError) console.error(`run '${program} help' for the commands and their options`);
    return error instanceof UsageError ? 2 : 1;
  }
}

/** One line for any error: a FlowError's code and message, a plain Error's message, or whatever was thrown. */
function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code;
    return `${typeof code === 'string' ? `${code}: ` : ''}${error.message}`;
  }
  return String(error);  // OpenCV throws strings
}

export function parseCommand(command: CommandSpec, argv: string[]): { values: ParsedValues; positionals: string[] } {
  const options = { ...command.options, ...COMMON_OPTIONS };
  try {
    const parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: Object.fromEntries(Object.entries(options).map(([name, spec]) => [name, { type: spec.type }])),
    });
    return { values: parsed.values as ParsedValues, positionals: parsed.positionals };
  } catch (error) {
    throw new UsageError(`${command.name}: ${(error as Error).message}`);
  }
}

export function stringOption(values: ParsedValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function integerOption(values: ParsedValues, name: string): number | undefined {
  const value = stringOption(values, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got '${value}'`);
  return n;
}

export function numberOption(values: ParsedValues, name: string): number | undefined {
  const value = stringOption(values, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${value}'`);
  return n;
}

/** The options that pick a model's weights and arithmetic, for the commands that load one. */
export const MODEL_LOAD_OPTIONS: Record<string, OptionSpec> = {
  weights: { type: 'string', value: 'NAME|FILE|random', help: "published weights (see 'weights list'), a checkpoint, or random (default: the model's recommended)" },
  precision: { type: 'string', value: 'float32|bfloat16', help: 'bfloat16: RAFT\'s networks in bfloat16, correlation in float32 (faster with AVX512-BF16; default float32)' },
};

/** The options FlowEstimator.load takes from the command line; downloads show a progress bar. */
export function loadOptions(values: ParsedValues, model: string) {
  return {
    model, weights: stringOption(values, 'weights'), device: (stringOption(values, 'device') ?? 'auto') as 'auto',
    threads: integerOption(values, 'threads'), onProgress: progressBar(),
    precision: stringOption(values, 'precision') as 'float32' | undefined,
  };
}
