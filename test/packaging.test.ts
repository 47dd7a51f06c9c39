import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tmpDir } from './helpers';
import { bundledModels } from '../lib';

// How the package is put together: where the addon is looked for, what works without the optional OpenCV
// package, and what `npm pack` ships.
describe('packaging', function () {
  this.timeout(120_000);
  const built = path.join(ROOT, 'build', 'Release', 'optical_flow.node');

  /** Runs a short program against a copy of the compiled library placed at `packageRoot`/dist/lib. */
  function runLibraryAt(packageRoot: string, program: string, env: NodeJS.ProcessEnv = {}) {
    fs.cpSync(path.join(ROOT, 'dist', 'lib'), path.join(packageRoot, 'dist', 'lib'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'models', 'architectures.json'), path.join(packageRoot, 'models', 'architectures.json'));
    return spawnSync(process.execPath, ['-e', program], {
      encoding: 'utf8', cwd: packageRoot,
      // The copy resolves its npm dependencies from the project's node_modules.
      env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules'), ...env },
    });
  }
  const capabilities = `const lib = require('./dist/lib'); try { console.log(JSON.stringify(lib.capabilities())); } ` +
    `catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;

  it('says where it looked when the addon is not built', () => {
    const result = runLibraryAt(path.join(tmpDir(), 'unbuilt'), capabilities);
    const out = JSON.parse(result.stdout);
    assert.equal(out.code, 'ERR_NATIVE_MISSING', result.stderr);
    assert.match(out.message, /the native addon is not built \(looked for .*unbuilt\/build\/Release\/optical_flow\.node, .*unbuilt\/build\/Debug\/optical_flow\.node\)/);
    assert.match(out.message, /set OPTICAL_FLOW_BINDING/);
  });

  it('finds a Debug build when there is no Release build', () => {
    const root = path.join(tmpDir(), 'debug-build');
    fs.mkdirSync(path.join(root, 'build', 'Debug'), { recursive: true });
    fs.copyFileSync(built, path.join(root, 'build', 'Debug', 'optical_flow.node'));
    const result = runLibraryAt(root, capabilities);
    assert.equal(typeof JSON.parse(result.stdout).torchVersion, 'string', result.stdout + result.stderr);
  });

  it('loads the build OPTICAL_FLOW_BINDING points to, and names a wrong one', () => {
    const root = path.join(tmpDir(), 'override');
    const good = runLibraryAt(root, capabilities, { OPTICAL_FLOW_BINDING: built });
    assert.equal(typeof JSON.parse(good.stdout).torchVersion, 'string', good.stdout + good.stderr);
    const bad = JSON.parse(runLibraryAt(root, capabilities, { OPTICAL_FLOW_BINDING: '/nonexistent/optical_flow.node' }).stdout);
    assert.deepEqual(bad, { code: 'ERR_NATIVE_MISSING', message: 'OPTICAL_FLOW_BINDING points to /nonexistent/optical_flow.node, which does not exist' });
  });

  it('estimates plain image buffers without @u4/opencv4nodejs, and video says it needs it', () => {
    // A resolver hook makes the optional peer dependency absent for this process only.
    const hide = path.join(tmpDir(), 'hide-opencv.js');
    fs.writeFileSync(hide, `const Module = require('module'); const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request.startsWith('@u4/opencv')) { const e = new Error("Cannot find module '" + request + "'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
  return resolve.call(this, request, ...rest);
};`);
    const program = `(async () => {
  const { FlowEstimator, VideoFlowSession } = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))});
  const flow = await FlowEstimator.load({ model: 'raft-small', weights: 'bundled', device: 'cpu', threads: 2 });
  const a = { data: new Uint8Array(64 * 64 * 3).map((_, i) => (i * 37) % 251), width: 64, height: 64 };
  const field = await flow.estimate(a, a, { iterations: 2 });
  let video;
  try { VideoFlowSession.open(flow, ${JSON.stringify(path.join(ROOT, 'package.json'))}); } catch (e) { video = { code: e.code, message: e.message }; }
  await flow.dispose();
  const loaded = Object.keys(require.cache).some((f) => f.includes('opencv4nodejs'));
  console.log(JSON.stringify({ width: field.width, video, loaded }));
})().catch((e) => { console.error(e); process.exit(1); });`;
    const result = spawnSync(process.execPath, ['--require', hide, '-e', program], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    const out = JSON.parse(result.stdout.trim().split('\n').pop()!);
    assert.equal(out.width, 64);
    assert.equal(out.loaded, false);
    assert.equal(out.video.code, 'ERR_NATIVE_MISSING');
    assert.match(out.video.message, /^OpenCV Mats, image files and video need @u4\/opencv4nodejs, an optional peer dependency of this package: install it with `npm install @u4\/opencv4nodejs`/);
  });

  it('eval --classical in an installed package (no python/) says the clone has it', () => {
    const root = path.join(tmpDir(), 'installed');
    runLibraryAt(root, '');
    const folder = path.join(root, 'pairs');
    fs.mkdirSync(folder);
    for (const name of ['x-img0.ppm', 'x-img1.ppm']) fs.writeFileSync(path.join(folder, name), 'P6 1 1 255 abc');
    fs.writeFileSync(path.join(folder, 'x-gt.flo'), Buffer.concat([Buffer.from('PIEH'), Buffer.from(new Int32Array([1, 1]).buffer), Buffer.alloc(8)]));
    const result = spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'eval', folder, '--model', '', '--classical', 'zero'], {
      encoding: 'utf8', env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules'), OPTICAL_FLOW_BINDING: built },
    });
    assert.equal(result.status, 2, result.stdout + result.stderr);
    assert.ok(result.stderr.includes(`--classical runs the project's Python package, which is not at ${path.join(root, 'python')} (it is in a clone, not in the npm package)`), result.stderr);
  });

  it('npm pack holds only what runs: compiled library and CLI, the addon\'s sources and build file, the exports and catalogues', () => {
    const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    const [pack] = JSON.parse(result.stdout) as { entryCount: number; size: number; files: { path: string }[] }[];
    const files = pack.files.map((f) => f.path);
    const allowed = [/^dist\/lib\/.*\.(js|d\.ts)$/, /^binding\/[A-Za-z]+\.(cc|h)$/, /^CMakeLists\.txt$/, /^cmake\/[A-Za-z]+\.cmake$/, /^package\.json$/, /^README\.md$/,
      /^CHANGELOG\.md$/, /^models\/([a-z0-9-]+\.pt|README\.md|architectures\.json|weights\.json)$/];
    const stray = files.filter((f) => !allowed.some((pattern) => pattern.test(f)));
    assert.deepEqual(stray, []);
    for (const needed of ['dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/cli/main.js', 'binding/addon.cc', 'CMakeLists.txt',
      'models/architectures.json', 'models/weights.json', ...bundledModels().map((name) => `models/${name}.pt`)]) {
      assert.ok(files.includes(needed), `the pack lacks ${needed}`);
    }
    assert.ok(!files.some((f) => f.startsWith('dist/test/')), 'tests are not shipped');
    // Every export but the trained one is the architecture alone.
    for (const f of pack.files as { path: string; size: number }[]) {
      if (f.path.endsWith('.pt') && f.path !== 'models/raft-small.pt') assert.ok(f.size < 512 * 1024, `${f.path} is ${f.size} bytes`);
    }
    console.log(`      npm pack: ${pack.entryCount} files, ${(pack.size / 2 ** 20).toFixed(2)} MiB`);
  });

  it('the core needs none of the service\'s dependencies, and nothing it ships loads them or the repository\'s test data', () => {
    const core = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const server = JSON.parse(fs.readFileSync(path.join(ROOT, 'server', 'package.json'), 'utf8'));
    const serviceOnly = Object.keys(server.dependencies);
    assert.deepEqual(Object.keys(core.dependencies).filter((d) => serviceOnly.includes(d)), []);
    assert.deepEqual(server.peerDependencies, { [core.name]: `^${core.version}` });
    const shipped: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (file.endsWith('.js')) shipped.push(file);
      }
    };
    walk(path.join(ROOT, 'dist', 'lib'));
    for (const file of shipped) {
      const source = fs.readFileSync(file, 'utf8');
      for (const dependency of serviceOnly) {
        assert.ok(!source.includes(`require("${dependency}")`), `${path.relative(ROOT, file)} loads ${dependency}`);
      }
      assert.ok(!/['"`][^'"`]*(\.\.\/shared|test\/oracle|\/test\/)/.test(source), `${path.relative(ROOT, file)} refers to the repository's tests or shared data`);
    }
  });

  it('the server package ships its compiled library and CLI only', () => {
    const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: path.join(ROOT, 'server'), encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    const files = (JSON.parse(result.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
    assert.deepEqual(files.filter((f) => !/^(dist\/.*\.(js|d\.ts)|package\.json|README\.md)$/.test(f)), []);
    for (const needed of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js']) assert.ok(files.includes(needed), `the pack lacks ${needed}`);
  });
});
