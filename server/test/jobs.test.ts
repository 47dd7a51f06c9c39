// Video jobs end to end: the HTTP server submits to BullMQ over a Redis of the tests' own, workers run the jobs
// with the library's video session and put results in the shared directory. Includes the fault run: two worker
// processes, twenty jobs, one worker killed with SIGKILL mid-job and Redis restarted, every job completed once.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { createFlowServer, FlowServer, startVideoJobWorker, VideoJobWorker } from 'torch-optical-flow-server';
import { decodeFlo } from '../../lib';
import { makeDemoClip } from '../../lib/cli/demoClip';
import { matFromRgb, opencv } from '../../lib/opencv';
import { faultRun, waitFor } from './FaultRun';
import { formData, tmpDir } from '../../test/helpers';
import { hasRedis, RedisServer } from './RedisServer';

function writeClip(file: string, count: number, width = 64, height = 48): void {
  const cv = opencv();
  const clip = makeDemoClip(width, height, count);
  const writer = new cv.VideoWriter(file, cv.VideoWriter.fourcc('MJPG'), 24, new cv.Size(width, height), true);
  for (const frame of clip.frames) writer.write(matFromRgb({ data: frame, width, height }));
  writer.release();
}

interface Status { id: string; state: string; attemptsMade: number; failedReason?: string; progress: { pairs: number; total: number; percent: number } | null }

function form(parts: Record<string, Buffer | string>, filename = 'clip.avi'): FormData {
  return formData(parts, filename);
}

describe('video jobs on BullMQ workers', function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let dir: string;
  let shared: string;
  let input: string;
  let clip: Buffer;
  let server: FlowServer;
  let base: string;

  before(async function () {
    if (!hasRedis()) {
      console.log('      skipped: redis-server is not installed (npm test installs it when run as root: apt-get install redis-server)');
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(tmpDir(), 'jobs-'));
    shared = path.join(dir, 'shared');
    input = path.join(dir, 'input');
    fs.mkdirSync(input, { recursive: true });
    writeClip(path.join(input, 'clip.avi'), 8);
    clip = fs.readFileSync(path.join(input, 'clip.avi'));
    redis = await RedisServer.start(path.join(dir, 'redis'));
    server = await createFlowServer({ models: ['raft-small=bundled'], threads: 1, redis: redis.url, sharedDir: shared, inputDir: input });
    base = await server.listen({ port: 0 });
  });
  after(async () => {
    await server?.close();
    await redis?.stop();
  });

  const status = async (id: string) => (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as Status;
  const settled = (id: string) => waitFor(`job ${id}`, async () => {
    const s = await status(id);
    return s.state === 'completed' || s.state === 'failed' ? s : undefined;
  });
  const submit = async (body: FormData | object) => {
    const response = await fetch(`${base}/v1/jobs`, body instanceof FormData ? { method: 'POST', body }
      : { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const json = await response.json() as { id: string; statusCode?: number; code?: string; message?: string };
    return { response, json };
  };

  describe('with one worker in this process', function () {
    let worker: VideoJobWorker;
    before(async () => {
      worker = await startVideoJobWorker({ redis: redis.url, sharedDir: shared, threads: 1, lockDuration: 2000, stalledInterval: 1000 });
    });
    after(() => worker?.close());

    it('runs an uploaded video: 202 with its location, progress, the result listing and its files', async function () {
      const { response, json } = await submit(form({ video: clip, iterations: '6' }));
      assert.equal(response.status, 202);
      assert.equal(response.headers.get('location'), `/v1/jobs/${json.id}`);
      assert.deepEqual(json, { id: json.id, state: 'waiting', status: `/v1/jobs/${json.id}`, result: `/v1/jobs/${json.id}/result` });
      const done = await settled(json.id);
      assert.equal(done.state, 'completed', done.failedReason);
      assert.deepEqual(done.progress, { pairs: 7, total: 7, percent: 100 });
      const result = await (await fetch(`${base}/v1/jobs/${json.id}/result`)).json() as {
        dir: string; files: { name: string; bytes: number; url: string }[]; summary: Record<string, unknown>;
      };
      assert.equal(result.dir, `results/${json.id}`);
      assert.deepEqual(result.files.map((f) => f.name), ['flow.avi', ...[1, 2, 3, 4, 5, 6, 7].map((i) => `flow/00000${i}.flo`), 'summary.json']);
      assert.equal(result.summary.pairs, 7);
      assert.equal(result.summary.iterations, 6);
      assert.equal(result.summary.video, 'clip.avi');
      assert.deepEqual([result.summary.width, result.summary.height, result.summary.worker], [64, 48, worker.id]);
      const flo = await fetch(`${base}${result.files[3].url}`);
      assert.equal(flo.headers.get('content-type'), 'application/x-flo');
      const field = decodeFlo(new Uint8Array(await flo.arrayBuffer()));
      assert.deepEqual([field.width, field.height], [64, 48]);
      assert.ok(field.data.every(Number.isFinite));
      const video = opencv().VideoCapture;
      const capture = new video(path.join(shared, result.dir, 'flow.avi'));
      assert.equal(capture.get(opencv().CAP_PROP_FRAME_COUNT), 7);
      capture.release();
      assert.deepEqual(fs.readdirSync(path.join(shared, 'uploads')), [], 'the upload is removed once the result is in place');
      assert.deepEqual(fs.readdirSync(path.join(shared, 'staging')), []);
    });

    it('runs a video named by path inside the input directory, and only there', async function () {
      const { response, json } = await submit({ path: 'clip.avi', outputs: ['flo'], maxFrames: 3 });
      assert.equal(response.status, 202);
      const done = await settled(json.id);
      assert.equal(done.state, 'completed', done.failedReason);
      const result = await (await fetch(`${base}/v1/jobs/${json.id}/result`)).json() as { files: { name: string }[] };
      assert.deepEqual(result.files.map((f) => f.name), ['flow/000001.flo', 'flow/000002.flo', 'summary.json']);
      assert.ok(fs.existsSync(path.join(input, 'clip.avi')), 'a video named by path is never removed');

      fs.symlinkSync('/etc/hostname', path.join(input, 'escape.avi'));
      for (const [request, status, code, message] of [
        [{ path: '/etc/hostname' }, 403, 'ERR_PATH_NOT_ALLOWED', "video '/etc/hostname' is outside the input directory"],
        [{ path: 'escape.avi' }, 403, 'ERR_PATH_NOT_ALLOWED', "video 'escape.avi' is outside the input directory"],
        [{ path: 'missing.avi' }, 400, 'ERR_BAD_REQUEST', "video 'missing.avi' does not exist in the input directory"],
        [{ path: 'clip.avi', outputs: 'flo,gif' }, 400, 'ERR_BAD_REQUEST', "outputs must be a list of flo, video, got 'gif'"],
        [{ path: 'clip.avi', model: 'raft' }, 400, 'ERR_UNKNOWN_MODEL', "this server does not serve model 'raft'; it serves raft-small (project:raft-small)"],
      ] as const) {
        const { response: r, json: body } = await submit(request);
        assert.equal(r.status, status, JSON.stringify(body));
        assert.deepEqual([body.code, body.message], [code, message]);
      }
    });

    it('fails a corrupt upload once and for good, with the library\'s reason; its result answers 409', async function () {
      const { json } = await submit(form({ video: Buffer.from('this is not a video at all '.repeat(100)) }));
      const done = await settled(json.id);
      assert.equal(done.state, 'failed');
      assert.equal(done.attemptsMade, 1, 'an input error is not retried');
      assert.match(done.failedReason ?? '', /^ERR_VIDEO: /);
      const result = await fetch(`${base}/v1/jobs/${json.id}/result`);
      assert.equal(result.status, 409);
      const body = await result.json() as { code: string; message: string };
      assert.equal(body.code, 'ERR_JOB_NOT_DONE');
      assert.equal(body.message, `job '${json.id}' is failed: ${done.failedReason}`);
      assert.deepEqual(fs.readdirSync(path.join(shared, 'uploads')), []);
      const missing = await fetch(`${base}/v1/jobs/no-such-job`);
      assert.equal(missing.status, 404);
      assert.deepEqual(await missing.json(), { statusCode: 404, code: 'ERR_NOT_FOUND', error: 'Not Found', message: "no job 'no-such-job'" });
    });

    it('answers 503 with Retry-After while Redis is away, and serves again when it is back', async function () {
      await redis.stop();
      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 503);
      assert.deepEqual((await ready.json() as { queue: unknown }).queue, { reachable: false });
      const { response, json } = await submit({ path: 'clip.avi' });
      assert.equal(response.status, 503);
      assert.equal(response.headers.get('retry-after'), '5');
      assert.equal(json.code, 'ERR_QUEUE_UNAVAILABLE');
      assert.match(json.message ?? '', /^the job queue cannot be reached \(.+\); retry later$/);
      await redis.restart();
      await waitFor('readiness', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined), 20_000);
      const again = await submit({ path: 'clip.avi', outputs: 'flo', maxFrames: 2 });
      assert.equal(again.response.status, 202);
      assert.equal((await settled(again.json.id)).state, 'completed', 'the worker reconnected');
    });

    it('says 409 while a job is not done (a queue no worker serves)', async function () {
      const idle = await createFlowServer({ models: ['raft-small=bundled'], threads: 1, redis: redis.url, sharedDir: shared, inputDir: input, queueName: 'nobody-serves-this' });
      try {
        const url = await idle.listen({ port: 0 });
        const submitted = await (await fetch(`${url}/v1/jobs`, { method: 'POST', body: JSON.stringify({ path: 'clip.avi' }), headers: { 'content-type': 'application/json' } })).json() as { id: string };
        const s = await (await fetch(`${url}/v1/jobs/${submitted.id}`)).json() as Status;
        assert.equal(s.state, 'waiting');
        const result = await fetch(`${url}/v1/jobs/${submitted.id}/result`);
        assert.equal(result.status, 409);
        assert.deepEqual(await result.json(), { statusCode: 409, code: 'ERR_JOB_NOT_DONE', error: 'Conflict', message: `job '${submitted.id}' is waiting` });
        const metrics = await (await fetch(`${url}/metrics`)).text();
        assert.match(metrics, /optical_flow_jobs\{state="waiting"\} 1/);
      } finally {
        await idle.close();
      }
    });
  });

  it('fault run: two worker processes, 20 jobs, one worker killed mid-job and Redis restarted; all 20 complete exactly once', async function () {
    const run = await faultRun({ base, redis, shared, video: clip });
    assert.deepEqual(run.states, run.ids.map(() => 'completed'));
    // Exactly once: one result per job, whole, recorded once (BullMQ's event stream), none left aside.
    const results = fs.readdirSync(path.join(shared, 'results'));
    for (const id of run.ids) {
      assert.ok(results.includes(id));
      assert.deepEqual(fs.readdirSync(path.join(shared, 'results', id)).sort(), ['flow', 'summary.json']);
      assert.equal(fs.readdirSync(path.join(shared, 'results', id, 'flow')).length, 5);
      const recorded = (await (await fetch(`${base}/v1/jobs/${id}/result`)).json() as { summary: { worker: string; pairs: number } }).summary;
      const onDisk = JSON.parse(fs.readFileSync(path.join(shared, 'results', id, 'summary.json'), 'utf8')) as { worker: string };
      assert.equal(recorded.worker, onDisk.worker, 'the result recorded is the result in place');
      assert.equal(recorded.pairs, 5);
      const times = run.completions.filter((c) => c === id).length;
      assert.equal(times, 1, `job ${id} completed ${times} times`);
    }
    assert.deepEqual(fs.readdirSync(path.join(shared, 'staging')), []);
    assert.deepEqual(fs.readdirSync(path.join(shared, 'uploads')), []);
    const killed = JSON.parse(fs.readFileSync(path.join(shared, 'results', run.killedJob, 'summary.json'), 'utf8')) as { worker: string; attempt: number };
    assert.equal(killed.worker, run.workers[1].id, 'the killed worker\'s job was completed by the other (a result of the killed worker: it finished before SIGKILL landed)');
    assert.ok(killed.attempt >= 2, `attempt ${killed.attempt}`);
    assert.equal(run.survivorExitCode, 0, 'SIGTERM stops a worker cleanly');
  });
});
