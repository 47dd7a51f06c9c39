#!/usr/bin/env node
// optical-flow: estimate a pair, run the demo, evaluate folders against ground truth, manage weights. (The service
// and the video job worker are torch-optical-flow-server's `optical-flow-server`.)
import { demoCommand } from './demo';
import { estimateCommand } from './estimate';
import { evaluateCommand } from './evaluate';
import { CommandSpec, runCommands } from './options';
import { weightsCommand } from './weights';

export const COMMANDS: readonly CommandSpec[] = [estimateCommand, demoCommand, evaluateCommand, weightsCommand];

/** Runs the CLI on `argv` (without node and the script); resolves to the exit code. */
export function main(argv: string[]): Promise<number> {
  return runCommands('optical-flow', COMMANDS, argv);
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
