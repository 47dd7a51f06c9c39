// torch-optical-flow-server: the HTTP service (Fastify) and the video job queue (BullMQ over Redis) on top of the
// torch-optical-flow library. The queue worker loads BullMQ only when started.
export { SERVER_SETTINGS } from './FlowServerOptions';
export type { FlowServerOptions, ServedModel } from './FlowServerOptions';
export { SERVICE_ERROR_CODES, SERVICE_ERROR_MEANINGS, ServiceError } from './ServiceError';
export { STATUS } from './httpStatus';
export type { PublicErrorCode } from './httpStatus';
export type { ServiceErrorCode } from './ServiceError';
export type { ErrorBody, FlowServer } from './FlowServer';
export { LISTEN_OPTIONS, serverOptionsFrom } from './cli/serve';
export { EVENT_LOOP_PRECISION_MS } from './ServiceMetrics';
export type { VideoJobWorker, VideoJobWorkerOptions } from './queue/VideoJobWorker';
export type { VideoJobResult, VideoJobSummary, VideoJobProgress } from './queue/videoJob';

/** Creates the HTTP service (models loaded, routes registered); call `listen()` on the result to serve. */
export function createFlowServer(options?: import('./FlowServerOptions').FlowServerOptions): Promise<import('./FlowServer').FlowServer> {
  return (require('./FlowServer') as typeof import('./FlowServer')).FlowServer.create(options);
}

/** Starts a worker that runs video jobs from the queue; `close()` stops it. */
export function startVideoJobWorker(options: import('./queue/VideoJobWorker').VideoJobWorkerOptions): Promise<import('./queue/VideoJobWorker').VideoJobWorker> {
  return (require('./queue/VideoJobWorker') as typeof import('./queue/VideoJobWorker')).VideoJobWorker.start(options);
}
