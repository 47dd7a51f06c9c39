// Image pairs with ground truth in the folder layouts of FlyingChairs, mmflow's fixtures, MPI-Sintel's training set
// and KITTI 2012/2015, and their truth as a flow with the mask of the pixels that count.
import * as fs from 'fs';
import * as path from 'path';
import { FlowField, readFlo, readKittiFlow } from '..';
import { opencv } from '../opencv';

export interface GroundTruthPair {
  name: string;
  a: string;
  b: string;
  /** A .flo file, or a KITTI 16-bit flow PNG (with its own valid mask). */
  flow: string;
  /** An image whose white pixels are left out (Sintel's invalid masks). */
  invalid?: string;
}

function isFolder(file: string): boolean {
  return fs.existsSync(file) && fs.statSync(file).isDirectory();
}

/** NAME-img0/-img1 + NAME-gt.flo (FlyingChairs), NAME_img1/_img2 + NAME_flow.flo, frame_N + frame_N+1 + flow_N.flo. */
function flatPairs(folder: string): GroundTruthPair[] {
  const files = new Set(fs.readdirSync(folder));
  const pairs: GroundTruthPair[] = [];
  for (const file of [...files].sort()) {
    let m = /^(.*)-img0\.(ppm|png|jpg)$/.exec(file);
    if (m && files.has(`${m[1]}-img1.${m[2]}`) && files.has(`${m[1]}-gt.flo`)) {
      pairs.push({ name: m[1], a: file, b: `${m[1]}-img1.${m[2]}`, flow: `${m[1]}-gt.flo` });
      continue;
    }
    m = /^(.*)_img1\.(ppm|png|jpg)$/.exec(file);
    if (m && files.has(`${m[1]}_img2.${m[2]}`) && files.has(`${m[1]}_flow.flo`)) {
      pairs.push({ name: m[1], a: file, b: `${m[1]}_img2.${m[2]}`, flow: `${m[1]}_flow.flo` });
      continue;
    }
    m = /^frame_(\d+)\.(png|jpg)$/.exec(file);
    if (m) {
      const next = `frame_${String(Number(m[1]) + 1).padStart(m[1].length, '0')}.${m[2]}`;
      if (files.has(next) && files.has(`flow_${m[1]}.flo`)) pairs.push({ name: `frame_${m[1]}`, a: file, b: next, flow: `flow_${m[1]}.flo` });
    }
  }
  return pairs.map((p) => ({ name: p.name, a: path.join(folder, p.a), b: path.join(folder, p.b), flow: path.join(folder, p.flow) }));
}

/**
 * KITTI: image_2/ (colour) or image_0/ (grey) NNNNNN_10.png + NNNNNN_11.png, truth in flow_occ/ (all pixels) or else
 * flow_noc/ (non-occluded) NNNNNN_10.png.
 */
function kittiPairs(folder: string): GroundTruthPair[] {
  const images = ['image_2', 'image_0'].map((d) => path.join(folder, d)).find(isFolder);
  const flows = ['flow_occ', 'flow_noc'].map((d) => path.join(folder, d)).find(isFolder);
  if (!images || !flows) return [];
  return fs.readdirSync(flows).filter((f) => /^\d+_10\.png$/.test(f)).sort()
    .map((f) => ({ name: f.slice(0, -7), a: path.join(images, f), b: path.join(images, f.replace('_10.png', '_11.png')), flow: path.join(flows, f) }))
    .filter((p) => fs.existsSync(p.a) && fs.existsSync(p.b));
}

/** MPI-Sintel training: flow/SCENE/frame_N.flo with clean/ and final/ SCENE/frame_N.png + frame_N+1.png, invalid/ masks. */
function sintelPairs(folder: string): GroundTruthPair[] {
  const flowRoot = path.join(folder, 'flow');
  if (!isFolder(flowRoot)) return [];
  const pairs: GroundTruthPair[] = [];
  for (const render of ['clean', 'final']) {
    for (const scene of fs.readdirSync(flowRoot).sort()) {
      if (!isFolder(path.join(flowRoot, scene))) continue;
      for (const file of fs.readdirSync(path.join(flowRoot, scene)).sort()) {
        const m = /^frame_(\d+)\.flo$/.exec(file);
        if (!m) continue;
        const frame = `frame_${m[1]}`;
        const a = path.join(folder, render, scene, `${frame}.png`);
        const b = path.join(folder, render, scene, `frame_${String(Number(m[1]) + 1).padStart(m[1].length, '0')}.png`);
        if (!fs.existsSync(a) || !fs.existsSync(b)) continue;
        const invalid = path.join(folder, 'invalid', scene, `${frame}.png`);
        pairs.push({ name: `${render}/${scene}/${frame}`, a, b, flow: path.join(flowRoot, scene, file), ...(fs.existsSync(invalid) ? { invalid } : {}) });
      }
    }
  }
  return pairs;
}

/** The pairs with ground truth in a folder, in whichever of the known layouts it holds. */
export function findPairs(folder: string): GroundTruthPair[] {
  return [...flatPairs(folder), ...kittiPairs(folder), ...sintelPairs(folder)];
}

/** A pair's true flow and the pixels to count (1) or leave out (0). */
export function readTruth(pair: GroundTruthPair): { flow: FlowField; valid?: Uint8Array } {
  if (pair.flow.endsWith('.png')) return readKittiFlow(pair.flow);
  const flow = readFlo(pair.flow);
  if (!pair.invalid) return { flow };
  const mask = opencv().imread(pair.invalid, 0 /* IMREAD_GRAYSCALE */);
  if (mask.empty || mask.cols !== flow.width || mask.rows !== flow.height) {
    throw new Error(`mask '${pair.invalid}' does not match its ${flow.width}x${flow.height} flow`);
  }
  const grey = mask.getData();
  const valid = new Uint8Array(flow.width * flow.height);
  for (let i = 0; i < valid.length; i++) valid[i] = grey[i] > 127 ? 0 : 1;
  return { flow, valid };
}
