import accepts from '@fastify/accepts';
import multipart from '@fastify/multipart';
import Fastify, { FastifyError, FastifyInstance } from 'fastify';
import { FlowError } from 'torch-optical-flow';
import { VideoJobQueue } from './queue/VideoJobQueue';
import { FlowServerOptions, ResolvedServerOptions, resolveServerOptions } from './FlowServerOptions';
import { publicCode, statusOf } from './httpStatus';
import { ModelPool } from './ModelPool';
import { healthRoutes } from './routes/healthRoutes';
import { flowRoute } from './routes/flowRoute';
import { jobRoutes } from './routes/jobRoutes';
import { ServiceError } from './ServiceError';
import { ServiceMetrics } from './ServiceMetrics';

/** What the routes share: the resolved options, the models, the queue, metrics, and the server's life. */
export interface ServerContext {
  options: ResolvedServerOptions;
  pool: ModelPool;
  jobs?: VideoJobQueue;
  metrics: ServiceMetrics;
  /** Aborted when shutdown gives up waiting for in-flight work. */
  shutdown: AbortSignal;
  closing(): boolean;
}

/** The body of every error answer: Fastify's own shape, with the library's or the service's code. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 406: 'Not Acceptable', 409: 'Conflict', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/**
 * The HTTP service: flow for pairs on the server's own models, video jobs handed to a BullMQ queue, health and
 * Prometheus metrics, and a shutdown that drains. Create it with `createFlowServer`, then `listen`.
 */
export class FlowServer {
  /** The Fastify instance (for `inject` in tests, or for adding routes). */
  readonly app: FastifyInstance;
  readonly options: ResolvedServerOptions;
  readonly pool: ModelPool;
  private readonly jobs?: VideoJobQueue;
  private readonly abort = new AbortController();
  private closingPromise?: Promise<void>;

  private constructor(app: FastifyInstance, options: ResolvedServerOptions, pool: ModelPool, jobs?: VideoJobQueue) {
    this.app = app;
    this.options = options;
    this.pool = pool;
    this.jobs = jobs;
  }

  /** Loads the models, opens the queue when `redis` is set, and registers the routes; does not listen yet. */
  static async create(options?: FlowServerOptions): Promise<FlowServer> {
    const resolved = resolveServerOptions(options);
    const pool = await ModelPool.load(resolved.models, { device: resolved.device, threads: resolved.threads, queueLimit: resolved.queueLimit });
    let jobs: VideoJobQueue | undefined;
    try {
      if (resolved.redis) jobs = await VideoJobQueue.open({ redis: resolved.redis, queueName: resolved.queueName, sharedDir: resolved.sharedDir! });
    } catch (error) {
      await pool.dispose();
      throw error;
    }
    const app = Fastify({
      logger: resolved.logger,
      bodyLimit: resolved.bodyLimit,
      // Uploads of videos may take long; headers may not (Node's headersTimeout stays at its 60 s).
      requestTimeout: 10 * 60_000,
      return503OnClosing: true,
      forceCloseConnections: 'idle',
    });
    const server = new FlowServer(app, resolved, pool, jobs);
    const metrics = new ServiceMetrics(pool, jobs ? () => jobs.counts() : undefined);
    const context: ServerContext = {
      options: resolved, pool, jobs, metrics, shutdown: server.abort.signal, closing: () => server.closingPromise !== undefined,
    };
    await app.register(accepts);
    await app.register(multipart, {
      limits: { fileSize: resolved.bodyLimit, files: 2, fields: 16, fieldSize: 4096, parts: 20 },
    });
    app.setErrorHandler((error, request, reply) => {
      const body = FlowServer.errorBody(error);
      if ((error as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        body.message = `content type '${request.headers['content-type'] ?? ''}' is not one this route reads`;
      }
      if (body.statusCode >= 500 && body.code !== 'ERR_QUEUE_FULL' && body.code !== 'ERR_SHUTTING_DOWN') request.log.error({ err: error }, 'request failed');
      if (error instanceof ServiceError) reply.headers(error.headers);
      // Answered before the body was read to its end (a limit, a bad first part): the connection cannot carry
      // another request, and the client must not try to reuse it.
      if (!request.raw.complete) reply.header('connection', 'close');
      void reply.code(body.statusCode).type('application/json; charset=utf-8').send(body);
    });
    app.setNotFoundHandler((request, reply) => {
      void reply.code(404).send({ statusCode: 404, code: 'ERR_NOT_FOUND', error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
    });
    // While draining, each answer closes its connection, so that keep-alive clients do not hold shutdown open.
    app.addHook('onSend', async (request, reply, payload) => {
      if (server.closingPromise) reply.header('connection', 'close');
      return payload;
    });
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
      metrics.latency.observe({ route, method: request.method }, reply.elapsedTime / 1000);
    });
    healthRoutes(app, context);
    flowRoute(app, context);
    jobRoutes(app, context);
    await app.ready();
    return server;
  }

  /** The answer for any error: its code, the status of that code (one table), and its message. */
  static errorBody(error: unknown): ErrorBody {
    const e = error as Partial<FastifyError> & { code?: string };
    const code = error instanceof FlowError || error instanceof ServiceError ? error.code : publicCode(e.code, e.statusCode);
    const statusCode = statusOf(code);
    const message = statusCode === 500 && !(error instanceof FlowError) && !(error instanceof ServiceError)
      ? 'internal error' : String(e.message ?? error);
    return { statusCode, code, error: REASONS[statusCode] ?? 'Error', message };
  }

  /** Starts listening; resolves to the address (for example http://127.0.0.1:8080). Port 0 picks a free port. */
  async listen(options: { port?: number; host?: string } = {}): Promise<string> {
    return this.app.listen({ port: options.port ?? 8080, host: options.host ?? '127.0.0.1' });
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `shutdownTimeout` ms and then aborts them (503),
   * and frees the models and the queue connection. Safe to call more than once.
   */
  close(): Promise<void> {
    this.closingPromise ??= (async () => {
      const timer = setTimeout(() => {
        this.abort.abort();
        // Anything still open a moment after the abort is cut: shutdown is bounded.
        setTimeout(() => this.app.server.closeAllConnections(), 2000).unref();
      }, this.options.shutdownTimeout);
      try {
        await this.app.close();
      } finally {
        clearTimeout(timer);
        await this.pool.dispose();
        await this.jobs?.close();
      }
    })();
    return this.closingPromise;
  }
}

/** Creates the service (models loaded, routes registered); call `listen()` on the result to serve. */
export function createFlowServer(options?: FlowServerOptions): Promise<FlowServer> {
  return FlowServer.create(options);
}
