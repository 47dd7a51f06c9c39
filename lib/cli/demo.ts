import * as fs from 'fs';
import * as path from 'path';
import { colorWheelLegend, DEFAULT_MODEL, FlowEstimator, FlowField, flowMetrics, flowToColor, sideBySide, VideoFlowSession, weightsCatalogue } from '..';
import { PACKAGE_ROOT } from '../binding';
import { matFromRgb, opencv, rgbFromMat, VideoWriterLike } from '../opencv';
import { makeDemoClip } from './demoClip';
import { writePng } from './images';
import { CommandSpec, integerOption, loadOptions, stringOption, UsageError, MODEL_LOAD_OPTIONS } from './options';


function progress(done: number, total: number, started: number) {
  const fps = done / ((Date.now() - started) / 1000);
  if (process.stderr.isTTY) {
    const width = 30, filled = total ? Math.round((width * done) / total) : 0;
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total || '?'} pairs, ${fps.toFixed(2)} fps`);
  } else if (done === 1 || done % 10 === 0 || done === total) {
    process.stderr.write(`${done}/${total || '?'} pairs, ${fps.toFixed(2)} fps\n`);
  }
}

export const demoCommand: CommandSpec = {
  name: 'demo',
  synopsis: '',
  summary: 'A video turned into a side-by-side flow video and pictures. Without --video or --camera it makes a ' +
    'clip with known motion and reports the error against it.',
  options: {
    ...MODEL_LOAD_OPTIONS,
    weights: { ...MODEL_LOAD_OPTIONS.weights, help: "published weights, a checkpoint, or random (default: the model's " +
      "bundled weights where it has them, so that the demo runs offline; else its recommended ones)" },
    video: { type: 'string', value: 'FILE', help: 'a video file to read' },
    camera: { type: 'string', value: 'N', help: 'a camera to read' },
    model: { type: 'string', value: 'M', help: `model name or export (default ${DEFAULT_MODEL})` },
    iterations: { type: 'string', value: 'N', help: 'refinement iterations (default: the model\'s)' },
    out: { type: 'string', value: 'DIR', help: 'output folder (default demo-output)' },
    'max-frames': { type: 'string', value: 'N', help: 'stop after N frames' },
    normalize: { type: 'string', value: 'video|frame', help: 'one colour scale for the video (default) or per frame' },
    window: { type: 'boolean', help: 'show the result in a window where a display exists' },
  },
  async run(values, positionals) {
    if (positionals.length > 0) throw new UsageError(`demo takes no arguments, got '${positionals[0]}' (use --video FILE)`);
    const normalize = stringOption(values, 'normalize') ?? 'video';
    if (normalize !== 'video' && normalize !== 'frame') throw new UsageError(`--normalize must be video or frame, got '${normalize}'`);
    const cv = opencv();
    const outDir = path.resolve(stringOption(values, 'out') ?? path.join(PACKAGE_ROOT, 'demo-output'));
    fs.mkdirSync(outDir, { recursive: true });
    let source: string | number;
    let truth: FlowField[] | undefined;
    const video = stringOption(values, 'video');
    const camera = integerOption(values, 'camera');
    if (video) source = video;
    else if (camera !== undefined) source = camera;
    else {
      const clip = makeDemoClip();
      source = path.join(outDir, 'input-clip.avi');
      const writer = new cv.VideoWriter(source, cv.VideoWriter.fourcc('MJPG'), 24, new cv.Size(clip.width, clip.height), true);
      for (const frame of clip.frames) writer.write(matFromRgb({ data: frame, width: clip.width, height: clip.height }));
      writer.release();
      truth = clip.truth;
      console.log(`made a ${clip.frames.length}-frame clip with known motion: ${source}`);
    }
    const modelName = stringOption(values, 'model') ?? DEFAULT_MODEL;
    const maxFrames = integerOption(values, 'max-frames');
    // The demo runs offline by default: the weights that ship with the package, where the model has them.
    const bundled = weightsCatalogue().find((e) => e.bundled && e.model === modelName);
    const flow = await FlowEstimator.load({ ...loadOptions(values, modelName), weights: stringOption(values, 'weights') ?? bundled?.name });
    const session = VideoFlowSession.open(flow, source, { iterations: integerOption(values, 'iterations'), maxFrames });
    const window = values.window === true && !!process.env.DISPLAY;
    const legend = colorWheelLegend(48);
    const videoOut = path.join(outDir, 'flow.avi');
    let writer: VideoWriterLike | undefined;
    const pictures: string[] = [];
    const total = Math.max(0, Math.min(session.frameCount || 0, maxFrames ?? Infinity) - 1);
    const wanted = new Set([1, Math.max(1, Math.floor(total / 2)), total]);
    let maxMagnitude: number | undefined;
    let pairs = 0;
    const errors: number[] = [];
    const started = Date.now();
    for await (const { index, frame, flow: field } of session) {
      if (maxMagnitude === undefined) maxMagnitude = Math.max(1, field.maxMagnitude() * 1.25);
      const colour = flowToColor(field, normalize === 'frame' ? {} : { maxMagnitude });
      const picture = sideBySide([rgbFromMat(frame), colour], { legend });
      if (!writer) {
        writer = new cv.VideoWriter(videoOut, cv.VideoWriter.fourcc('MJPG'), session.fps || 24, new cv.Size(picture.width, picture.height), true);
      }
      writer.write(matFromRgb(picture));
      if (wanted.has(index) || (total === 0 && index === 1)) {
        const file = path.join(outDir, `flow-${String(index).padStart(4, '0')}.png`);
        writePng(file, picture);
        pictures.push(file);
      }
      if (window) {
        const gui = cv as unknown as { imshow(n: string, m: unknown): void; waitKey(ms: number): number };
        gui.imshow('optical flow', matFromRgb(picture));
        gui.waitKey(1);  // lets HighGUI repaint
      }
      if (truth && truth[index - 1]) errors.push(flowMetrics(field, truth[index - 1]).epe);
      pairs++;
      progress(pairs, total, started);
    }
    if (process.stderr.isTTY) process.stderr.write('\n');
    writer?.release();
    await flow.dispose();
    const seconds = (Date.now() - started) / 1000;
    console.log(`model ${modelName} (${flow.info.trainedOn}), ${pairs} pairs in ${seconds.toFixed(1)} s: ${(pairs / seconds).toFixed(2)} fps`);
    if (errors.length) {
      console.log(`end-point error against the known motion: ${(errors.reduce((a, b) => a + b, 0) / errors.length).toFixed(3)} px (mean over pairs)`);
    }
    console.log(`flow video: ${videoOut}`);
    for (const file of pictures) console.log(`picture: ${file}`);
  },
};
