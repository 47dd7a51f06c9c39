// `torch-optical-flow/internal`: what the project's own packages (the service, torch-optical-flow-server) share with
// the core beyond its public API: option validation that names the option, the optional OpenCV binding, the command
// line's option framework and a few helpers. Not part of the public API: it may change in any release.
export * as is from './validate';
export { matFromRgb, opencv } from './opencv';
export type { VideoWriterLike } from './opencv';
export { formatBytes } from './memory';
export { kittiFlowSamples } from './flowFiles';
export { makeDemoClip } from './cli/demoClip';
export { COMMON_OPTIONS, integerOption, parseCommand, runCommands, stringOption, usage, UsageError } from './cli/options';
export type { CommandSpec, OptionSpec, ParsedValues } from './cli/options';
