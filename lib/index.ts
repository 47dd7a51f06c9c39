export { FlowEstimator, MIN_FRAME_SIDE } from './FlowEstimator';
export type { DeviceName, EstimateOptions, LoadOptions, ModelInfo } from './FlowEstimator';
export type { Precision } from './binding';
export { FlowField } from './FlowField';
export { FlowError } from './FlowError';
export type { FlowErrorCode } from './FlowError';
export type { FrameInput, ImageLike, MatLike, PixelFormat } from './Frame';
export { architectures, bundledModels, DEFAULT_MODEL } from './models';
export type { ArchitectureProperties } from './models';
export { capabilities } from './capabilities';
export { registerWeights, weightsCatalogue } from './weights/catalogue';
export type { KeyFormat, WeightsEntry, WeightsMetrics } from './weights/catalogue';
export type { DownloadProgress } from './weights/download';
export type { WeightsInfo } from './weights/resolveWeights';
export { WeightsStore } from './weights/WeightsStore';
export type { LocatedWeights, VerifyResult, WeightsStoreOptions } from './weights/WeightsStore';
export { FlowStream } from './FlowStream';
export type { FlowStreamOptions } from './FlowStream';
export type { CorrelationMode } from './memory';
export { decodeFlo, encodeFlo, readFlo, writeFlo, readKittiFlow, writeKittiFlow, encodeKittiFlow } from './flowFiles';
export type { MaskedFlow } from './flowFiles';
export { flowMetrics, poolMetrics, SPEED_BANDS } from './metrics';
export type { FlowMetrics, SpeedBandError } from './metrics';
export { flowToColor, colorWheelLegend, sideBySide } from './flowToColor';
export type { ColorOptions, RgbImage } from './flowToColor';
export { VideoFlowSession } from './VideoFlowSession';
export type { VideoFlowFrame, VideoFlowOptions } from './VideoFlowSession';
// The service and the queue worker load Fastify, BullMQ and sharp only when used, so the core loads fast.
export { SERVER_SETTINGS } from './service/FlowServerOptions';
export type { FlowServerOptions, ServedModel } from './service/FlowServerOptions';
export { ServiceError } from './service/ServiceError';
export type { ServiceErrorCode } from './service/ServiceError';
export type { ErrorBody, FlowServer } from './service/FlowServer';
export type { VideoJobWorker, VideoJobWorkerOptions } from './queue/VideoJobWorker';
export type { VideoJobResult, VideoJobSummary, VideoJobProgress } from './queue/videoJob';

/** Creates the HTTP service (models loaded, routes registered); call `listen()` on the result to serve. */
export function createFlowServer(options?: import('./service/FlowServerOptions').FlowServerOptions): Promise<import('./service/FlowServer').FlowServer> {
  return (require('./service/FlowServer') as typeof import('./service/FlowServer')).FlowServer.create(options);
}

/** Starts a worker that runs video jobs from the queue; `close()` stops it. */
export function startVideoJobWorker(options: import('./queue/VideoJobWorker').VideoJobWorkerOptions): Promise<import('./queue/VideoJobWorker').VideoJobWorker> {
  return (require('./queue/VideoJobWorker') as typeof import('./queue/VideoJobWorker')).VideoJobWorker.start(options);
}
