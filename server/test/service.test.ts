// The HTTP service on a real listening socket: every status it answers, with exact bodies, and its shutdown.
import { strict as assert } from 'assert';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { createFlowServer, FlowServer, serverOptionsFrom } from 'torch-optical-flow-server';
import { decodeFlo, FlowEstimator, ImageLike, readKittiFlow } from '../../lib';
import { formData, maxAbsDiff, ROOT, syntheticPair, THREADS, tmpDir } from '../../test/helpers';

async function png(image: ImageLike): Promise<Buffer> {
  return sharp(image.data as Uint8Array, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

function form(parts: Record<string, Buffer | string>): FormData {
  return formData(parts);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** A PNG whose header claims `width` x `height`, with a valid CRC, and whose data is a small image's. */
function lyingPng(small: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(small);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  let crc = 0xffffffff;
  for (const byte of out.subarray(12, 29)) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0, 29);
  return out;
}

describe('HTTP service', function () {
  this.timeout(120_000);
  let server: FlowServer;
  let base: string;
  let pngA: Buffer;
  let pngB: Buffer;
  const [a, b] = syntheticPair(96, 64, 3, 2);

  before(async function () {
    server = await createFlowServer({ models: ['raft-small=bundled'], threads: THREADS, maxPixels: 200 * 200, bodyLimit: 300_000, queueLimit: 2, maxIterations: 24 });
    base = await server.listen({ port: 0 });
    [pngA, pngB] = await Promise.all([png(a), png(b)]);
  });
  after(() => server?.close());

  const post = (body: FormData | string, query = '', headers: Record<string, string> = {}) =>
    fetch(`${base}/v1/flow${query}`, { method: 'POST', body, headers });

  async function expectError(response: Response, status: number, code: string, message: string | RegExp) {
    const body = await response.json() as { statusCode: number; code: string; error: string; message: string };
    assert.equal(response.status, status, JSON.stringify(body));
    assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(body.statusCode, status);
    assert.equal(body.code, code);
    if (typeof message === 'string') assert.equal(body.message, message);
    else assert.match(body.message, message);
    assert.deepEqual(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode']);
  }

  it('answers two PNG frames with the .flo the library computes for the same pixels', async function () {
    const response = await post(form({ frameA: pngA, frameB: pngB }));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/x-flo');
    assert.equal(response.headers.get('x-flow-model'), 'raft-small');
    assert.equal(response.headers.get('x-flow-weights'), 'project:raft-small');
    assert.equal(response.headers.get('x-flow-iterations'), '12');
    assert.match(response.headers.get('server-timing') ?? '', /^model;desc="queued and inferred";dur=\d+(\.\d+)?$/);
    const flow = decodeFlo(new Uint8Array(await response.arrayBuffer()));
    assert.deepEqual([flow.width, flow.height], [96, 64]);
    const direct = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: THREADS });
    try {
      const expected = await direct.estimate(a, b);
      assert.ok(maxAbsDiff(flow.data, expected.data) < 1e-4, `max |diff| ${maxAbsDiff(flow.data, expected.data)}`);
    } finally {
      await direct.dispose();
    }
  });

  it('answers KITTI 16-bit PNG (format field) and a colour PNG (Accept: image/png)', async function () {
    const kitti = await post(form({ frameA: pngA, frameB: pngB, format: 'kitti', iterations: '4' }));
    assert.equal(kitti.status, 200);
    assert.equal(kitti.headers.get('x-flow-iterations'), '4');
    const file = path.join(tmpDir(), 'service-kitti.png');
    fs.writeFileSync(file, Buffer.from(await kitti.arrayBuffer()));
    const masked = readKittiFlow(file);
    assert.deepEqual([masked.flow.width, masked.flow.height], [96, 64]);
    assert.ok(masked.valid.every((v) => v === 1));
    const flo = decodeFlo(new Uint8Array(await (await post(form({ frameA: pngA, frameB: pngB, iterations: '4' }))).arrayBuffer()));
    assert.ok(maxAbsDiff(masked.flow.data, flo.data) <= 0.5 / 64 + 1e-6, 'KITTI PNG holds the flow to 1/64 px');

    const colour = await post(form({ frameA: pngA, frameB: pngB }), '', { accept: 'image/png' });
    assert.equal(colour.status, 200);
    assert.equal(colour.headers.get('x-flow-format'), 'color');
    const meta = await sharp(Buffer.from(await colour.arrayBuffer())).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.depth], ['png', 96, 64, 'uchar']);
  });

  it('takes JSON with base64 images, raw pixels with their size, and a PPM through OpenCV', async function () {
    const json = await post(JSON.stringify({ frameA: pngA.toString('base64'), frameB: pngB.toString('base64'), iterations: 4 }), '',
      { 'content-type': 'application/json' });
    assert.equal(json.status, 200);
    const fromJson = decodeFlo(new Uint8Array(await json.arrayBuffer()));
    const raw = await post(form({ frameA: Buffer.from(a.data as Uint8Array), frameB: Buffer.from(b.data as Uint8Array), width: '96', height: '64', pixelFormat: 'rgb', iterations: '4' }));
    assert.equal(raw.status, 200);
    assert.ok(maxAbsDiff(decodeFlo(new Uint8Array(await raw.arrayBuffer())).data, fromJson.data) < 1e-4);
    const ppm = (image: ImageLike) => Buffer.concat([Buffer.from(`P6\n# a comment\n${image.width} ${image.height}\n255\n`), Buffer.from(image.data as Uint8Array)]);
    const viaOpenCV = await post(form({ frameA: ppm(a), frameB: ppm(b), iterations: '4' }));
    assert.equal(viaOpenCV.status, 200);
    assert.ok(maxAbsDiff(decodeFlo(new Uint8Array(await viaOpenCV.arrayBuffer())).data, fromJson.data) < 1e-4);
  });

  it('400: undecodable image, mismatched sizes, missing frame, unknown model, bad options, bad JSON', async function () {
    await expectError(await post(form({ frameA: pngA, frameB: Buffer.from('not an image at all') })), 400, 'ERR_DECODE',
      'frameB is not a decodable image (Input buffer contains unsupported image format)');
    const small = await png(syntheticPair(48, 32)[0]);
    await expectError(await post(form({ frameA: pngA, frameB: small })), 400, 'ERR_INPUT_SIZE',
      'frameA is 96x64 but frameB is 48x32; both frames must have the same size');
    await expectError(await post(form({ frameA: pngA })), 400, 'ERR_BAD_REQUEST', 'the request has no frameB; send both frameA and frameB');
    await expectError(await post(form({ frameA: pngA, frameB: pngB, model: 'raft' })), 400, 'ERR_UNKNOWN_MODEL',
      "this server does not serve model 'raft'; it serves raft-small (project:raft-small)");
    await expectError(await post(form({ frameA: pngA, frameB: pngB, weights: 'authors:raft-small' })), 400, 'ERR_UNKNOWN_MODEL',
      "this server does not serve model 'raft-small' with weights 'authors:raft-small'; it serves raft-small (project:raft-small)");
    await expectError(await post(form({ frameA: pngA, frameB: pngB, iterations: '25' })), 400, 'ERR_BAD_REQUEST',
      "iterations must be an integer between 1 and 24, got '25'");
    await expectError(await post(form({ frameA: pngA, frameB: pngB }), '?iterations=0'), 400, 'ERR_BAD_REQUEST', 'querystring/iterations must be >= 1');
    await expectError(await post(form({ frameA: pngA, frameB: pngB, format: 'jpeg' })), 400, 'ERR_BAD_REQUEST',
      "format must be one of flo, kitti, color, got 'jpeg'");
    await expectError(await post(form({ frameA: pngA, frameB: pngB, colour: 'yes' })), 400, 'ERR_BAD_REQUEST',
      "unexpected field 'colour' (fields: model, weights, iterations, format, width, height, pixelFormat)");
    await expectError(await post(form({ frameA: pngA, frameB: pngB, width: '96', height: '64' })), 400, 'ERR_BAD_REQUEST',
      /^frameA holds \d+ bytes; 96x64 rgb needs 18432$/);
    await expectError(await post('{"frameA": "x", ', '', { 'content-type': 'application/json' }), 400, 'ERR_BAD_REQUEST', /JSON/);
    await expectError(await post(JSON.stringify({ frameA: 'aGk=' }), '', { 'content-type': 'application/json' }), 400, 'ERR_BAD_REQUEST',
      "body must have required property 'frameB'");
  });

  it('413: an image over the body limit, a frame over the pixel limit, and a header that lies about its size', async function () {
    const big = Buffer.alloc(400_000, 7);
    await expectError(await post(form({ frameA: big, frameB: pngB })), 413, 'ERR_BODY_TOO_LARGE', 'request file too large');
    const wide = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#808080' } }).png().toBuffer();
    await expectError(await post(form({ frameA: wide, frameB: wide })), 413, 'ERR_PIXEL_LIMIT',
      "frameA is 300x200 (60000 pixels), over this server's limit of 40000 pixels");
    // A 96x64 PNG whose header (with a valid CRC) claims 60000x60000: refused from the header, nothing decoded.
    await expectError(await post(form({ frameA: lyingPng(pngA, 60000, 60000), frameB: pngB })), 413, 'ERR_PIXEL_LIMIT',
      "frameA is 60000x60000 (3600000000 pixels), over this server's limit of 40000 pixels");
    // Within the limit but lying: the decoder finds the data short, and says so.
    await expectError(await post(form({ frameA: lyingPng(pngA, 150, 150), frameB: pngB })), 400, 'ERR_DECODE', /^frameA could not be decoded/);
    await expectError(await post(JSON.stringify({ frameA: big.toString('base64'), frameB: 'aGk=' }), '', { 'content-type': 'application/json' }),
      413, 'ERR_BODY_TOO_LARGE', 'Request body is too large');
  });

  it('406 for an Accept it cannot meet, 415 for a body it cannot read, 404 for unknown routes, 501 for jobs without a queue', async function () {
    await expectError(await post(form({ frameA: pngA, frameB: pngB }), '', { accept: 'text/html' }), 406, 'ERR_NOT_ACCEPTABLE',
      'none of the accepted types (text/html) is offered; the flow comes as application/x-flo, application/octet-stream, image/png, or pick one with format=flo|kitti|color');
    await expectError(await post('frames', '', { 'content-type': 'text/plain' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE',
      'send the frames as multipart/form-data (fields frameA and frameB) or as application/json with base64 frameA and frameB');
    await expectError(await post('frames', '', { 'content-type': 'application/xml' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE', "content type 'application/xml' is not one this route reads");
    await expectError(await fetch(`${base}/v1/flow`, { method: 'POST' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE',
      'send the frames as multipart/form-data (fields frameA and frameB) or as application/json with base64 frameA and frameB');
    await expectError(await fetch(`${base}/v2/flow`), 404, 'ERR_NOT_FOUND', 'no route GET /v2/flow');
    await expectError(await fetch(`${base}/v1/jobs/abc`), 501, 'ERR_JOBS_DISABLED',
      'video jobs need a queue: start the server with --redis URL and --shared-dir DIR');
  });

  it('503 with Retry-After once the model queue is full, and serves again after', async function () {
    const [x, y] = syntheticPair(192, 192, 2, 1);
    const [fx, fy] = await Promise.all([png(x), png(y)]);
    const responses = await Promise.all(Array.from({ length: 6 }, () => post(form({ frameA: fx, frameB: fy, iterations: '12' }))));
    const statuses = responses.map((r) => r.status);
    assert.ok(statuses.includes(503), `statuses ${statuses}`);
    assert.ok(statuses.includes(200), `statuses ${statuses}`);
    assert.ok(statuses.every((s) => s === 200 || s === 503), `statuses ${statuses}`);
    for (const response of responses) {
      if (response.status !== 503) { await response.arrayBuffer(); continue; }
      assert.match(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
      // Refused either at the model's queue or while the others were still being received and decoded.
      await expectError(response, 503, 'ERR_QUEUE_FULL',
        /^(model raft-small has 2 requests queued or running|the server is receiving or decoding 2 requests), its limit; retry later$/);
    }
    assert.equal((await post(form({ frameA: pngA, frameB: pngB, iterations: '2' }))).status, 200);
  });

  it('504 past the deadline; the inference is cancelled and the model serves the next request', async function () {
    const tight = await createFlowServer({ models: ['raft-small=bundled'], threads: THREADS, deadline: 60, queueLimit: 8 });
    try {
      const url = await tight.listen({ port: 0 });
      const [x, y] = syntheticPair(256, 192, 2, 1);
      const raw = (image: ImageLike) => Buffer.from(image.data as Uint8Array);
      const send = () => fetch(`${url}/v1/flow`, { method: 'POST', body: form({ frameA: raw(x), frameB: raw(y), width: '256', height: '192', iterations: '24' }) });
      const responses = await Promise.all([send(), send(), send()]);
      for (const response of responses) {
        await expectError(response, 504, 'ERR_DEADLINE', /^the request passed its deadline of 60 ms (before|during) inference; its inference was cancelled$/);
      }
      const model = tight.pool.models[0].estimator;
      const until = Date.now() + 30_000;
      while (model.pending > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(model.pending, 0, 'the cancelled requests left the model');
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /optical_flow_rejected_total\{model="raft-small",reason="deadline"\} 3/);
    } finally {
      await tight.close();
    }
  });

  it('/healthz, /readyz and /metrics', async function () {
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' });
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', models: [{ model: 'raft-small', weights: 'project:raft-small', device: 'cpu', pending: 0, loaded: true }] });
    const metrics = await fetch(`${base}/metrics`);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await metrics.text();
    for (const line of [
      /optical_flow_http_requests_total\{route="\/v1\/flow",method="POST",status="200"\} \d+/,
      /optical_flow_http_requests_total\{route="\/v1\/flow",method="POST",status="503"\} \d+/,
      /optical_flow_http_request_duration_seconds_bucket\{le="0\.5",route="\/v1\/flow",method="POST"\} \d+/,
      /optical_flow_inference_seconds_count\{model="raft-small"\} \d+/,
      /optical_flow_model_queue_depth\{model="raft-small",weights="project:raft-small"\} 0/,
      /optical_flow_model_info\{model="raft-small",weights="project:raft-small",architecture="raft-small",device="cpu",trained_on="[^"]+"\} 1/,
      /optical_flow_rejected_total\{model="raft-small",reason="queue_full"\} [1-9]/,
      /optical_flow_nodejs_eventloop_lag_p99_seconds \d/,
      /optical_flow_process_resident_memory_bytes \d+/,
    ]) assert.match(text, line);
  });

  it('refuses bad options by name', async function () {
    await assert.rejects(createFlowServer({ queueLimit: 0 }), { code: 'ERR_OUT_OF_RANGE', message: 'Expected an integer between 1 and 10000 for queueLimit but received number 0' });
    await assert.rejects(createFlowServer({ models: [] }), { code: 'ERR_INVALID_ARG_TYPE', message: /for models but received an array of length 0/ });
    await assert.rejects(createFlowServer({ deadlne: 5 } as never), { code: 'ERR_UNKNOWN_OPTION', message: "Unknown option 'deadlne' in server options; did you mean 'deadline'?" });
    await assert.rejects(createFlowServer({ redis: 'redis://127.0.0.1:1' }), { code: 'ERR_INVALID_ARG_VALUE', message: /for sharedDir/ });
    await assert.rejects(createFlowServer({ models: ['no-such-model'] }), { code: 'ERR_MODEL_LOAD', message: /unknown model 'no-such-model'/ });
  });

  it('takes settings from flags, else OPTICAL_FLOW_* variables, and names a bad one', function () {
    const saved = { ...process.env };
    try {
      process.env.OPTICAL_FLOW_QUEUE_LIMIT = '7';
      process.env.OPTICAL_FLOW_MAX_PIXELS = '5000';
      process.env.OPTICAL_FLOW_MODELS = 'raft-small, raft=authors:raft-things';
      const options = serverOptionsFrom({ 'queue-limit': '9' });
      assert.equal(options.queueLimit, 9);
      assert.equal(options.maxPixels, 5000);
      assert.deepEqual(options.models, [{ model: 'raft-small' }, { model: 'raft', weights: 'authors:raft-things' }]);
      process.env.OPTICAL_FLOW_DEADLINE = 'soon';
      assert.throws(() => serverOptionsFrom({}), { message: "--deadline (or OPTICAL_FLOW_DEADLINE) must be an integer, got 'soon'" });
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
    const cli = spawnSync(process.execPath, [path.join(ROOT, 'server', 'dist', 'cli', 'main.js'), 'serve', '--queue-limit', '0'], { encoding: 'utf8' });
    assert.equal(cli.status, 1);
    assert.match(cli.stderr, /optical-flow-server: ERR_OUT_OF_RANGE: Expected an integer between 1 and 10000 for queueLimit but received number 0/);
  });

  it('shutdown past its timeout aborts the work in flight with 503 and still frees everything', async function () {
    const short = await createFlowServer({ models: ['raft-small=bundled'], threads: THREADS, shutdownTimeout: 50 });
    const url = await short.listen({ port: 0 });
    const [x, y] = syntheticPair(320, 240, 2, 1);
    const inFlight = fetch(`${url}/v1/flow`, { method: 'POST', body: form({ frameA: await png(x), frameB: await png(y), iterations: '24' }) });
    while (short.pool.models[0].estimator.pending === 0) await new Promise((r) => setTimeout(r, 5));
    await short.close();
    await expectError(await inFlight, 503, 'ERR_SHUTTING_DOWN', 'the server shut down before this request finished');
    assert.ok(short.pool.models[0].estimator.disposed);
  });

  it('`optical-flow-server serve` answers the curl lines of docs/service.md, and drains on SIGTERM: the request in flight gets its flow, new connections are refused, exit code 0', async function () {
    const child = spawn(process.execPath, [path.join(ROOT, 'server', 'dist', 'cli', 'main.js'), 'serve', '--port', '0', '--threads', String(THREADS), '--model', 'raft-small=bundled'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    let output = '';
    const address = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (chunk) => {
        output += chunk;
        const match = /"address":"(http:\/\/[^"]+)"/.exec(output);
        if (match) resolve(match[1]);
      });
      child.stderr!.on('data', (chunk) => { output += chunk; });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    // The curl lines of docs/service.md, as written, against this server.
    const section = fs.readFileSync(path.join(ROOT, 'docs', 'service.md'), 'utf8');
    const block = /```sh\n([\s\S]*?)```/.exec(section)![1];
    const curls = block.split('\n').filter((line) => line.startsWith('curl '));
    assert.equal(curls.length, 3);
    const work = fs.mkdtempSync(path.join(tmpDir(), 'docs-curl-'));
    for (const line of curls) {
      const command = line.replaceAll('http://127.0.0.1:8080', address).replaceAll('@docs/', `@${ROOT}/docs/`);
      const run = spawnSync('sh', ['-c', command], { cwd: work, encoding: 'utf8' });
      assert.equal(run.status, 0, `${command}: ${run.stderr}`);
      if (line.includes('/readyz')) assert.equal((JSON.parse(run.stdout) as { status: string }).status, 'ready');
    }
    const docsFlow = decodeFlo(fs.readFileSync(path.join(work, 'flow.flo')));
    assert.deepEqual([docsFlow.width, docsFlow.height], [320, 240]);
    assert.equal((await sharp(path.join(work, 'flow.png')).metadata()).width, 320);

    const [x, y] = syntheticPair(320, 240, 2, 1);
    const inFlight = fetch(`${address}/v1/flow`, { method: 'POST', body: form({ frameA: await png(x), frameB: await png(y), iterations: '24' }) });
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    const response = await inFlight;
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(decodeFlo(new Uint8Array(await response.arrayBuffer())).width, 320);
    assert.equal(await exited, 0, output);
    await assert.rejects(fetch(`${address}/healthz`), /fetch failed/);
    assert.match(output, /"msg":"shutting down"/);
  });
});
