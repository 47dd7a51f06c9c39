import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ImageLike } from '../lib';

export const ROOT = path.resolve(__dirname, '..', '..');
export const SHARED_DATA = path.resolve(ROOT, '..', 'shared', 'data');
/** The project's Python (scripts/python: PyTorch 2.x, the LibTorch the addon is built against). */
export const PYTHON = path.join(ROOT, 'scripts', 'python');
/**
 * Debian's Python, with torch 1.13 and torchvision 0.14: the independent oracle for what needs torchvision (its RAFT,
 * its state-dict layout, its flow colours), and the exporter for Debian's LibTorch.
 */
export const TORCHVISION_PYTHON = '/usr/bin/python3';
/** Threads for both sides of a parity check: equal counts make LibTorch and PyTorch agree bit for bit. */
export const THREADS = 2;

export function hasSharedData(): boolean {
  return fs.existsSync(SHARED_DATA);
}

let scratch: string | undefined;
/** A per-run scratch folder, removed when the process exits. */
export function tmpDir(): string {
  if (!scratch) {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'optical-flow-test-'));
    const dir = scratch;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return scratch;
}

/** Runs a module of the project's Python package (python/flowlib), e.g. 'export'. */
export function flowlib(module: string, args: string[]): string {
  return run([PYTHON, '-m', `flowlib.${module}`, ...args], `flowlib.${module}`);
}

/** Runs the PyTorch oracle the parity tests compare against (test/oracle/reference.py), in `python`. */
export function oracle(args: string[], python = PYTHON): string {
  return run([python, path.join(ROOT, 'test', 'oracle', 'reference.py'), ...args], 'reference.py');
}

/**
 * Runs test/oracle/published.py (look-alikes of the published weight files, and PyTorch's flow from them) with
 * torchvision's Python: its files and models are torchvision's own.
 */
export function published(args: string[]): string {
  return run([TORCHVISION_PYTHON, path.join(ROOT, 'test', 'oracle', 'published.py'), ...args], 'published.py');
}

/** Runs a short Python program with the project's package importable; returns what it printed. */
export function pythonWithFlowlib(program: string): string {
  return run([PYTHON, '-c', program], 'python -c');
}

function run([command, ...args]: string[], name: string): string {
  // scripts/python sets PYTHONPATH itself; Debian's Python gets the same.
  const result = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } });
  if (result.status !== 0) throw new Error(`${name} ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

const exported = new Map<string, string>();
/**
 * A TorchScript export with random (seeded) or given weights, made once per run by the project's Python, or by
 * `python` (an export made by an older PyTorch loads in a newer LibTorch, not the other way round).
 */
export function exportModel(arch: string, options: { seed?: number; weights?: string; tag?: string; python?: string } = {}): string {
  const python = options.python ?? PYTHON;
  const key = `${arch}-${options.seed ?? 0}-${options.tag ?? ''}-${options.weights ?? ''}-${python}`;
  const cached = exported.get(key);
  if (cached) return cached;
  const made = python === PYTHON ? '' : `-${path.basename(path.dirname(path.dirname(python)))}`;
  const out = path.join(tmpDir(), `${arch}-seed${options.seed ?? 0}${options.tag ? `-${options.tag}` : ''}${made}.pt`);
  const args = ['--arch', arch, '--out', out, '--seed', String(options.seed ?? 0)];
  if (options.weights) args.push('--weights', options.weights);
  run([python, '-m', 'flowlib.export', ...args], 'flowlib.export');
  exported.set(key, out);
  return out;
}

/** A checkpoint file in one of the published layouts (torchvision's is made by torchvision itself). */
export function checkpoint(arch: string, name: string, args: string[]): string {
  const out = path.join(tmpDir(), name);
  oracle(['checkpoint', '--arch', arch, '--out', out, ...args], args.includes('torchvision') ? TORCHVISION_PYTHON : PYTHON);
  return out;
}

/** A smooth, textured RGB image and the same scene moved by (dx, dy) pixels, with some local motion. */
export function syntheticPair(width: number, height: number, dx = 3, dy = 2): [ImageLike, ImageLike] {
  const render = (ox: number, oy: number) => {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const u = x - ox, v = y - oy;
        const i = 3 * (y * width + x);
        data[i] = 128 + 100 * Math.sin(u * 0.21 + Math.cos(v * 0.13) * 2);
        data[i + 1] = 128 + 100 * Math.sin(v * 0.17 + u * 0.05);
        data[i + 2] = 128 + 90 * Math.cos((u + v) * 0.11) * Math.sin(u * 0.07);
      }
    }
    return { data, width, height, channels: 3, format: 'rgb' as const };
  };
  return [render(0, 0), render(dx, dy)];
}

export function writeRaw(image: ImageLike, name: string): string {
  const file = path.join(tmpDir(), name);
  fs.writeFileSync(file, image.data as Uint8Array);
  return file;
}

/** Flow from PyTorch for the same frames, through the oracle (test/oracle/reference.py). */
export function referenceFlow(model: string, a: ImageLike, b: ImageLike,
  options: { impl?: 'eager' | 'export' | 'torchvision'; iterations?: number; seed?: number } = {}): Float32Array {
  const tag = `${path.basename(model)}-${a.width}x${a.height}-${Math.random().toString(36).slice(2)}`;
  const fa = writeRaw(a, `${tag}-a.rgb`);
  const fb = writeRaw(b, `${tag}-b.rgb`);
  const out = path.join(tmpDir(), `${tag}.flow`);
  oracle(['flow', '--model', model, '--frames', fa, fb, '--size', String(a.width), String(a.height),
    '--impl', options.impl ?? 'eager', '--threads', String(THREADS), '--iterations', String(options.iterations ?? 0),
    '--seed', String(options.seed ?? 0), '--out', out], options.impl === 'torchvision' ? TORCHVISION_PYTHON : PYTHON);
  const bytes = fs.readFileSync(out);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

export function maxAbs(a: Float32Array): number {
  let max = 0;
  for (const v of a) max = Math.max(max, Math.abs(v));
  return max;
}

/**
 * How far the addon's flow may lie from PyTorch's for the same export and pixels: 1e-4 px, or 5e-5 of the largest
 * flow when that is more (1e-3 px on a 20 px flow). Both run the same kernels and agree bit for bit on our machine, but
 * another CPU may sum in another order: CI once saw 1.84e-4 px on a 19 px random-init RAFT-S flow, 1e-5 of it, float32
 * rounding grown over 12 GRU iterations. A real defect (padding, normalisation, a weight not loaded) moves flow by tenths
 * of a pixel.
 */
function flowTolerance(reference: Float32Array): number {
  return Math.max(1e-4, 5e-5 * maxAbs(reference));
}

/** Asserts that a flow's max |difference| from its reference is within flowTolerance(reference). */
export function assertWithinFlowTolerance(diff: number, reference: Float32Array, label = ''): void {
  const tolerance = flowTolerance(reference);
  assert.ok(diff <= tolerance, `${label ? `${label}: ` : ''}max |difference| ${diff} exceeds ${tolerance}`);
}

/** Reads a binary PPM (P6), as the FlyingChairs samples are stored. */
export function readPpm(file: string): ImageLike {
  const bytes = fs.readFileSync(file);
  const header: string[] = [];
  let pos = 0;
  while (header.length < 4) {
    while (/\s/.test(String.fromCharCode(bytes[pos]))) pos++;
    if (bytes[pos] === 0x23) { while (bytes[pos] !== 0x0a) pos++; continue; }
    let token = '';
    while (!/\s/.test(String.fromCharCode(bytes[pos]))) token += String.fromCharCode(bytes[pos++]);
    header.push(token);
  }
  pos++;
  const [magic, w, h] = header;
  if (magic !== 'P6') throw new Error(`${file}: not a binary PPM`);
  const width = Number(w), height = Number(h);
  return { data: new Uint8Array(bytes.subarray(pos, pos + width * height * 3)), width, height, channels: 3, format: 'rgb' };
}

/** A multipart form: strings as fields, buffers as files named `filename` (default `<field>.png`). */
export function formData(parts: Record<string, Buffer | string>, filename?: string): FormData {
  const body = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (typeof value === 'string') body.append(name, value);
    else body.append(name, new Blob([new Uint8Array(value)]), filename ?? `${name}.png`);
  }
  return body;
}
