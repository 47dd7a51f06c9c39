import { strict as assert } from 'assert';
import { spawn, spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { FlowError, FlowEstimator, registerWeights, weightsCatalogue, WeightsStore, type WeightsEntry } from '../lib';
import { main } from '../lib/cli/main';
import { assertWithinFlowTolerance, maxAbs, maxAbsDiff, published, pythonWithFlowlib, ROOT, syntheticPair, THREADS, tmpDir, writeRaw } from './helpers';
import { WeightsServer } from './WeightsServer';

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The look-alike (made by test/oracle/published.py) that stands for an entry's published file. */
function lookalikeOf(entry: WeightsEntry): string {
  switch (entry.source) {
    case 'authors': return 'models.zip';
    case 'torchvision': return `torchvision-${entry.architecture}.pth`;
    case 'flownetpytorch': return `flownetpytorch-${entry.architecture}.pth`;
    case 'ptlflow': return `ptlflow-${entry.architecture}.ckpt`;
    default: throw new Error(`no look-alike for ${entry.name}`);
  }
}

/** Files in a cache folder other than complete weights: partial downloads and locks. */
function leftovers(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.partial') || f.endsWith('.lock')) : [];
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<FlowError> {
  let caught: unknown;
  await promise.catch((e: unknown) => { caught = e; });
  assert.ok(caught instanceof FlowError, `expected a FlowError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, pattern);
  return caught;
}

const server = new WeightsServer();
const lookalikes: Record<string, string> = {};
const originals: WeightsEntry[] = [];
let cacheCount = 0;
/** A fresh, empty cache folder. */
function freshCache(): string {
  return fs.mkdtempSync(path.join(tmpDir(), `cache${cacheCount++}-`));
}

describe('published weights by name (a local server serving look-alikes of each published format)', function () {
  this.timeout(600_000);
  let mirror: string;
  let shared: string;  // one cache for the tests that only need the files there
  const load = (options: Parameters<typeof FlowEstimator.load>[0]) =>
    FlowEstimator.load({ device: 'cpu', threads: THREADS, mirror, ...options });

  before(async () => {
    Object.assign(lookalikes, JSON.parse(published(['make', '--out', path.join(tmpDir(), 'lookalikes')])) as Record<string, string>);
    await server.start();
    mirror = `${server.base}/files`;
    shared = freshCache();
    // Each published file is served under its own name; entries with a checksum take the look-alike's.
    for (const entry of weightsCatalogue()) {
      if (entry.bundled) continue;
      const lookalike = lookalikes[lookalikeOf(entry)];
      if (entry.archive) {
        server.serve('models.zip', lookalike);
        continue;
      }
      server.serve(entry.file, lookalike);
      originals.push(entry);
      registerWeights({ ...entry, sha256: sha256(lookalike), sha256Prefix: undefined, bytes: fs.statSync(lookalike).size }, { replace: true });
    }
  });

  after(async () => {
    for (const entry of originals) registerWeights(entry, { replace: true });
    await server.stop();
  });

  it('loads every entry of the catalogue by name, and runs it', async () => {
    const frame = syntheticPair(64, 64);
    const seen: string[] = [];
    for (const entry of weightsCatalogue()) {
      const flow = await load({ model: entry.model, weights: entry.name, cacheDir: shared });
      try {
        const field = await flow.estimate(frame[0], frame[1], { iterations: 2 });
        assert.ok(field.data.every(Number.isFinite), entry.name);
        assert.equal(flow.info.weights.name, entry.name);
        assert.equal(flow.info.arch, entry.architecture);
        assert.equal(flow.info.weights.pretrained, true);
        assert.ok(flow.info.weights.licence && flow.info.weights.trainedOn, entry.name);
        assert.deepEqual(flow.info.weights.metrics, entry.bundled ? flow.info.raw.metrics : entry.metrics);
        if (entry.sha256) assert.equal(flow.info.weights.sha256, entry.sha256);
        seen.push(`${entry.name} (${flow.info.weights.keyFormat ?? 'bundled'}${flow.info.divFlow ? `, div_flow ${flow.info.divFlow}` : ''})`);
      } finally {
        await flow.dispose();
      }
    }
    console.log(`      ${seen.length} entries loaded: ${seen.join(', ')}`);
    assert.equal(server.count('files', 'models.zip'), 1, "the authors' zip is downloaded once for its five files");
    const record = new WeightsStore({ cacheDir: shared }).trustRecord('authors-models.zip');
    assert.equal(record?.sha256, sha256(lookalikes['models.zip']), 'the zip is recorded on first use');
    assert.equal(Object.keys(record?.members ?? {}).length, 5);
    assert.ok(!fs.existsSync(path.join(shared, 'weights', 'models.zip')), 'the zip is removed once extracted');
    assert.deepEqual(leftovers(path.join(shared, 'weights')), []);
  });

  it('takes a name in three forms: source:name, an alias within the model, a unique short name', async () => {
    const byAlias = await load({ model: 'raft', weights: 'things', cacheDir: shared });
    const byStem = await load({ weights: 'raft_small_C_T_V2', cacheDir: shared });
    try {
      assert.equal(byAlias.info.weights.name, 'authors:raft-things');
      assert.equal(byStem.info.weights.name, 'torchvision:raft_small_C_T_V2');
      assert.equal(byStem.info.arch, 'raft-small', 'the model follows from the weights');
    } finally {
      await byAlias.dispose();
      await byStem.dispose();
    }
    await rejectsWith(load({ model: 'raft', weights: 'thngs' }), 'ERR_WEIGHTS', /unknown weights 'thngs' for 'raft'; did you mean 'things'\?/);
    await rejectsWith(load({ model: 'flownets', weights: 'authors:raft-things' }), 'ERR_WEIGHTS', /are for 'raft', not 'flownets'/);
  });

  it('serves a second load from the cache without a request, and works offline once cached', async () => {
    await new WeightsStore({ cacheDir: shared, mirror }).fetch(weightsCatalogue().find((e) => e.name === 'torchvision:raft_small_C_T_V2') as WeightsEntry);
    const before = server.count('files', 'raft_small_C_T_V2-01064c6d.pth');
    const flow = await load({ weights: 'torchvision:raft_small_C_T_V2', cacheDir: shared, offline: true });
    await flow.dispose();
    assert.equal(server.count('files', 'raft_small_C_T_V2-01064c6d.pth'), before);
  });

  it('never loads random weights unless asked, and says where to put a file when offline', async () => {
    const cache = freshCache();
    const error = await rejectsWith(load({ model: 'raft', cacheDir: cache, offline: true }), 'ERR_OFFLINE',
      /weights 'torchvision:raft_large_C_T_SKHT_V2' are not in the cache and downloads are off \(offline\); fetch http:\/\/127\.0\.0\.1:\d+\/files\/raft_large_C_T_SKHT_V2-ff5fadd5\.pth to /);
    assert.ok(error.message.includes(path.join(cache, 'weights', 'raft_large_C_T_SKHT_V2-ff5fadd5.pth')), error.message);
    await rejectsWith(FlowEstimator.load({ model: path.join(ROOT, 'models', 'raft.pt'), device: 'cpu' }), 'ERR_WEIGHTS',
      /holds the architecture without weights: give weights/);
    await rejectsWith(load({ model: 'flownetc-bn', cacheDir: cache }), 'ERR_WEIGHTS', /'flownetc-bn' has no published weights; give weights \(a file\) or weights: 'random'/);
    const [a, b] = syntheticPair(64, 64);
    const fields = [];
    for (let k = 0; k < 2; k++) {
      const random = await load({ model: 'raft', weights: 'random' });
      try {
        assert.equal(random.info.weights.pretrained, false);
        assert.match(random.info.trainedOn, /random weights/);
        fields.push((await random.estimate(a, b, { iterations: 2 })).data);
      } finally {
        await random.dispose();
      }
    }
    assert.ok(maxAbs(fields[0]) > 0.01 && fields[0].every(Number.isFinite), 'random weights give a real, finite flow');
    assert.equal(maxAbsDiff(fields[0], fields[1]), 0, 'the same seed gives the same weights');
    // raft-small's default is torchvision's published RAFT-S; offline, the error names the weights that need no
    // network rather than falling back to them.
    await rejectsWith(load({ offline: true, cacheDir: cache }), 'ERR_OFFLINE',
      /weights 'torchvision:raft_small_C_T_V2' are not in the cache .*These are 'raft-small's default weights; the weights trained by this project ship with the package and need no network: weights: 'bundled'$/);
    const bundled = await load({ weights: 'bundled', offline: true, cacheDir: cache });
    try {
      assert.equal(bundled.info.weights.name, 'project:raft-small');
    } finally {
      await bundled.dispose();
    }
  });

  it('describes the bundled weights with the figures their export carries', async () => {
    const bundled = await load({ weights: 'bundled', offline: true, cacheDir: freshCache() });
    try {
      const raw = bundled.info.raw.metrics as Record<string, Record<string, number>>;
      assert.ok(raw && raw['kitti-2015-training-samples-5'].fl_all > 0, JSON.stringify(bundled.info.raw));
      assert.deepEqual(bundled.info.weights.metrics, raw);
      assert.deepEqual(weightsCatalogue().find((e) => e.name === 'project:raft-small')!.metrics, {},
        'models/weights.json restates no figure of the bundled weights');
    } finally {
      await bundled.dispose();
    }
  });

  it('reads OPTICAL_FLOW_HOME, OPTICAL_FLOW_MIRROR and OPTICAL_FLOW_OFFLINE', async () => {
    const home = freshCache();
    const saved = { home: process.env.OPTICAL_FLOW_HOME, mirror: process.env.OPTICAL_FLOW_MIRROR, offline: process.env.OPTICAL_FLOW_OFFLINE };
    const restore = (name: string, value: string | undefined) => { if (value === undefined) delete process.env[name]; else process.env[name] = value; };
    Object.assign(process.env, { OPTICAL_FLOW_HOME: home, OPTICAL_FLOW_MIRROR: mirror, OPTICAL_FLOW_OFFLINE: '1' });
    try {
      const file = path.join(home, 'weights', 'raft-things-802bbcfd.ckpt');
      const error = await rejectsWith(FlowEstimator.load({ weights: 'ptlflow:raft-things', device: 'cpu' }), 'ERR_OFFLINE', /downloads are off/);
      assert.ok(error.message.includes(`fetch ${mirror}/raft-things-802bbcfd.ckpt to ${file}`), error.message);
      delete process.env.OPTICAL_FLOW_OFFLINE;
      const flow = await FlowEstimator.load({ weights: 'ptlflow:raft-things', device: 'cpu', threads: THREADS });
      assert.equal(flow.info.weights.file, file);
      await flow.dispose();
    } finally {
      restore('OPTICAL_FLOW_HOME', saved.home);
      restore('OPTICAL_FLOW_MIRROR', saved.mirror);
      restore('OPTICAL_FLOW_OFFLINE', saved.offline);
    }
  });

  it("uses a file already in torch.hub's cache (TORCH_HOME), downloading nothing", async () => {
    const torchHome = fs.mkdtempSync(path.join(tmpDir(), 'torch-home-'));
    const entry = weightsCatalogue().find((e) => e.name === 'torchvision:raft_large_C_T_V1') as WeightsEntry;
    fs.mkdirSync(path.join(torchHome, 'hub', 'checkpoints'), { recursive: true });
    fs.copyFileSync(lookalikes['torchvision-raft.pth'], path.join(torchHome, 'hub', 'checkpoints', entry.file));
    const saved = process.env.TORCH_HOME;
    process.env.TORCH_HOME = torchHome;
    try {
      const flow = await load({ weights: entry.name, cacheDir: freshCache(), offline: true });
      assert.equal(flow.info.weights.file, path.join(torchHome, 'hub', 'checkpoints', entry.file));
      await flow.dispose();
    } finally {
      if (saved === undefined) delete process.env.TORCH_HOME; else process.env.TORCH_HOME = saved;
    }
  });

  describe('failures leave nothing under the final name', () => {
    const lookalike = () => lookalikes['torchvision-raft-small.pth'];
    /** An entry served from `url`, with the look-alike's checksum unless given. */
    const entry = (name: string, url: string, extra: Partial<WeightsEntry> = {}) => registerWeights({
      name: `test:${name}`, model: 'raft-small', source: 'torchvision', keyFormat: 'torchvision-raft-small', url,
      sha256: sha256(lookalike()), trainedOn: 'look-alike', ...extra,
    }, { replace: true });
    const noMirror = (options: Parameters<typeof FlowEstimator.load>[0]) =>
      FlowEstimator.load({ device: 'cpu', threads: THREADS, ...options });

    it('a checksum mismatch', async () => {
      server.serve('mismatch.pth', lookalike());
      const e = entry('mismatch', `${server.base}/files/mismatch.pth`, { sha256: 'ab'.repeat(32) });
      const cache = freshCache();
      await rejectsWith(noMirror({ weights: e.name, cacheDir: cache }), 'ERR_DOWNLOAD', /has SHA-256 [0-9a-f]{64}, not the published abab.*: the file was not kept/);
      assert.deepEqual(fs.readdirSync(path.join(cache, 'weights')), []);
    });

    it('a file named with its SHA-256 prefix (torch.hub style), right and wrong', async () => {
      const prefix = sha256(lookalike()).slice(0, 8);
      server.serve(`lookalike-${prefix}.pth`, lookalike());
      server.serve('lookalike-00000000.pth', lookalike());
      const right = entry('prefixed', `${server.base}/files/lookalike-${prefix}.pth`, { sha256: undefined, sha256Prefix: prefix });
      const wrong = entry('misprefixed', `${server.base}/files/lookalike-00000000.pth`, { sha256: undefined, sha256Prefix: '00000000' });
      const cache = freshCache();
      const flow = await noMirror({ weights: right.name, cacheDir: cache });
      assert.match(flow.info.weights.verification ?? '', new RegExp(`SHA-256 prefix ${prefix}`));
      await flow.dispose();
      await rejectsWith(noMirror({ weights: wrong.name, cacheDir: cache }), 'ERR_DOWNLOAD', /does not start with 00000000 as its name says/);
      assert.deepEqual(fs.readdirSync(path.join(cache, 'weights')), [`lookalike-${prefix}.pth`]);
    });

    it('the server closing the connection mid-body', async () => {
      server.serve('cut.pth', lookalike());
      const e = entry('cut', `${server.base}/truncate/cut.pth`);
      const cache = freshCache();
      await rejectsWith(noMirror({ weights: e.name, cacheDir: cache }), 'ERR_DOWNLOAD', /connection closed before the whole file arrived|of \d+ bytes arrived/);
      assert.deepEqual(fs.readdirSync(path.join(cache, 'weights')), []);
    });

    it('a 404', async () => {
      const e = entry('gone', `${server.base}/files/gone.pth`);
      await rejectsWith(noMirror({ weights: e.name, cacheDir: freshCache() }), 'ERR_DOWNLOAD', /from http:\/\/127\.0\.0\.1:\d+\/files\/gone\.pth: the server answered 404/);
    });

    it('follows a chain of redirects', async () => {
      server.serve('moved.pth', lookalike());
      const e = entry('moved', `${server.base}/redirect/3/moved.pth`);
      const flow = await noMirror({ weights: e.name, cacheDir: freshCache() });
      await flow.dispose();
      assert.equal(server.count('files', 'moved.pth'), 1);
    });

    it('a stalled server times out', async () => {
      server.serve('stuck.pth', lookalike());
      const e = entry('stuck', `${server.base}/stall/stuck.pth`);
      const cache = freshCache();
      const started = Date.now();
      await rejectsWith(noMirror({ weights: e.name, cacheDir: cache, downloadTimeout: 400 }), 'ERR_DOWNLOAD', /stopped responding \(timed out\)/);
      assert.ok(Date.now() - started < 10_000, `gave up after ${Date.now() - started} ms`);
      assert.deepEqual(fs.readdirSync(path.join(cache, 'weights')), []);
    });

    it('an AbortSignal stops a download', async () => {
      server.serve('slow.pth', lookalike());
      const e = entry('slow', `${server.base}/slow/slow.pth`);
      const cache = freshCache();
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      await rejectsWith(noMirror({ weights: e.name, cacheDir: cache, signal: controller.signal }), 'ERR_ABORTED', /aborted/);
      assert.deepEqual(fs.readdirSync(path.join(cache, 'weights')), []);
    });

    it("a changed authors' zip is refused once its first download was recorded (trust on first use)", async () => {
      const cache = freshCache();
      const store = new WeightsStore({ cacheDir: cache, mirror });
      const things = weightsCatalogue().find((e) => e.name === 'authors:raft-things') as WeightsEntry;
      await store.fetch(things);
      fs.rmSync(store.cachePath(things));
      const tampered = path.join(tmpDir(), 'tampered.zip');
      fs.copyFileSync(lookalikes['models.zip'], tampered);
      const bytes = fs.readFileSync(tampered);
      bytes[bytes.length >> 1] ^= 0xff;
      fs.writeFileSync(tampered, bytes);
      server.serve('models.zip', tampered);
      try {
        await rejectsWith(store.fetch(things), 'ERR_DOWNLOAD', /models\.zip from .* has SHA-256 [0-9a-f]+, not the one recorded on first use, [0-9a-f]{64}: the file was not kept/);
      } finally {
        server.serve('models.zip', lookalikes['models.zip']);
      }
      assert.ok(!fs.existsSync(store.cachePath(things)));
    });
  });

  it("an authors' zip that lacks a member is refused whole: nothing extracted, nothing recorded", async () => {
    const partialZip = path.join(tmpDir(), 'partial-models.zip');
    pythonWithFlowlib(`import zipfile\nsrc = zipfile.ZipFile(${JSON.stringify(lookalikes['models.zip'])})\n` +
      `with zipfile.ZipFile(${JSON.stringify(partialZip)}, 'w') as out:\n` +
      `    [out.writestr(n, src.read(n)) for n in src.namelist() if n != 'models/raft-kitti.pth']`);
    const cache = freshCache();
    const store = new WeightsStore({ cacheDir: cache, mirror });
    server.serve('models.zip', partialZip);
    try {
      await rejectsWith(store.fetch(weightsCatalogue().find((e) => e.name === 'authors:raft-things') as WeightsEntry), 'ERR_DOWNLOAD',
        /^models\.zip does not hold models\/raft-kitti\.pth$/);
    } finally {
      server.serve('models.zip', lookalikes['models.zip']);
    }
    assert.deepEqual(fs.readdirSync(path.join(cache, 'weights')), []);
    assert.equal(store.trustRecord('authors-models.zip'), undefined);
  });

  describe('concurrency, locks, progress and proxies', () => {
    const slowEntry = (name: string) => {
      const source = lookalikes['torchvision-raft-small.pth'];
      server.serve(`${name}.pth`, source);
      return registerWeights({
        name: `test:${name}`, model: 'raft-small', source: 'torchvision', keyFormat: 'torchvision-raft-small',
        url: `${server.base}/slow/${name}.pth`, sha256: sha256(source), trainedOn: 'look-alike',
      }, { replace: true });
    };

    it('two load() calls at once download once', async () => {
      const e = slowEntry('twice');
      const cache = freshCache();
      const [a, b] = await Promise.all([1, 2].map(() => FlowEstimator.load({ weights: e.name, cacheDir: cache, device: 'cpu', threads: 1 })));
      await a.dispose();
      await b.dispose();
      assert.equal(server.count('slow', 'twice.pth'), 1);
    });

    it('two processes at once: one transfer, both load, the file intact', async () => {
      const e = slowEntry('shared');
      const cache = freshCache();
      const script = `const lib = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))});
        lib.registerWeights(${JSON.stringify(e)}, { replace: true });
        lib.FlowEstimator.load({ weights: ${JSON.stringify(e.name)}, cacheDir: ${JSON.stringify(cache)}, device: 'cpu', threads: 1 })
          .then((f) => { console.log(f.info.weights.file); return f.dispose(); })
          .catch((err) => { console.error(err.code, err.message); process.exitCode = 1; });`;
      const runs = [1, 2].map(() => new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
        child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
        child.on('close', (code) => resolve({ code, out }));
      }));
      const results = await Promise.all(runs);
      for (const r of results) assert.equal(r.code, 0, r.out);
      assert.equal(server.count('slow', 'shared.pth'), 1, 'one transfer');
      assert.equal(sha256(path.join(cache, 'weights', 'shared.pth')), e.sha256);
      assert.deepEqual(leftovers(path.join(cache, 'weights')), []);
    });

    it('a lock left by a crashed process does not block', async () => {
      const e = slowEntry('stale');
      for (const stale of ['dead process', 'old lock from another host']) {
        const cache = freshCache();
        fs.mkdirSync(path.join(cache, 'weights'), { recursive: true });
        const lock = path.join(cache, 'weights', 'stale.pth.lock');
        if (stale === 'dead process') {
          const dead = spawnSync(process.execPath, ['-e', '0']).pid;
          fs.writeFileSync(lock, JSON.stringify({ pid: dead, host: os.hostname() }));
        } else {
          fs.writeFileSync(lock, JSON.stringify({ pid: 1, host: 'elsewhere' }));
          const hourAgo = new Date(Date.now() - 3_600_000);
          fs.utimesSync(lock, hourAgo, hourAgo);
        }
        const started = Date.now();
        const flow = await FlowEstimator.load({ weights: e.name, cacheDir: cache, device: 'cpu', threads: 1 });
        await flow.dispose();
        assert.ok(Date.now() - started < 20_000, `${stale}: took ${Date.now() - started} ms`);
        assert.deepEqual(leftovers(path.join(cache, 'weights')), [], stale);
      }
    });

    it('reports progress up to the published size', async () => {
      const e = slowEntry('progress');
      const seen: { loaded: number; total: number | undefined }[] = [];
      const flow = await FlowEstimator.load({ weights: e.name, cacheDir: freshCache(), device: 'cpu', threads: 1, onProgress: (p) => seen.push(p) });
      await flow.dispose();
      const size = fs.statSync(lookalikes['torchvision-raft-small.pth']).size;
      assert.ok(seen.length >= 3, `${seen.length} progress calls`);
      assert.ok(seen.every((p, i) => p.total === size && (i === 0 || p.loaded >= seen[i - 1].loaded)));
      assert.equal(seen[seen.length - 1].loaded, size);
    });

    it('goes through HTTP_PROXY, and not for hosts in NO_PROXY', async () => {
      // A forward proxy: undici tunnels through CONNECT; plain absolute-URL requests are forwarded too.
      let proxied = 0;
      const proxy = http.createServer((req, res) => {
        proxied++;
        const upstream = http.request(req.url as string, { method: req.method, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        req.pipe(upstream);
      });
      proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
        proxied++;
        const [host, port] = (req.url as string).split(':');
        const upstream = net.connect(Number(port), host, () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY, http_proxy: process.env.http_proxy, no_proxy: process.env.no_proxy };
      try {
        delete process.env.http_proxy;
        delete process.env.no_proxy;
        process.env.HTTP_PROXY = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
        process.env.NO_PROXY = '';
        // A timeout of its own makes a new agent, which reads the proxy variables.
        const store = new WeightsStore({ cacheDir: freshCache(), mirror, timeout: 29_999 });
        await store.fetch(weightsCatalogue().find((e) => e.name === 'ptlflow:raft_small-things') as WeightsEntry);
        assert.equal(proxied, 1, 'the download went through the proxy');
        process.env.NO_PROXY = '127.0.0.1';
        const direct = new WeightsStore({ cacheDir: freshCache(), mirror, timeout: 29_998 });
        await direct.fetch(weightsCatalogue().find((e) => e.name === 'ptlflow:raft_small-things') as WeightsEntry);
        assert.equal(proxied, 1, 'NO_PROXY bypasses the proxy');
      } finally {
        for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
        await new Promise<void>((resolve) => proxy.close(() => resolve()));
      }
    });
  });

  describe('the CLI', () => {
    const cli = async (args: string[]) => {
      const lines: string[] = [];
      const log = console.log;
      console.log = (...parts: unknown[]) => { lines.push(parts.join(' ')); };
      try {
        return { code: await main(args), out: lines.join('\n') };
      } finally {
        console.log = log;
      }
    };

    it('weights list, fetch, verify and path', async () => {
      const cache = freshCache();
      const list = await cli(['weights', 'list', '--json', '--cache-dir', cache, '--mirror', mirror]);
      assert.equal(list.code, 0);
      const rows = JSON.parse(list.out) as { name: string; cached: string | null; trainedOn: string; licence: string }[];
      assert.equal(rows.length, weightsCatalogue().length);
      assert.ok(rows.every((r) => r.trainedOn && r.licence));
      assert.deepEqual(rows.filter((r) => r.cached).map((r) => r.name), ['project:raft-small']);
      const fetched = await cli(['weights', 'fetch', 'ptlflow:raft-things', '--cache-dir', cache, '--mirror', mirror]);
      assert.equal(fetched.code, 0);
      const where = await cli(['weights', 'path', 'ptlflow:raft-things', '--cache-dir', cache]);
      assert.equal(where.out, path.join(cache, 'weights', 'raft-things-802bbcfd.ckpt'));
      const verified = await cli(['weights', 'verify', '--cache-dir', cache]);
      assert.equal(verified.code, 0);
      assert.match(verified.out, /ok {3}ptlflow:raft-things: matches the published SHA-256/);
      fs.appendFileSync(where.out, 'x');
      const broken = await cli(['weights', 'verify', '--cache-dir', cache]);
      assert.equal(broken.code, 1);
      assert.match(broken.out, /BAD {2}ptlflow:raft-things/);
    });
  });
});

describe('published formats: the key mapping, and the flow against PyTorch', function () {
  this.timeout(600_000);
  let cache: string;
  const server2 = new WeightsServer();

  before(async () => {
    if (Object.keys(lookalikes).length === 0) {
      Object.assign(lookalikes, JSON.parse(published(['make', '--out', path.join(tmpDir(), 'lookalikes')])) as Record<string, string>);
    }
    await server2.start();
    for (const [name, file] of Object.entries(lookalikes)) server2.serve(name, file);
    cache = freshCache();
  });
  after(() => server2.stop());

  // Each format and architecture, through a catalogue name (so through the download, the cache and the key format).
  const cases = ['authors:raft-things', 'authors:raft-small', 'torchvision:raft_large_C_T_SKHT_V2', 'torchvision:raft_small_C_T_V2',
    'flownetpytorch:flownets_EPE1.951', 'flownetpytorch:flownetc_EPE1.766', 'flownetpytorch:flownets_bn_EPE2.459',
    'flownetpytorch:flownets_from_caffe', 'ptlflow:raft-things', 'ptlflow:raft_small-things', 'ptlflow:flownets-things',
    'ptlflow:flownetc-things'];
  for (const name of cases) {
    it(`${name}: every file key lands on one tensor, and the flow equals PyTorch's`, async () => {
      const original = weightsCatalogue().find((e) => e.name === name) as WeightsEntry;
      const lookalike = lookalikeOf(original);
      const bgr = original.inputOrder === 'bgr';
      const file = lookalikes[lookalike];
      const served = original.archive ? original : registerWeights({ ...original, file: lookalike, sha256: sha256(file), sha256Prefix: undefined, bytes: undefined }, { replace: true });
      try {
        const flow = await FlowEstimator.load({ weights: name, cacheDir: cache, mirror: `${server2.base}/files`, device: 'cpu', threads: THREADS });
        try {
          const weightsFile = flow.info.weights.file as string;
          // The flow, against PyTorch eager (torchvision's own model for its files), and the key mapping as Python reads
          // the same rules (a bijection onto the architecture's tensors), from one Python process.
          const [a, b] = syntheticPair(128, 96);
          const iterations = flow.info.family === 'raft' ? 4 : 1;
          const node = await flow.estimate(a, b, { iterations });
          const tag = name.replace(/[^a-z0-9]/gi, '_');
          const out = path.join(tmpDir(), `${tag}.flow`);
          const mapping = JSON.parse(published(['flow', '--arch', served.architecture, '--weights', weightsFile, '--source', original.source,
            '--frames', writeRaw(a, `${tag}-a.rgb`), writeRaw(b, `${tag}-b.rgb`), '--size', '128', '96', '--iterations', String(iterations),
            '--threads', String(THREADS), '--out', out, '--key-format', served.keyFormat, ...(bgr ? ['--bgr'] : [])])) as
            { fileKeys: number; modelTensors: number; covered: number; missing: string[]; unexpected: string[]; collisions: string[][] };
          assert.deepEqual([mapping.missing, mapping.unexpected, mapping.collisions], [[], [], []]);
          assert.equal(mapping.covered, mapping.modelTensors);
          assert.equal(new Set(flow.weightsLoaded).size, flow.weightsLoaded.length, 'no tensor loaded twice');
          assert.equal(flow.weightsLoaded.length, mapping.modelTensors, 'every tensor of the architecture loaded');
          const bytes = fs.readFileSync(out);
          const eager = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
          const diff = maxAbsDiff(node.data, eager);
          console.log(`      ${name} (${served.architecture}, ${flow.info.weights.keyFormat}${bgr ? ', BGR' : ''}): ${mapping.fileKeys} keys onto ` +
            `${mapping.modelTensors} tensors; max |flow| ${maxAbs(eager).toFixed(2)} px, max |Node - PyTorch| ${diff.toExponential(2)} px`);
          assertWithinFlowTolerance(diff, eager);
        } finally {
          await flow.dispose();
        }
      } finally {
        registerWeights(original, { replace: true });
      }
    });
  }

  it('refuses a file in which two keys land on one tensor with different values', async () => {
    const renamed = path.join(tmpDir(), 'doubled.pth');
    published(['doubled', '--from', lookalikes['torchvision-raft-small.pth'], '--out', renamed]);
    await rejectsWith(FlowEstimator.load({ model: 'raft-small', weights: renamed, device: 'cpu' }), 'ERR_WEIGHTS',
      /keys naming one tensor twice: feature_encoder\.convnormrelu\.0\.weight and fnet\.conv1\.weight \(both fnet\.conv1\.weight\)/);
    // The authors' files name some norm layers twice (normN and downsample.1): the two must agree.
    const aliased = path.join(tmpDir(), 'aliased.pth');
    published(['doubled', '--alias', '--from', lookalikes['authors-raft.pth'], '--out', aliased]);
    await rejectsWith(FlowEstimator.load({ model: 'raft', weights: aliased, device: 'cpu' }), 'ERR_WEIGHTS',
      /keys naming one tensor twice: cnet\.layer2\.0\.(norm3|downsample\.1)\.weight and cnet\.layer2\.0\.(norm3|downsample\.1)\.weight \(one tensor, two values\)/);
  });
});
