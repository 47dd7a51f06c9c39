#!/usr/bin/env node
// optical-flow-server: the HTTP service and the video job worker.
import { runCommands, type CommandSpec } from 'torch-optical-flow/internal';
import { serveCommand } from './serve';
import { workerCommand } from './worker';

export const COMMANDS: readonly CommandSpec[] = [serveCommand, workerCommand];

export function main(argv: string[]): Promise<number> {
  return runCommands('optical-flow-server', COMMANDS, argv);
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
