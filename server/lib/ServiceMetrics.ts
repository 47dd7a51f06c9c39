import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ModelPool } from './ModelPool';

/**
 * Sampling period of the event-loop delay metrics (prom-client over perf_hooks' monitorEventLoopDelay): the
 * reported delays include it, so an idle loop reads about this much.
 */
export const EVENT_LOOP_PRECISION_MS = 10;

/** The server's Prometheus metrics, in a registry of its own (several servers can live in one process). */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly latency: Histogram<'route' | 'method'>;
  readonly inference: Histogram<'model'>;
  readonly rejected: Counter<'model' | 'reason'>;

  constructor(pool: ModelPool, jobCounts?: () => Promise<Record<string, number>>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'optical_flow_', eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });
    this.requests = new Counter({ name: 'optical_flow_http_requests_total', help: 'HTTP requests answered, by route, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.latency = new Histogram({
      name: 'optical_flow_http_request_duration_seconds', help: 'Time from request to response', labelNames: ['route', 'method'], registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    });
    this.inference = new Histogram({
      name: 'optical_flow_inference_seconds', help: 'Time from queueing a pair on its model to its flow (waiting behind other pairs included)', labelNames: ['model'], registers,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.rejected = new Counter({ name: 'optical_flow_rejected_total', help: 'Flow requests refused for load or time (queue full, deadline)', labelNames: ['model', 'reason'], registers });
    new Gauge({
      name: 'optical_flow_model_queue_depth', help: 'Pairs queued or running on each model', labelNames: ['model', 'weights'], registers,
      collect() {
        for (const m of pool.models) this.set({ model: m.model, weights: m.estimator.info.weights.name }, m.estimator.pending);
      },
    });
    new Gauge({
      name: 'optical_flow_model_info', help: 'Models served (value 1), with their weights, architecture and device',
      labelNames: ['model', 'weights', 'architecture', 'device', 'trained_on'], registers,
      collect() {
        for (const m of pool.models) {
          const info = m.estimator.info;
          this.set({ model: m.model, weights: info.weights.name, architecture: info.arch, device: m.estimator.device, trained_on: info.weights.trainedOn }, 1);
        }
      },
    });
    if (jobCounts) {
      new Gauge({
        name: 'optical_flow_jobs', help: 'Video jobs in the queue, by state (absent when the queue cannot be reached)', labelNames: ['state'], registers,
        async collect() {
          this.reset();
          try {
            for (const [state, count] of Object.entries(await jobCounts())) this.set({ state }, count);
          } catch { /* Redis unreachable: /readyz says so */ }
        },
      });
    }
  }
}
