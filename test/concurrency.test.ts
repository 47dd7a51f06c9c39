import { strict as assert } from 'assert';
import { FlowError, FlowEstimator, FlowField, ImageLike } from '../lib';
import { exportModel, maxAbsDiff, syntheticPair, THREADS } from './helpers';

function pairs(count: number): [ImageLike, ImageLike][] {
  return Array.from({ length: count }, (_, i) => syntheticPair(96 + 8 * (i % 3), 72, (i % 5) - 2, (i % 3) - 1));
}

describe('concurrency: one model, many requests', function () {
  this.timeout(120_000);
  let flow: FlowEstimator;
  let model: string;

  before(async () => {
    model = exportModel('raft-small', { seed: 5 });
    flow = await FlowEstimator.load({ model, device: 'cpu', threads: THREADS });
  });
  after(() => flow?.dispose());

  it('8 simultaneous estimates equal the serial results', async () => {
    const inputs = pairs(8);
    const serial: FlowField[] = [];
    for (const [a, b] of inputs) serial.push(await flow.estimate(a, b, { iterations: 6 }));
    const parallel = await Promise.all(inputs.map(([a, b]) => flow.estimate(a, b, { iterations: 6 })));
    parallel.forEach((field, i) => {
      assert.equal(field.width, serial[i].width);
      assert.equal(maxAbsDiff(field.data, serial[i].data), 0, `request ${i} differs`);
    });
    assert.equal(flow.pending, 0);
  });

  it('keeps the event loop ticking: a 10 ms timer never waits 50 ms during inference', async () => {
    const [a, b] = syntheticPair(512, 384);
    let last = Date.now();
    let worst = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = Date.now();
      worst = Math.max(worst, now - last);
      last = now;
      ticks++;
    }, 10);
    try {
      await Promise.all([flow.estimate(a, b), flow.estimate(b, a)]);
    } finally {
      clearInterval(timer);
    }
    console.log(`      ${ticks} timer ticks during inference, longest gap ${worst} ms`);
    assert.ok(ticks > 10, `only ${ticks} ticks`);
    assert.ok(worst < 50, `the event loop stalled for ${worst} ms`);
  });

  it('lets the caller reuse its frame buffers as soon as estimate() returns', async () => {
    const [a, b] = syntheticPair(96, 72);
    const expected = await flow.estimate(a, b, { iterations: 4 });
    const pending = flow.estimate(a, b, { iterations: 4 });
    (a.data as Uint8Array).fill(0);
    assert.equal(maxAbsDiff((await pending).data, expected.data), 0);
  });

  it('aborts a queued request, leaving the others intact', async () => {
    const [a, b] = syntheticPair(256, 192);
    const controller = new AbortController();
    const first = flow.estimate(a, b);
    const aborted = flow.estimate(a, b, { signal: controller.signal });
    const third = flow.estimate(a, b, { iterations: 2 });
    controller.abort();
    await assert.rejects(aborted, (e: FlowError) => e instanceof FlowError && e.code === 'ERR_ABORTED');
    assert.equal((await first).width, 256);
    assert.equal((await third).width, 256);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const [a, b] = syntheticPair(64, 64);
    await assert.rejects(flow.estimate(a, b, { signal: AbortSignal.abort() }),
      (e: FlowError) => e instanceof FlowError && e.code === 'ERR_ABORTED' && /before it was queued/.test(e.message));
  });

  it('rejects a running request promptly when aborted, and stays usable', async () => {
    const [a, b] = syntheticPair(512, 384);
    const controller = new AbortController();
    const running = flow.estimate(a, b, { signal: controller.signal, iterations: 30 });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(running, (e: FlowError) => e.code === 'ERR_ABORTED');
    assert.equal(flow.pending, 1, 'the rejection came before the inference finished');
    assert.equal((await flow.estimate(a, b, { iterations: 1 })).height, 384);
  });

  it('refuses requests beyond the queue limit with ERR_QUEUE_FULL', async () => {
    const small = await FlowEstimator.load({ model, device: 'cpu', threads: 1, queueLimit: 2 });
    const [a, b] = syntheticPair(128, 96);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => small.estimate(a, b, { iterations: 2 })));
    const full = results.filter((r) => r.status === 'rejected' && (r.reason as FlowError).code === 'ERR_QUEUE_FULL');
    const done = results.filter((r) => r.status === 'fulfilled');
    assert.equal(done.length, 2);
    assert.equal(full.length, 4);
    assert.match((full[0] as PromiseRejectedResult).reason.message, /queue is full/);
    await small.dispose();
  });

  it('dispose while requests are queued: the running one finishes, the queued ones reject with ERR_DISPOSED', async () => {
    const doomed = await FlowEstimator.load({ model, device: 'cpu', threads: 1 });
    const [a, b] = syntheticPair(256, 192);
    const requests = Array.from({ length: 4 }, () => doomed.estimate(a, b, { iterations: 3 }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const disposed = doomed.dispose();
    const results = await Promise.allSettled(requests);
    await disposed;
    assert.equal(results[0].status, 'fulfilled');
    for (const r of results.slice(1)) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.code, 'ERR_DISPOSED');
    }
    assert.equal(doomed.pending, 0);
  });

  it('two models run side by side', async () => {
    const other = await FlowEstimator.load({ model: exportModel('raft', { seed: 5 }), device: 'cpu', threads: 1 });
    const [a, b] = syntheticPair(96, 72);
    const [x, y] = await Promise.all([flow.estimate(a, b), other.estimate(a, b)]);
    assert.equal(x.width, y.width);
    await other.dispose();
  });
});
