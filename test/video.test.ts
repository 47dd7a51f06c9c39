import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FlowError, FlowEstimator, VideoFlowSession } from '../lib';
import { COMMANDS } from '../lib/cli/main';
import { COMMON_OPTIONS } from '../lib/cli/options';
import { opencv } from '../lib/opencv';
import { exportModel, hasSharedData, pythonWithFlowlib, ROOT, SHARED_DATA, THREADS, tmpDir } from './helpers';

const TREE = path.join(SHARED_DATA, 'video', 'tree.avi');
const SINTEL = path.join(SHARED_DATA, 'video', 'sintel_clip.mp4');

describe('video sessions over OpenCV captures', function () {
  this.timeout(120_000);
  let flow: FlowEstimator;

  before(async function () {
    flow = await FlowEstimator.load({ model: exportModel('raft-small', { seed: 2 }), device: 'cpu', threads: THREADS });
  });
  after(() => flow?.dispose());

  const needsData = function (this: Mocha.Context) {
    if (!hasSharedData()) { console.log(`      skipped: ${SHARED_DATA} is absent`); this.skip(); }
  };

  it('yields consecutive pairs of tree.avi with the right shapes and count', async function () {
    needsData.call(this);
    const session = VideoFlowSession.open(flow, TREE, { maxFrames: 6, iterations: 4 });
    const seen: number[] = [];
    for await (const { index, frame, flow: field } of session) {
      seen.push(index);
      assert.deepEqual([field.width, field.height], [frame.cols, frame.rows]);
      assert.deepEqual([field.width, field.height], [320, 240]);
    }
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  });

  it('reads every frame of the Sintel mp4 clip it is asked for', async function () {
    needsData.call(this);
    const session = VideoFlowSession.open(flow, SINTEL, { maxFrames: 3, iterations: 2 });
    let pairs = 0;
    for await (const item of session) { pairs++; assert.equal(item.flow.width, session.width); }
    assert.equal(pairs, 2);
    assert.ok(session.frameCount >= 3);
  });

  it('stops cleanly when aborted mid-stream', async function () {
    needsData.call(this);
    const controller = new AbortController();
    const session = VideoFlowSession.open(flow, TREE, { signal: controller.signal, iterations: 2 });
    let pairs = 0;
    for await (const _ of session) {
      if (++pairs === 2) controller.abort();
    }
    assert.equal(pairs, 2);
    assert.equal(flow.pending, 0);
  });

  it('a video cut short ends with ERR_VIDEO, not as if it were complete', async () => {
    const cv = opencv();
    const whole = path.join(tmpDir(), 'whole.avi');
    const writer = new cv.VideoWriter(whole, cv.VideoWriter.fourcc('MJPG'), 24, new cv.Size(96, 64), true);
    for (let k = 0; k < 40; k++) {
      const bgr = Buffer.alloc(96 * 64 * 3);
      for (let i = 0; i < bgr.length; i++) bgr[i] = (i * 7 + k * 13 + ((i / 288) | 0) * 5) % 251;
      writer.write(new cv.Mat(bgr, 64, 96, cv.CV_8UC3));
    }
    writer.release();
    let pairs = 0;
    for await (const _ of VideoFlowSession.open(flow, whole, { iterations: 1 })) pairs++;
    assert.equal(pairs, 39, 'the whole file reads to its end');

    const cut = path.join(tmpDir(), 'cut.avi');
    const bytes = fs.readFileSync(whole);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length / 2));
    let before = 0;
    await assert.rejects(async () => { for await (const _ of VideoFlowSession.open(flow, cut, { iterations: 1 })) before++; },
      (e: FlowError) => e.code === 'ERR_VIDEO' && /the video ended after \d+ of the 40 frames its container announces \(truncated or corrupt file\)/.test(e.message));
    assert.ok(before > 0 && before < 39, `pairs before the error: ${before}`);
  });

  it('answers a missing or corrupt video with ERR_VIDEO', async () => {
    assert.throws(() => VideoFlowSession.open(flow, '/nonexistent/clip.mp4'),
      (e: FlowError) => e instanceof FlowError && e.code === 'ERR_VIDEO' && /'\/nonexistent\/clip\.mp4' does not exist/.test(e.message));
    const corrupt = path.join(tmpDir(), 'corrupt.avi');
    fs.writeFileSync(corrupt, Buffer.alloc(4096, 7));
    await assert.rejects(async () => { for await (const _ of VideoFlowSession.open(flow, corrupt)) { /* nothing */ } },
      (e: FlowError) => e.code === 'ERR_VIDEO' && /corrupt\.avi' \(OpenCV cannot decode it\)|no frame could be decoded/.test(e.message));
    assert.throws(() => VideoFlowSession.open(flow, TREE, { maxFrame: 3 } as never), /did you mean 'maxFrames'/);
    assert.throws(() => VideoFlowSession.open(flow, -1), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_ARG_TYPE');
  });
});

describe('the demo and the CLI', function () {
  this.timeout(300_000);
  const cli = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
  const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: ROOT });

  it('runs the demo headless on its own clip and writes a flow video and pictures', () => {
    const out = path.join(tmpDir(), 'demo');
    const result = run(['demo', '--out', out, '--max-frames', '8', '--iterations', '3', '--threads', String(THREADS)]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /7 pairs in .* fps/);
    assert.match(result.stdout, /end-point error against the known motion: [0-9.]+ px/);
    const video = path.join(out, 'flow.avi');
    assert.ok(fs.existsSync(video));
    const cv = opencv();
    const capture = new cv.VideoCapture(video);
    assert.equal(capture.get(cv.CAP_PROP_FRAME_COUNT), 7);
    assert.equal(capture.get(cv.CAP_PROP_FRAME_WIDTH), 320 * 2 + 4);
    capture.release();
    const pictures = fs.readdirSync(out).filter((f) => f.endsWith('.png'));
    assert.ok(pictures.length >= 2, `pictures: ${pictures}`);
  });

  it('estimates a pair of images into .flo and .png', function () {
    if (!hasSharedData()) this.skip();
    const prefix = path.join(tmpDir(), 'cli-pair');
    const result = run(['estimate', path.join(SHARED_DATA, 'formats', '00001_img1.ppm'), path.join(SHARED_DATA, 'formats', '00001_img2.ppm'),
      '--out', prefix, '--iterations', '2', '--weights', 'bundled']);
    assert.equal(result.status, 0, result.stderr);
    assert.ok(fs.existsSync(`${prefix}.flo`) && fs.existsSync(`${prefix}.png`));
  });

  it('evaluates folders with ground truth into an EPE table', function () {
    if (!hasSharedData()) this.skip();
    const json = path.join(tmpDir(), 'eval.json');
    const result = run(['eval', path.join(SHARED_DATA, 'sintel'), path.join(SHARED_DATA, 'formats'), '--iterations', '2', '--weights', 'bundled', '--json', json]);
    assert.equal(result.status, 0, result.stderr);
    const rows = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.deepEqual(rows.map((r: { pairs: number }) => r.pairs), [1, 1]);
    assert.deepEqual(rows.map((r: { iterations: number }) => r.iterations), [2, 2]);
    assert.match(result.stdout, /raft-small +sintel +1 +[0-9.]+ +[0-9.]+% +[0-9.]+ +[0-9.-]+ +[0-9.-]+ +2\.0/);
  });

  it('eval --tolerance stops refinement early and reports the iterations run; a bad --tolerance is named', function () {
    if (!hasSharedData()) this.skip();
    const json = path.join(tmpDir(), 'eval-tolerance.json');
    const result = run(['eval', path.join(SHARED_DATA, 'formats'), '--iterations', '6', '--tolerance', '100', '--weights', 'bundled', '--json', json]);
    assert.equal(result.status, 0, result.stderr);
    const [row] = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.ok(row.iterations >= 1 && row.iterations < 6, `iterations ${row.iterations}`);
    assert.ok(Number.isFinite(row.epe));
    for (const bad of ['abc', '0', '1000']) {
      const failed = run(['eval', path.join(SHARED_DATA, 'formats'), '--tolerance', bad, '--weights', 'bundled']);
      assert.notEqual(failed.status, 0);
      assert.match(failed.stderr, /tolerance/);
      assert.match(failed.stderr, new RegExp(`(got '${bad}'|received number ${bad})$`, 'm'));
    }
  });

  it('reads the KITTI and Sintel training layouts with their masks, and measures OpenCV\'s methods as the Python validation does', function () {
    if (!hasSharedData()) this.skip();
    this.timeout(300_000);
    const json = path.join(tmpDir(), 'eval-classical.json');
    const folders = ['kitti2012', 'kitti2015', 'sintel-training'];
    const result = run(['eval', ...folders.map((f) => path.join(SHARED_DATA, f)), '--model', '', '--classical', 'zero,dis-medium', '--json', json]);
    assert.equal(result.status, 0, result.stderr);
    type Row = { method: string; folder: string; pairs: number; epe: number; flAll: number; bySpeed: { from: number; to: number | null; epe: number; pixels: number }[] };
    const rows: Row[] = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.deepEqual(rows.map((r) => `${r.method} ${r.folder} ${r.pairs}`),
      ['zero kitti2012 2', 'zero kitti2015 5', 'zero sintel-training 5', 'dis-medium kitti2012 2', 'dis-medium kitti2015 5', 'dis-medium sintel-training 5']);
    for (const row of rows) assert.deepEqual(row.bySpeed.map((b) => [b.from, b.to]), [[0, 10], [10, 40], [40, null]]);
    // The same pairs, masks and measures in Python (python/flowlib/evaluation.py), which the trainer selects by.
    const python = JSON.parse(pythonWithFlowlib([
      'import json',
      'from flowlib.baselines import methods',
      'from flowlib.evaluation import evaluate_full, validation_sets',
      'sets = validation_sets(names=["kitti2012", "kitti2015", "sintel"])',
      'print(json.dumps({m: evaluate_full(methods()[m], sets) for m in ("zero", "dis-medium")}))',
    ].join('\n')));
    const setOf: Record<string, string> = { kitti2012: 'kitti2012', kitti2015: 'kitti2015', 'sintel-training': 'sintel' };
    for (const row of rows) {
      const theirs = python[row.method][setOf[row.folder]];
      assert.ok(Math.abs(row.epe - theirs.epe) < 1e-3 * theirs.epe, `${row.method} ${row.folder} EPE ${row.epe} vs ${theirs.epe}`);
      assert.ok(Math.abs(row.flAll - theirs.fl_all) < 1e-4, `${row.method} ${row.folder} Fl-all ${row.flAll} vs ${theirs.fl_all}`);
      assert.ok(Math.abs(row.bySpeed[2].epe - theirs['s40+']) < 1e-2, `${row.method} ${row.folder} over 40 px ${row.bySpeed[2].epe} vs ${theirs['s40+']}`);
    }
    // A pair Python cannot read: the failure is reported by name, not taken as a result.
    const broken = fs.mkdtempSync(path.join(tmpDir(), 'unreadable-'));
    fs.writeFileSync(path.join(broken, 'x-img0.ppm'), 'not an image');
    fs.writeFileSync(path.join(broken, 'x-img1.ppm'), 'not an image');
    fs.copyFileSync(path.join(SHARED_DATA, 'flyingchairs', '0000001-gt.flo'), path.join(broken, 'x-gt.flo'));
    const failed = run(['eval', broken, '--model', '', '--classical', 'zero']);
    assert.equal(failed.status, 1, failed.stdout);
    assert.match(failed.stderr, /--classical: \S*scripts\/python -m flowlib\.baselines failed: .*x-img0\.ppm: cannot read image/);
    const unknown = run(['eval', path.join(SHARED_DATA, 'kitti2012'), '--classical', 'lucas-kanade']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /--classical: unknown method 'lucas-kanade'; the methods are dis-medium, dis-fast, farneback, deepflow, zero, or all/);
  });

  it('explains bad usage with exit code 2, and lists every option in its help', () => {
    const one = run(['estimate', 'only-one.png']);
    assert.equal(one.status, 2);
    assert.match(one.stderr, /estimate needs exactly two images/);
    const unknown = run(['demo', '--frobnicate', '1']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /demo: Unknown option '--frobnicate'/);
    assert.equal(run(['nonsense']).status, 2);
    const help = run(['help']).stdout;
    for (const command of [...COMMANDS, { name: 'every command', options: COMMON_OPTIONS }]) {
      for (const [name, spec] of Object.entries(command.options)) {
        const option = spec.value ? `--${name} ${spec.value}` : `--${name}`;
        assert.ok(help.includes(option), `help lacks ${command.name}'s ${option}:\n${help}`);
      }
    }
  });

  it('checks --out before the inference, and says why an image cannot be read', () => {
    const image = path.join(tmpDir(), 'not-an-image.png');
    fs.writeFileSync(image, 'text, not pixels');
    const missingFolder = run(['estimate', image, image, '--out', path.join(tmpDir(), 'no-such-folder', 'flow')]);
    assert.equal(missingFolder.status, 2);
    assert.match(missingFolder.stderr, /--out: folder '.*no-such-folder' does not exist/);
    const undecodable = run(['estimate', image, image, '--out', path.join(tmpDir(), 'flow')]);
    assert.equal(undecodable.status, 1);
    assert.match(undecodable.stderr, /image '.*not-an-image\.png' could not be (decoded|read)/);
    assert.doesNotMatch(undecodable.stderr, /undefined/);
  });
});
