#!/usr/bin/env node
// Brings up whatever is missing, in order, and does nothing when all is in place:
// Debian packages (installed when run as root; otherwise the command is printed), the project's Python environment
// (PyTorch 2.x, in .venv), npm dependencies, the native addon (built against that environment's LibTorch), the
// TypeScript build and the model exports. Each step is skipped when a hash of its inputs is unchanged.
// `--cuda-build` and `--debian-build` (CI passes both) also build the addon's other variants, each in its own folder:
// against the CUDA LibTorch 2.14.1 (build-cuda/, from .venv-cuda) and against Debian's LibTorch 1.13 (build-debian/).
// `--training` adds what `npm run train` needs beyond the tests.
// Debian's paths live here, not in package.json: the package itself builds against whatever the machine has.
// Plain JavaScript with no dependencies: it runs before `npm install` has.
'use strict';

const { execFileSync, spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const STAMPS = path.join(ROOT, '.setup');
// Debian's Python makes the environments (python3-venv); it also runs the torchvision oracle (torch 1.13).
const SYSTEM_PYTHON = '/usr/bin/python3';
const APT_PACKAGES = [
  'libtorch-dev', 'python3-torch', 'python3-torchvision', 'libopenblas0-pthread', 'cmake', 'g++', 'ninja-build',
  'libopencv-dev', 'python3-opencv', 'zlib1g-dev', 'python3-venv',
  // The linters `npm test` runs besides ESLint.
  'clang-format', 'flake8',
  // The video job queue's store; the tests start their own instance on a free port.
  'redis-server',
];
// `--training` (npm run train): photographs the generators use as textures (python/flowlib/textures.py lists them;
// a test checks that the two lists agree).
const TRAINING_PACKAGES = ['mate-backgrounds', 'opencv-doc', 'plasma-workspace-wallpapers', 'python3-skimage'];
// @u4/opencv4nodejs builds against Debian's OpenCV instead of downloading and compiling its own.
const OPENCV_ENV = {
  OPENCV4NODEJS_DISABLE_AUTOBUILD: '1',
  OPENCV_INCLUDE_DIR: '/usr/include/opencv4',
  OPENCV_LIB_DIR: '/usr/lib/x86_64-linux-gnu',
  OPENCV_BIN_DIR: '/usr/bin',
  npm_config_nodedir: process.env.npm_config_nodedir || '/usr',
  JOBS: 'max',
};
// The Python environments: the project's own (scripts/python runs it), and the CUDA one of --cuda-build. Debian's
// OpenCV module (python3-opencv) is linked into both.
const ENVIRONMENTS = {
  project: { dir: '.venv', requirements: 'python/requirements.txt', pipOptions: [] },
  cuda: { dir: '.venv-cuda', requirements: 'python/requirements-cuda.txt', pipOptions: ['--no-deps'] },
};
const DEBIAN_OPENCV = '/usr/lib/python3/dist-packages/cv2.cpython-311-x86_64-linux-gnu.so';
const DEBIAN_TORCH_DIR = '/usr/lib/x86_64-linux-gnu/cmake/Torch';
// Which architectures are exported into models/ by name comes from the registry the Python package writes.
const REGISTRY = path.join(ROOT, 'models', 'architectures.json');
// The trained export is versioned (models/README.md says how it was made) and never regenerated here.
const TRAINED = new Set(['raft-small']);
const quiet = process.argv.includes('--quiet');
const training = process.argv.includes('--training');
const cudaBuild = process.argv.includes('--cuda-build');
const debianBuild = process.argv.includes('--debian-build');

function log(message) {
  if (!quiet) process.stderr.write(`setup: ${message}\n`);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], ...options });
  if (result.status !== 0) {
    const why = result.error ? result.error.message : `exit code ${result.status}`;
    throw new Error(`${command} ${args.join(' ')} failed (${why})`);
  }
}

function filesUnder(dir, filter) {
  const out = [];
  const abs = path.join(ROOT, dir);
  if (!fs.existsSync(abs)) return out;
  for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(rel, filter));
    else if (filter(entry.name)) out.push(rel);
  }
  return out.sort();
}

function hashOf(files, extra = '') {
  const hash = crypto.createHash('sha256').update(extra);
  for (const file of files) {
    const abs = path.join(ROOT, file);
    hash.update(file).update(fs.existsSync(abs) ? fs.readFileSync(abs) : 'missing');
  }
  return hash.digest('hex');
}

function step(name, inputs, outputs, action) {
  const stamp = path.join(STAMPS, name);
  const current = fs.existsSync(stamp) ? fs.readFileSync(stamp, 'utf8') : '';
  if (current === inputs && outputs.every((o) => fs.existsSync(path.join(ROOT, o)))) return;
  const started = Date.now();
  log(`${name}...`);
  action();
  fs.mkdirSync(STAMPS, { recursive: true });
  fs.writeFileSync(stamp, inputs);
  log(`${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function missingPackages() {
  return [...APT_PACKAGES, ...(training ? TRAINING_PACKAGES : [])].filter((pkg) => {
    const result = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
    return result.status !== 0 || !result.stdout.includes('install ok installed');
  });
}

function ensurePackages() {
  const missing = missingPackages();
  if (missing.length === 0) return;
  const command = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(`missing Debian packages: ${missing.join(', ')}. Install them with:\n  sudo sh -c '${command}'`);
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', ...missing], { env });
}

function python(environment) {
  return path.join(ROOT, ENVIRONMENTS[environment].dir, 'bin', 'python');
}

// A virtual environment with the pinned requirements, and Debian's OpenCV module beside them.
function ensureEnvironment(name) {
  const { dir, requirements, pipOptions } = ENVIRONMENTS[name];
  const inputs = hashOf([requirements], fs.realpathSync(SYSTEM_PYTHON));
  step(`python-${name}`, inputs, [`${dir}/bin/python`], () => {
    if (!fs.existsSync(path.join(ROOT, dir, 'bin', 'python'))) run(SYSTEM_PYTHON, ['-m', 'venv', dir]);
    // --retries 0: where the default index is out of reach, pip moves on to the configured ones at once.
    run(python(name), ['-m', 'pip', 'install', '-qq', '--retries', '0', '--disable-pip-version-check',
      ...pipOptions, '-r', requirements]);
    const packages = execFileSync(python(name), ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
      { encoding: 'utf8' }).trim();
    const link = path.join(packages, path.basename(DEBIAN_OPENCV));
    fs.rmSync(link, { force: true });
    fs.symlinkSync(DEBIAN_OPENCV, link);
  });
  return python(name);
}

// The prefix of the LibTorch inside an environment's PyTorch (a full LibTorch: headers, libraries, CMake config).
function libtorchOf(pythonPath) {
  return execFileSync(pythonPath, ['-c', 'import os, torch; print(os.path.dirname(torch.__file__))'],
    { encoding: 'utf8' }).trim();
}

// The addon built against one LibTorch (its CMake config folder) into `out`, rebuilt when the sources change; a
// folder last configured for another LibTorch is configured anew (cmake-js compile only reconfigures an empty one).
function buildAddon(name, out, torchDir) {
  const inputs = hashOf(['CMakeLists.txt', ...filesUnder('cmake', () => true), ...filesUnder('binding', () => true)],
    `${process.version}|${torchDir}`);
  step(name, inputs, [`${out}/Release/optical_flow.node`], () => {
    const record = path.join(ROOT, out, 'libtorch');
    const same = fs.existsSync(record) && fs.readFileSync(record, 'utf8') === torchDir;
    run(process.execPath, [path.join('node_modules', 'cmake-js', 'bin', 'cmake-js'), same ? 'compile' : 'rebuild',
      '--out', out, `--CDTorch_DIR=${torchDir}`]);
    fs.writeFileSync(record, torchDir);
  });
}

function main() {
  ensurePackages();
  const projectPython = ensureEnvironment('project');
  // LIBTORCH=<prefix> builds against another LibTorch (a CUDA LibTorch, a user's own) instead of the environment's.
  const libtorch = process.env.LIBTORCH || libtorchOf(projectPython);
  const torchDir = path.join(libtorch, 'share', 'cmake', 'Torch');

  // Only what npm installs from: editing scripts or metadata in package.json does not reinstall.
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const installed = JSON.stringify(['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']
    .map((key) => manifest[key] || null));
  const npmInputs = hashOf(['package-lock.json'], `${process.version}|${installed}`);
  step('npm', npmInputs, ['node_modules/cmake-js', 'node_modules/typescript', 'node_modules/mocha', 'node_modules/eslint',
    'node_modules/@u4/opencv4nodejs/build/Release/opencv4nodejs.node'], () => {
    const lock = fs.existsSync(path.join(ROOT, 'package-lock.json'));
    log('npm dependencies (the first build of @u4/opencv4nodejs takes about 4 minutes)');
    // npm also runs this package's own install script (cmake-js), which must find the same LibTorch.
    run('npm', [lock ? 'ci' : 'install', '--no-audit', '--no-fund'],
      { env: { ...process.env, ...OPENCV_ENV, LIBTORCH: libtorch } });
  });

  buildAddon('native', 'build', torchDir);
  if (cudaBuild) buildAddon('native-cuda', 'build-cuda', path.join(libtorchOf(ensureEnvironment('cuda')), 'share', 'cmake', 'Torch'));
  if (debianBuild) buildAddon('native-debian', 'build-debian', DEBIAN_TORCH_DIR);

  // The library, the server package and the tests, benchmarks and checks: three TypeScript projects, built in order.
  const tsInputs = hashOf(['tsconfig.json', 'tsconfig.base.json', 'server/tsconfig.json', 'server/package.json',
    ...['lib', 'test', 'bench', 'gpu-check', 'docs', 'server/lib', 'server/test', 'server/bench']
      .flatMap((dir) => filesUnder(dir, (f) => f.endsWith('.ts') || f === 'tsconfig.json'))]);
  step('typescript', tsInputs, ['dist/lib/index.js', 'server/dist/index.js'], () => {
    for (const dir of ['dist', 'server/dist']) fs.rmSync(path.join(ROOT, dir), { recursive: true, force: true });
    run(process.execPath, [path.join('node_modules', 'typescript', 'bin', 'tsc'), '-b', 'tsconfig.json']);
  });

  const modelInputs = hashOf([...filesUnder(path.join('python', 'flowlib'), (f) => f.endsWith('.py')), 'models/architectures.json'],
    execFileSync(projectPython, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }));
  // Every architecture gets an export under its own name: the trained one with its weights, the others without
  // (a few hundred kilobytes each), taking published weights at load.
  const architectures = Object.keys(JSON.parse(fs.readFileSync(REGISTRY, 'utf8')));
  step('models', modelInputs, architectures.map((arch) => `models/${arch}.pt`), () => {
    for (const arch of architectures) {
      const file = path.join('models', `${arch}.pt`);
      if (TRAINED.has(arch) && fs.existsSync(path.join(ROOT, file))) continue;
      if (TRAINED.has(arch)) log(`${file} (trained, versioned) is missing: exporting random weights in its place`);
      const args = ['--arch', arch, '--out', file, '--name', arch];
      if (!TRAINED.has(arch)) args.push('--weightless');
      run(path.join(ROOT, 'scripts', 'export'), args, { stdio: ['ignore', 'ignore', 'inherit'] });
    }
  });
}

try {
  main();
} catch (error) {
  process.stderr.write(`setup failed: ${error.message}\n`);
  process.exit(1);
}
