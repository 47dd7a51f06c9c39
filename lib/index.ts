export { FlowEstimator, MIN_FRAME_SIDE } from './FlowEstimator';
export type { DeviceName, EstimateOptions, LoadOptions, ModelInfo } from './FlowEstimator';
export { FlowField } from './FlowField';
export { FlowError } from './FlowError';
export type { FlowErrorCode } from './FlowError';
export type { FrameInput, ImageLike, MatLike, PixelFormat } from './Frame';
export { BUNDLED_MODELS } from './models';
export type { BundledModel } from './models';
export { capabilities } from './capabilities';
