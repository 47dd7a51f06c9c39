// optical-flow-server worker: runs video jobs from the BullMQ queue until SIGTERM.
import { startVideoJobWorker } from '..';
import { DEFAULT_QUEUE_NAME } from '../queue/videoJob';
import { setting } from './setting';
import { CommandSpec, integerOption, stringOption, UsageError } from 'torch-optical-flow/internal';

export const workerCommand: CommandSpec = {
  name: 'worker',
  synopsis: '',
  summary: 'Runs video jobs from the queue the server submits to; start one per machine (or more), all on the same Redis and shared directory.',
  options: {
    redis: { type: 'string', value: 'URL', help: 'Redis URL of the queue [OPTICAL_FLOW_REDIS]' },
    'shared-dir': { type: 'string', value: 'DIR', help: 'directory shared with the server and the other workers [OPTICAL_FLOW_SHARED_DIR]' },
    queue: { type: 'string', value: 'NAME', help: `BullMQ queue name (default ${DEFAULT_QUEUE_NAME}) [OPTICAL_FLOW_QUEUE]` },
    model: { type: 'string', value: 'M,...', help: 'models this worker may load (default: any a job names) [OPTICAL_FLOW_MODELS]' },
    concurrency: { type: 'string', value: 'N', help: 'jobs at once on this worker (default 1)' },
    'lock-duration': { type: 'string', value: 'MS', help: 'how long a silent worker keeps its job before others take it (default 30000)' },
    'stalled-interval': { type: 'string', value: 'MS', help: 'how often to look for jobs of dead workers (default 30000)' },
    'shutdown-timeout': { type: 'string', value: 'MS', help: 'how long SIGTERM waits for running jobs (default 30000)' },
  },
  async run(values, positionals) {
    if (positionals.length > 0) throw new UsageError(`worker takes no arguments, got '${positionals[0]}'`);
    const redis = setting(values, 'redis', 'OPTICAL_FLOW_REDIS');
    const sharedDir = setting(values, 'shared-dir', 'OPTICAL_FLOW_SHARED_DIR');
    if (!redis) throw new UsageError('worker needs --redis URL (or OPTICAL_FLOW_REDIS)');
    if (!sharedDir) throw new UsageError('worker needs --shared-dir DIR (or OPTICAL_FLOW_SHARED_DIR)');
    const models = setting(values, 'model', 'OPTICAL_FLOW_MODELS');
    const { pino } = require('pino') as typeof import('pino');  // loaded with the worker, not with every command
    const logger = pino({ level: process.env.LOG_LEVEL || 'info' });
    const worker = await startVideoJobWorker({
      redis, sharedDir, logger,
      queueName: setting(values, 'queue', 'OPTICAL_FLOW_QUEUE'),
      models: models ? models.split(',').map((m) => m.split('=')[0].trim()).filter(Boolean) : undefined,
      device: (stringOption(values, 'device') ?? 'auto') as 'auto',
      threads: integerOption(values, 'threads'),
      concurrency: integerOption(values, 'concurrency'),
      lockDuration: integerOption(values, 'lock-duration'),
      stalledInterval: integerOption(values, 'stalled-interval'),
    });
    const timeout = integerOption(values, 'shutdown-timeout') ?? 30_000;
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        worker.close(timeout).then(resolve, (error) => { logger.error({ err: (error as Error).message }, 'shutdown failed'); resolve(); });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
  },
};
