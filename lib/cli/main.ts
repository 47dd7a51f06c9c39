#!/usr/bin/env node
// optical-flow: estimate a pair, run the demo, evaluate folders against ground truth, manage weights, serve, run
// video jobs.
import { demoCommand } from './demo';
import { estimateCommand } from './estimate';
import { evaluateCommand } from './evaluate';
import { CommandSpec, parseCommand, usage, UsageError } from './options';
import { serveCommand } from './serve';
import { weightsCommand } from './weights';
import { workerCommand } from './worker';

export const COMMANDS: readonly CommandSpec[] = [estimateCommand, demoCommand, evaluateCommand, weightsCommand, serveCommand, workerCommand];

/** Runs the CLI on `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    console.log(usage(COMMANDS));
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) throw new UsageError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
    const { values, positionals } = parseCommand(command, rest);
    await command.run(values, positionals);
    return 0;
  } catch (error) {
    console.error(`optical-flow: ${describe(error)}`);
    if (error instanceof UsageError) console.error("run 'optical-flow help' for the commands and their options");
    return error instanceof UsageError ? 2 : 1;
  }
}

/** One line for any error: a FlowError's code and message, a plain Error's message, or whatever was thrown. */
function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code;
    return `${typeof code === 'string' ? `${code}: ` : ''}${error.message}`;
  }
  return String(error);  // OpenCV throws strings
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
