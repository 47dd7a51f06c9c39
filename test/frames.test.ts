import { strict as assert } from 'assert';
import { FlowError, FlowEstimator, ImageLike, MatLike } from '../lib';
import { opencv } from '../lib/opencv';
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

  it('a region of interest of a larger OpenCV Mat is read as its own pixels', async () => {
    const cv = opencv() as unknown as {
      Mat: new (data: Buffer, rows: number, cols: number, type: number) => MatLike & { getRegion(rect: unknown): MatLike };
      Rect: new (x: number, y: number, w: number, h: number) => unknown; CV_8UC3: number;
    };
    // Each frame sits at (10, 6) inside a larger BGR Mat of noise; the region is not continuous in memory.
    const embed = (image: ImageLike) => {
      const bgr = matOf(image).getData();
      const big = Buffer.alloc(100 * 90 * 3, 77);
      for (let y = 0; y < image.height; y++) bgr.copy(big, 3 * ((y + 6) * 100 + 10), 3 * y * image.width, 3 * (y + 1) * image.width);
      return new cv.Mat(big, 90, 100, cv.CV_8UC3).getRegion(new cv.Rect(10, 6, image.width, image.height));
    };
    const field = await flow.estimate(embed(a), embed(b), { iterations: 4 });
    assert.equal(maxAbsDiff(field.data, reference), 0);
  });

  it('a Mat whose pixels cannot be read is a TypeError naming the frame and the cause', async () => {
    const broken: MatLike = { rows: 64, cols: 80, channels: 3, type: 16, getData: () => { throw 'Mat::GetData - no data'; } };
    await assert.rejects(flow.estimate(broken, b), (e: TypeError & { code?: string }) => e instanceof TypeError &&
      e.code === 'ERR_INVALID_ARG_VALUE' && /frameA/.test(e.message) && /Mat::GetData - no data/.test(e.message));
    // A region of interest refuses getData(); its continuous copy is read instead.
    const region = { rows: 64, cols: 80, channels: 3, type: 16, getData: (): Buffer => { throw 'non-continuous Mat'; }, copy: () => matOf(b) };
    assert.equal(maxAbsDiff((await flow.estimate(a, region, { iterations: 4 })).data, reference), 0);
    const short: MatLike = { rows: 64, cols: 80, channels: 3, type: 16, getData: () => Buffer.alloc(100) };
    await assert.rejects(flow.estimate(a, short), (e: FlowError) => e.code === 'ERR_INPUT_SIZE' &&
      /frameB holds 100 bytes of pixels, but 80x64 with 3 channel\(s\) of CV_8U needs 15360/.test(e.message));
  });

  it('frames in a SharedArrayBuffer are copied and give the same flow', async () => {
    const shared = (image: ImageLike): ImageLike => {
      const data = new Uint8Array(new SharedArrayBuffer(image.data.length));
      data.set(image.data);
      return { ...image, data };
    };
    const field = await flow.estimate(shared(a), shared(b), { iterations: 4 });
    assert.equal(maxAbsDiff(field.data, reference), 0);
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
