import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { capabilities } from '../lib';
import { assertWithinFlowTolerance, maxAbs, maxAbsDiff, oracle, PYTHON, ROOT, syntheticPair, THREADS, tmpDir, TORCHVISION_PYTHON, writeRaw } from './helpers';

/** What a Python's torch is: its version (without a local suffix such as +cpu) and the folder of its libtorch_cpu. */
function torchOf(python: string): { version: string; libraryDir: string } {
  const program = 'import os, torch; print(torch.__version__); print(os.path.join(os.path.dirname(torch.__file__), "lib"))';
  const result = spawnSync(python, ['-c', program], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${python}: ${result.stderr}`);
  const [version, libraryDir] = result.stdout.trim().split('\n');
  return { version: baseVersion(version), libraryDir };
}

const baseVersion = (version: string) => (/^\d+\.\d+\.\d+/.exec(version) ?? [version])[0];

/** The folders every LibTorch library mapped into this process was loaded from. */
function mappedLibTorchFolders(): string[] {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  const files = new Set(maps.split('\n').map((line) => line.split(/\s+/)[5]).filter((f) => f && /\/lib(torch|c10)[^/]*\.so/.test(f)));
  return [...new Set([...files].map((f) => path.dirname(fs.realpathSync(f))))];
}

describe('the LibTorch the addon runs on', function () {
  this.timeout(60_000);

  it('is the project environment\'s PyTorch 2.x (or $LIBTORCH\'s), headers and libraries alike', () => {
    const caps = capabilities();
    const expected = process.env.LIBTORCH ? null : torchOf(PYTHON);
    console.log(`      addon: LibTorch ${caps.torchVersion} (headers ${caps.torchHeadersVersion}) from ${caps.torchLibrary}`);
    assert.equal(caps.torchVersion, caps.torchHeadersVersion);
    if (expected) {
      assert.equal(caps.torchVersion, expected.version);
      assert.match(caps.torchVersion, /^2\./);
      assert.equal(path.dirname(fs.realpathSync(caps.torchLibrary)), fs.realpathSync(expected.libraryDir));
    }
    assert.deepEqual(mappedLibTorchFolders(), [path.dirname(fs.realpathSync(caps.torchLibrary))],
      'LibTorch libraries from more than one folder are loaded');
  });
});

/**
 * The addon's other builds, made by `npm run setup -- --cuda-build --debian-build` (CI does): each is loaded in its
 * own process, reports its LibTorch, refuses CUDA where there is none, and gives the flow of that LibTorch's PyTorch
 * for all four architectures (exports made by that PyTorch: an export loads in its own LibTorch and later ones).
 */
const VARIANTS = [
  { name: 'CUDA LibTorch 2.14.1', dir: 'build-cuda', python: path.join(ROOT, '.venv-cuda', 'bin', 'python'), cudaBuild: true,
    libraryDir: (python: string) => torchOf(python).libraryDir },
  { name: 'Debian\'s LibTorch 1.13', dir: 'build-debian', python: TORCHVISION_PYTHON, cudaBuild: false,
    libraryDir: () => '/usr/lib/x86_64-linux-gnu' },
];
const ARCHITECTURES = ['raft-small', 'raft', 'flownets', 'flownetc'];

for (const variant of VARIANTS) {
  describe(`the addon built against ${variant.name} (${variant.dir}/)`, function () {
    this.timeout(300_000);
    const binding = path.join(ROOT, variant.dir, 'Release', 'optical_flow.node');
    let probe: { capabilities: ReturnType<typeof capabilities>; results: Record<string, Record<string, { file?: string; code?: string; message?: string }>> };
    let frames: [string, string];
    let exports: Record<string, string>;
    const [width, height] = [128, 128];

    before(function () {
      if (!fs.existsSync(binding) || !fs.existsSync(variant.python)) {
        console.log(`      skipped: ${binding} is not built (\`npm run setup -- ${variant.dir === 'build-cuda' ? '--cuda-build' : '--debian-build'}\` builds it; CI does)`);
        this.skip();
      }
      const out = fs.mkdtempSync(path.join(tmpDir(), `${variant.dir}-`));
      const [a, b] = syntheticPair(width, height, 3, -2);
      frames = [writeRaw(a, `${variant.dir}-a.rgb`), writeRaw(b, `${variant.dir}-b.rgb`)];
      exports = {};
      for (const arch of ARCHITECTURES) {
        exports[arch] = path.join(out, `${arch}.pt`);
        const made = spawnSync(variant.python, ['-m', 'flowlib.export', '--arch', arch, '--out', exports[arch], '--seed', '7'],
          { encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } });
        assert.equal(made.status, 0, made.stderr);
      }
      const run = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'test', 'BuildProbe.js'),
        JSON.stringify({ exports, frames, size: [width, height], out, devices: ['cpu', 'cuda'], threads: THREADS })],
      { encoding: 'utf8', env: { ...process.env, OPTICAL_FLOW_BINDING: binding }, maxBuffer: 1 << 24 });
      assert.equal(run.status, 0, run.stderr);
      probe = JSON.parse(run.stdout.trim().split('\n').pop()!);
    });

    it('loads, and reports the LibTorch it was built against', () => {
      const caps = probe.capabilities;
      console.log(`      ${variant.dir}: LibTorch ${caps.torchVersion} (headers ${caps.torchHeadersVersion}) from ${caps.torchLibrary}; ` +
        `CUDA build ${caps.cudaBuild}, CUDA available ${caps.cuda}`);
      assert.equal(caps.torchVersion, torchOf(variant.python).version);
      assert.equal(caps.torchHeadersVersion, caps.torchVersion);
      assert.equal(path.dirname(fs.realpathSync(caps.torchLibrary)), fs.realpathSync(variant.libraryDir(variant.python)));
      assert.equal(caps.cudaBuild, variant.cudaBuild);
    });

    it('refuses device \'cuda\' with ERR_DEVICE where no CUDA device is visible', function () {
      if (probe.capabilities.cuda) this.skip();
      for (const arch of ARCHITECTURES) {
        assert.equal(probe.results[arch].cuda.code, 'ERR_DEVICE', JSON.stringify(probe.results[arch].cuda));
        assert.match(probe.results[arch].cuda.message!, /device 'cuda' was requested but CUDA is not available/);
      }
    });

    it('gives PyTorch\'s flow on the CPU for all four architectures', () => {
      for (const arch of ARCHITECTURES) {
        const result = probe.results[arch].cpu;
        assert.ok(result.file, `${arch}: ${result.code} ${result.message}`);
        const bytes = fs.readFileSync(result.file);
        const node = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
        const refOut = `${result.file}.reference`;
        oracle(['flow', '--model', exports[arch], '--frames', ...frames, '--size', String(width), String(height),
          '--impl', 'eager', '--threads', String(THREADS), '--out', refOut], variant.python);
        const ref = fs.readFileSync(refOut);
        const reference = new Float32Array(ref.buffer, ref.byteOffset, ref.byteLength / 4);
        const diff = maxAbsDiff(node, reference);
        console.log(`      ${arch}: max |flow| ${maxAbs(reference).toFixed(2)} px, max |addon - eager| ${diff.toExponential(2)} px`);
        assert.ok(maxAbs(reference) > 0.1, 'the reference flow is trivially zero');
        assertWithinFlowTolerance(diff, reference, arch);
      }
    });
  });
}

// The check a GPU machine will run (gpu-check/), tried here on the CUDA build without a GPU: its program answers
// what it can, and its kit fits the 64 MiB a lent machine takes.
describe('the GPU check (gpu-check/), without a GPU', function () {
  this.timeout(300_000);
  const binding = path.join(ROOT, 'build-cuda', 'Release', 'optical_flow.node');
  const python = VARIANTS[0].python;

  before(function () {
    if (!fs.existsSync(binding) || !fs.existsSync(python)) {
      console.log(`      skipped: ${binding} is not built (\`npm run setup -- --cuda-build\` builds it; CI does)`);
      this.skip();
    }
  });

  it('runs against the CUDA build and says that no GPU is visible', () => {
    const dir = fs.mkdtempSync(path.join(tmpDir(), 'gpu-check-'));
    const exports: Record<string, string> = {};
    for (const arch of ARCHITECTURES) {
      exports[arch] = path.join(dir, `${arch}.pt`);
      const made = spawnSync(python, ['-m', 'flowlib.export', '--arch', arch, '--out', exports[arch], '--seed', '7'],
        { encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } });
      assert.equal(made.status, 0, made.stderr);
    }
    fs.writeFileSync(path.join(dir, 'exports.json'), JSON.stringify(exports));
    const report = path.join(dir, 'report.json');
    const args = [path.join(ROOT, 'dist', 'gpu-check', 'check.js'), '--exports', path.join(dir, 'exports.json'), '--out', report];
    const env = { ...process.env, OPTICAL_FLOW_BINDING: binding };
    const strict = spawnSync(process.execPath, args, { encoding: 'utf8', env });
    assert.equal(strict.status, 1, 'without a GPU the check fails unless told to allow it');
    assert.match(strict.stdout, /FAIL a CUDA device is visible/);
    const allowed = spawnSync(process.execPath, [...args, '--allow-no-gpu'], { encoding: 'utf8', env });
    assert.equal(allowed.status, 0, allowed.stdout + allowed.stderr);
    const checks = (JSON.parse(fs.readFileSync(report, 'utf8')) as { checks: { name: string; passed: boolean }[] }).checks;
    assert.deepEqual(checks.map((c) => c.passed), [true, true], JSON.stringify(checks));
  });

  it('packs a kit of at most 64 MiB', () => {
    const kit = path.join(tmpDir(), 'gpu-check-kit.tar.xz');
    const packed = spawnSync(path.join(ROOT, 'gpu-check', 'pack'), [kit], { encoding: 'utf8' });
    assert.equal(packed.status, 0, packed.stderr);
    console.log(`      ${packed.stdout.trim()}`);
    assert.ok(fs.statSync(kit).size <= 64 * 2 ** 20);
    const listing = spawnSync('tar', ['tJf', kit], { encoding: 'utf8', maxBuffer: 1 << 26 }).stdout;
    for (const needed of ['gpu-check/run', 'gpu-check/node/bin/node', 'dist/gpu-check/check.js', 'node_modules/node-addon-api/napi.h',
      'models/raft-small.pt', 'python/flowlib/export.py']) {
      assert.ok(listing.includes(`torch-optical-flow/${needed}`), `the kit lacks ${needed}`);
    }
  });
});
