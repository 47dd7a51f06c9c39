import { strict as assert } from 'assert';
import * as path from 'path';
import { FlowEstimator, FlowField, flowMetrics, readFlo } from '../lib';
import { opencv } from '../lib/opencv';
import { makeDemoClip } from '../lib/cli/demoClip';
import { hasSharedData, readPpm, SHARED_DATA, THREADS } from './helpers';

// The default model must really estimate motion: a broken or random-weight export still loads and runs, and only
// its errors give it away. Each check compares with zero flow on the same pairs and prints both.
describe('the bundled RAFT-S (trained by this project)', function () {
  this.timeout(180_000);
  let flow: FlowEstimator;
  before(async () => { flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: THREADS }); });
  after(() => flow?.dispose());

  const zeroLike = (truth: FlowField) => new FlowField(truth.width, truth.height, new Float32Array(truth.data.length));

  it('records in its metadata what it was trained on', () => {
    assert.equal(flow.info.arch, 'raft-small');
    assert.match(flow.info.trainedOn, /^synthetic .*step [0-9]+/);
  });

  it('recovers the demo clip\'s known motion, clearly closer than zero flow', async () => {
    const clip = makeDemoClip();
    let model = 0, zero = 0;
    const pairs = [0, 12, 24, 36];
    for (const k of pairs) {
      const frame = (i: number) => ({ data: clip.frames[i], width: clip.width, height: clip.height, format: 'rgb' as const });
      const estimate = await flow.estimate(frame(k), frame(k + 1));
      model += flowMetrics(estimate, clip.truth[k]).epe / pairs.length;
      zero += flowMetrics(zeroLike(clip.truth[k]), clip.truth[k]).epe / pairs.length;
    }
    console.log(`      demo clip, ${pairs.length} pairs: EPE ${model.toFixed(3)} px, zero flow ${zero.toFixed(3)} px`);
    assert.ok(model < 0.7 * zero, `EPE ${model} against zero flow's ${zero}`);
  });

  it('beats zero flow clearly on the FlyingChairs samples and the Sintel pair', async function () {
    if (!hasSharedData()) {
      console.log(`      skipped: ${SHARED_DATA} is absent`);
      this.skip();
    }
    const cv = opencv();
    const sets = [
      { name: 'FlyingChairs', bound: 0.5, pairs: [0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => {
        const stem = path.join(SHARED_DATA, 'flyingchairs', String(n).padStart(7, '0'));
        return { a: () => readPpm(`${stem}-img0.ppm`), b: () => readPpm(`${stem}-img1.ppm`), truth: `${stem}-gt.flo` };
      }) },
      { name: 'Sintel', bound: 0.75, pairs: [{
        a: () => cv.imread(path.join(SHARED_DATA, 'sintel', 'frame_0001.png')),
        b: () => cv.imread(path.join(SHARED_DATA, 'sintel', 'frame_0002.png')),
        truth: path.join(SHARED_DATA, 'sintel', 'flow_0001.flo'),
      }] },
    ];
    for (const set of sets) {
      let model = 0, zero = 0;
      for (const pair of set.pairs) {
        const truth = readFlo(pair.truth);
        model += flowMetrics(await flow.estimate(pair.a(), pair.b()), truth).epe / set.pairs.length;
        zero += flowMetrics(zeroLike(truth), truth).epe / set.pairs.length;
      }
      console.log(`      ${set.name}, ${set.pairs.length} pairs: EPE ${model.toFixed(3)} px, zero flow ${zero.toFixed(3)} px`);
      assert.ok(model < set.bound * zero, `${set.name}: EPE ${model} against zero flow's ${zero}`);
    }
  });
});
