// optical-flow-server serve: the HTTP service, configured from flags, else environment variables, else defaults.
import { createFlowServer } from '..';
import { FlowServerOptions, parseServedModel, SERVER_SETTINGS } from '../FlowServerOptions';
import { setting } from './setting';
import { CommandSpec, integerOption, OptionSpec, ParsedValues, stringOption, UsageError } from 'torch-optical-flow/internal';

/** Where `optical-flow-server serve` listens: flags and variables beside SERVER_SETTINGS. */
export const LISTEN_OPTIONS: Record<string, OptionSpec & { env: string }> = {
  host: { type: 'string', value: 'ADDRESS', env: 'OPTICAL_FLOW_HOST', help: 'address to listen on (default 127.0.0.1; 0.0.0.0 for all)' },
  port: { type: 'string', value: 'PORT', env: 'OPTICAL_FLOW_PORT', help: 'port to listen on (default 8080; 0 picks a free one)' },
};

function integer(flag: string, env: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n)) throw new UsageError(`--${flag} (or ${env}) must be an integer, got '${text}'`);
  return n;
}

/** Server options from flags and the environment, through the one table of settings. */
export function serverOptionsFrom(values: ParsedValues): FlowServerOptions {
  const options: Record<string, unknown> = {};
  for (const s of SERVER_SETTINGS) {
    const text = setting(values, s.flag, s.env);
    if (text === undefined) continue;
    options[s.option] = s.kind === 'integer' ? integer(s.flag, s.env, text)
      : s.kind === 'list' ? text.split(',').map((m) => m.trim()).filter(Boolean).map(parseServedModel) : text;
  }
  options.device = stringOption(values, 'device') ?? 'auto';
  options.threads = integerOption(values, 'threads');
  options.logger = { level: process.env.LOG_LEVEL || 'info' };
  return options as FlowServerOptions;
}

export const serveCommand: CommandSpec = {
  name: 'serve',
  synopsis: '',
  summary: 'The HTTP service: POST /v1/flow for pairs, /v1/jobs for videos (with --redis), /healthz, /readyz, /metrics. ' +
    'Each flag can also come from the environment variable named in the README.',
  options: {
    ...Object.fromEntries(Object.entries(LISTEN_OPTIONS).map(([name, spec]) => [name, { type: spec.type, value: spec.value, help: `${spec.help} [${spec.env}]` }])),
    ...Object.fromEntries(SERVER_SETTINGS.map((s) => [s.flag, {
      type: 'string' as const, value: s.value, help: `${s.help}${s.default !== undefined ? ` (default ${s.default})` : ''} [${s.env}]`,
    }])),
  },
  async run(values, positionals) {
    if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got '${positionals[0]}'`);
    const host = setting(values, 'host', LISTEN_OPTIONS.host.env) ?? '127.0.0.1';
    const portText = setting(values, 'port', LISTEN_OPTIONS.port.env) ?? '8080';
    const port = integer('port', LISTEN_OPTIONS.port.env, portText);
    if (port < 0 || port > 65535) throw new UsageError(`--port must be between 0 and 65535, got ${port}`);
    const server = await createFlowServer(serverOptionsFrom(values));
    const address = await server.listen({ host, port });
    server.app.log.info({ address, models: server.pool.models.map((m) => `${m.model} (${m.estimator.info.weights.name})`) }, 'serving optical flow');
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        server.app.log.info({ signal }, 'shutting down');
        server.close().then(resolve, (error) => { server.app.log.error({ err: error }, 'shutdown failed'); resolve(); });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
  },
};
