import { strict as assert } from 'assert';
import { FlowEstimator, ImageLike, MatLike } from '../lib';
import { exportModel, maxAbsDiff, syntheticPair, THREADS } from './helpers';

/** The same pixels in another channel layout. */
function convert(image: ImageLike, format: 'bgr' | 'rgba' | 'bgra'): ImageLike {
  const n = image.width * image.height;
  const channels = format === 'bgr' ? 3 : 4;
  const data = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    const [r, g, b] = [image.data[3 * i], image.data[3 * i + 1], image.data[3 * i + 2]];
    const px = format === 'rgba' ? [r, g, b] : [b, g, r];
    data.set(px, channels * i);
    if (channels === 4) data[channels * i + 3] = 200;
  }
  return { data, width: image.width, height: image.height, channels, format };
}

/** What an opencv4nodejs Mat of CV_8UC3 (BGR) exposes. */
function matOf(image: ImageLike): MatLike {
  const bgr = convert(image, 'bgr');
  return { rows: image.height, cols: image.width, channels: 3, type: 16, getData: () => Buffer.from(bgr.data as Uint8Array) };
}

describe('frame formats: every layout of the same pixels gives the same flow', function () {
  this.timeout(60_000);
  let flow: FlowEstimator;
  let a: ImageLike;
  let b: ImageLike;
  let reference: Float32Array;

  before(async () => {
    flow = await FlowEstimator.load({ model: exportModel('raft-small', { seed: 3 }), device: 'cpu', threads: THREADS });
    [a, b] = syntheticPair(80, 64);
    reference = (await flow.estimate(a, b, { iterations: 4 })).data;
  });
  after(() => flow?.dispose());

  for (const format of ['bgr', 'rgba', 'bgra'] as const) {
    it(`${format} uint8`, async () => {
      const field = await flow.estimate(convert(a, format), convert(b, format), { iterations: 4 });
      assert.equal(maxAbsDiff(field.data, reference), 0);
    });
  }

  it('float32 on the 0..255 scale', async () => {
    const toFloat = (img: ImageLike): ImageLike => ({ ...img, data: Float32Array.from(img.data) });
    const field = await flow.estimate(toFloat(a), toFloat(b), { iterations: 4 });
    assert.equal(maxAbsDiff(field.data, reference), 0);
  });

  it('an OpenCV Mat (BGR), and a Mat beside a plain image', async () => {
    assert.equal(maxAbsDiff((await flow.estimate(matOf(a), matOf(b), { iterations: 4 })).data, reference), 0);
    assert.equal(maxAbsDiff((await flow.estimate(matOf(a), b, { iterations: 4 })).data, reference), 0);
  });

  it('gray frames give the flow of their RGB replication', async () => {
    const gray = (img: ImageLike): ImageLike => {
      const data = new Uint8Array(img.width * img.height);
      for (let i = 0; i < data.length; i++) data[i] = img.data[3 * i + 1];
      return { data, width: img.width, height: img.height };
    };
    const rgb = (img: ImageLike): ImageLike => {
      const data = new Uint8Array(img.width * img.height * 3);
      for (let i = 0; i < img.data.length; i++) data.fill(img.data[i], 3 * i, 3 * i + 3);
      return { data, width: img.width, height: img.height };
    };
    const fromGray = await flow.estimate(gray(a), gray(b), { iterations: 4 });
    const fromRgb = await flow.estimate(rgb(gray(a)), rgb(gray(b)), { iterations: 4 });
    assert.equal(maxAbsDiff(fromGray.data, fromRgb.data), 0);
  });

  it('a flow field reads back per pixel', async () => {
    const field = await flow.estimate(a, b, { iterations: 4 });
    const [u, v] = field.at(5, 7);
    assert.equal(u, field.data[2 * (7 * 80 + 5)]);
    assert.equal(v, field.data[2 * (7 * 80 + 5) + 1]);
    assert.throws(() => field.at(80, 0), RangeError);
    assert.ok(field.maxMagnitude() > 0);
  });
});
