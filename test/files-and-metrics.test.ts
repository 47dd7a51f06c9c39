import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import {
  colorWheelLegend, decodeFlo, encodeFlo, FlowError, FlowField, flowMetrics, flowToColor, poolMetrics, readFlo,
  readKittiFlow, sideBySide, writeFlo, writeKittiFlow,
} from '../lib';
import { hasSharedData, oracle, SHARED_DATA, tmpDir, TORCHVISION_PYTHON } from './helpers';

function randomFlow(width: number, height: number, scale = 10): FlowField {
  const data = new Float32Array(width * height * 2);
  let seed = 7;
  for (let i = 0; i < data.length; i++) { seed = (seed * 1103515245 + 12345) >>> 0; data[i] = ((seed >>> 8) / 2 ** 24 - 0.5) * 2 * scale; }
  return new FlowField(width, height, data);
}

describe('flow files', () => {
  it('.flo round-trips exactly', () => {
    const flow = randomFlow(13, 7);
    const file = path.join(tmpDir(), 'round.flo');
    writeFlo(file, flow);
    assert.equal(fs.statSync(file).size, 12 + 13 * 7 * 8);
    assert.deepEqual(readFlo(file).data, flow.data);
  });

  it('reads the shared .flo fixtures with their known sizes', function () {
    if (!hasSharedData()) { console.log(`      skipped: ${SHARED_DATA} is absent`); this.skip(); }
    const chairs = readFlo(path.join(SHARED_DATA, 'flyingchairs', '0000000-gt.flo'));
    assert.deepEqual([chairs.width, chairs.height], [512, 384]);
    const fixture = readFlo(path.join(SHARED_DATA, 'formats', '00001_flow.flo'));
    assert.deepEqual([fixture.width, fixture.height], [50, 50]);
    assert.ok(fixture.maxMagnitude() > 0);
    const bytes = fs.readFileSync(path.join(SHARED_DATA, 'sintel', 'flow_0001.flo'));
    assert.ok(encodeFlo(decodeFlo(bytes)).equals(bytes), 'decode then encode must give the same bytes');
  });

  it('rejects a file that is not .flo, and a truncated one', () => {
    assert.throws(() => decodeFlo(Buffer.from('HELLO, I AM NOT A FLOW FILE')), (e: FlowError) => e.code === 'ERR_INPUT_SIZE' && /not a \.flo file/.test(e.message));
    const truncated = encodeFlo(randomFlow(8, 8)).subarray(0, 100);
    assert.throws(() => decodeFlo(truncated), /truncated: 8x8 needs 524 bytes, found 100/);
  });

  it('KITTI 16-bit PNG round-trips to 1/64 px with its valid mask', () => {
    const flow = randomFlow(17, 9, 100);
    const valid = new Uint8Array(17 * 9).map((_, i) => (i % 5 === 0 ? 0 : 1));
    const file = path.join(tmpDir(), 'kitti.png');
    writeKittiFlow(file, flow, valid);
    const back = readKittiFlow(file);
    assert.deepEqual(back.valid, valid);
    for (let i = 0; i < valid.length; i++) {
      if (!valid[i]) continue;
      assert.ok(Math.abs(back.flow.data[2 * i] - flow.data[2 * i]) <= 1 / 128 + 1e-6);
      assert.ok(Math.abs(back.flow.data[2 * i + 1] - flow.data[2 * i + 1]) <= 1 / 128 + 1e-6);
    }
  });

  it('reads KITTI flow written by another encoder, and refuses PNGs that are not KITTI flow by name', function () {
    const kitti = path.join(SHARED_DATA, 'kitti2015', 'flow_occ', '000006_10.png');
    if (!fs.existsSync(kitti)) { console.log('      (skipped: ../shared/data/kitti2015 is absent)'); this.skip(); }
    const { flow, valid } = readKittiFlow(kitti);
    assert.deepEqual([flow.width, flow.height], [1242, 375]);
    const known = valid.reduce((sum, v) => sum + v, 0);
    assert.ok(known > 0.2 * valid.length && known < valid.length, `valid pixels: ${known}`);
    const largest = flow.maxMagnitude();
    assert.ok(largest > 10 && largest < 512, `largest motion ${largest}`);
    const occlusion = path.join(SHARED_DATA, 'formats', '0000000-occ_01.png');
    assert.throws(() => readKittiFlow(occlusion), (e: FlowError) => e.code === 'ERR_INPUT_SIZE' && /is not a KITTI flow PNG \(needs 16-bit RGB/.test(e.message));
    const text = path.join(tmpDir(), 'not-a.png');
    fs.writeFileSync(text, 'no PNG here');
    assert.throws(() => readKittiFlow(text), (e: FlowError) => e.code === 'ERR_INPUT_SIZE' && /not-a\.png' is not a readable PNG/.test(e.message));
  });
});

describe('metrics', () => {
  it('EPE, Fl-all and N-px accuracy on known values', () => {
    const truth = new FlowField(4, 1, Float32Array.from([0, 0, 10, 0, 100, 0, 1e10, 0]));
    const estimate = new FlowField(4, 1, Float32Array.from([0.5, 0, 14, 0, 104, 3, 0, 0]));
    const m = flowMetrics(estimate, truth);
    assert.equal(m.validPixels, 3, 'unknown truth is skipped');
    assert.ok(Math.abs(m.epe - (0.5 + 4 + 5) / 3) < 1e-9);
    // Pixel 2 is off by 4 px > 3 and > 5% of 10; pixel 3 by 5 px > 3 but < 5% of 100.
    assert.ok(Math.abs(m.flAll - 1 / 3) < 1e-9);
    assert.deepEqual([m.px1, m.px3, m.px5], [1 / 3, 1 / 3, 2 / 3]);
    const masked = flowMetrics(estimate, truth, Uint8Array.from([1, 0, 0, 0]));
    assert.equal(masked.epe, 0.5);
    assert.throws(() => flowMetrics(new FlowField(1, 1, new Float32Array(2)), truth), /estimate is 1x1 but truth is 4x1/);
  });

  it('EPE by true speed, and a set\'s measures pooled over its pairs', () => {
    const truth = new FlowField(4, 1, Float32Array.from([0, 0, 10, 0, 100, 0, 1e10, 0]));
    const estimate = new FlowField(4, 1, Float32Array.from([0.5, 0, 14, 0, 104, 3, 0, 0]));
    const m = flowMetrics(estimate, truth);
    assert.deepEqual(m.bySpeed.map((b) => [b.from, b.to, b.epe, b.pixels]), [[0, 10, 0.5, 1], [10, 40, 4, 1], [40, Infinity, 5, 1]]);
    // A second pair: two slow pixels, both 4 px off (outliers: over 3 px and over 5% of a speed of 1).
    const slow = flowMetrics(new FlowField(2, 1, Float32Array.from([5, 0, 5, 0])), new FlowField(2, 1, Float32Array.from([1, 0, 1, 0])));
    const pooled = poolMetrics([m, slow]);
    assert.ok(Math.abs(pooled.epe - ((0.5 + 4 + 5) / 3 + 4) / 2) < 1e-9, 'EPE: the mean of the pairs\' EPEs');
    assert.ok(Math.abs(pooled.flAll - 3 / 5) < 1e-9, 'Fl-all: over all the pixels');
    assert.equal(pooled.validPixels, 5);
    assert.deepEqual(pooled.bySpeed.map((b) => [b.epe, b.pixels]), [[(0.5 + 8) / 3, 3], [4, 1], [5, 1]]);
    const none = flowMetrics(estimate, truth, new Uint8Array(4));
    assert.ok(none.bySpeed.every((b) => Number.isNaN(b.epe) && b.pixels === 0));
    assert.throws(() => poolMetrics([]), (e: NodeJS.ErrnoException) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE' && /for pairs/.test(e.message));
  });
});

describe('visualisation', function () {
  this.timeout(30_000);
  it('colours every pixel within one level of torchvision\'s flow_to_image', () => {
    const flow = randomFlow(64, 48, 20);
    const raw = path.join(tmpDir(), 'colours.flow');
    fs.writeFileSync(raw, Buffer.from(flow.data.buffer));
    const out = path.join(tmpDir(), 'colours.rgb');
    oracle(['colors', '--flow', raw, '--size', '64', '48', '--out', out], TORCHVISION_PYTHON);
    const reference = fs.readFileSync(out);
    const ours = flowToColor(flow);
    let worst = 0;
    for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(reference[i] - ours.data[i]));
    console.log(`      largest difference from torchvision: ${worst} level(s) over ${reference.length} values`);
    assert.ok(worst <= 1);
  });

  it('a fixed normalisation keeps colours comparable across frames', () => {
    const slow = new FlowField(1, 1, Float32Array.from([1, 0]));
    const fast = new FlowField(1, 1, Float32Array.from([4, 0]));
    assert.deepEqual(flowToColor(slow).data, flowToColor(fast).data, 'per-frame normalisation: same colour');
    assert.notDeepEqual(flowToColor(slow, { maxMagnitude: 4 }).data, flowToColor(fast, { maxMagnitude: 4 }).data);
    assert.throws(() => flowToColor(slow, { maxMagnitude: -1 }), RangeError);
  });

  it('draws a legend and composes pictures side by side', () => {
    const legend = colorWheelLegend(32);
    assert.deepEqual([legend.width, legend.height], [32, 32]);
    const left = flowToColor(randomFlow(50, 40));
    const both = sideBySide([left, left], { gap: 2, legend });
    assert.deepEqual([both.width, both.height], [102, 40]);
    assert.throws(() => sideBySide([left, flowToColor(randomFlow(5, 5))]), /height 40 but received one of height 5/);
  });
});
