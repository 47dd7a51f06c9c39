// Liveness (the process answers), readiness (models loaded, queue reachable, not shutting down), and metrics.
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../FlowServer';

export function healthRoutes(app: FastifyInstance, context: ServerContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (request, reply) => {
    const models = context.pool.models.map((m) => ({
      model: m.model, weights: m.estimator.info.weights.name, device: m.estimator.device, pending: m.estimator.pending, loaded: !m.estimator.disposed,
    }));
    const queue = context.jobs ? { reachable: await context.jobs.ping(1000) } : undefined;
    const ready = !context.closing() && models.every((m) => m.loaded) && (queue?.reachable ?? true);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : context.closing() ? 'shutting down' : 'not ready', models, queue });
  });

  app.get('/metrics', async (request, reply) => {
    const body = await context.metrics.registry.metrics();
    return reply.type(context.metrics.registry.contentType).send(body);
  });
}
