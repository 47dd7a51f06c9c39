// A short clip with exactly known motion, made on the spot so the demo needs no download: a textured
// background panning slowly and three textured discs gliding over it, each with its own velocity.
import { FlowField } from '../lib';

export interface DemoClip {
  width: number;
  height: number;
  /** RGB frames. */
  frames: Uint8Array[];
  /** truth[k] is the flow from frame k to frame k + 1. */
  truth: FlowField[];
}

interface Disc { x: number; y: number; r: number; vx: number; vy: number; hue: number }

function texture(u: number, v: number, seed: number): [number, number, number] {
  const a = Math.sin(u * 0.09 + seed) * Math.cos(v * 0.07 - seed) + 0.5 * Math.sin((u + 2 * v) * 0.23 + seed * 3);
  const b = Math.sin(u * 0.31 + Math.sin(v * 0.05) * 3) * 0.5 + Math.cos(v * 0.27 + seed) * 0.5;
  const c = Math.sin((u - v) * 0.13 + seed * 2);
  return [128 + 80 * a + 30 * b, 128 + 70 * b - 30 * c, 128 + 60 * c + 40 * a];
}

export function makeDemoClip(width = 320, height = 240, count = 48): DemoClip {
  const pan = { vx: 1.5, vy: 0.5 };
  const discs: Disc[] = [
    { x: 80, y: 80, r: 38, vx: 3, vy: 1, hue: 1 },
    { x: 230, y: 150, r: 46, vx: -2.5, vy: -1.5, hue: 2 },
    { x: 160, y: 200, r: 30, vx: 1, vy: -3, hue: 3 },
  ];
  const frames: Uint8Array[] = [];
  const truth: FlowField[] = [];
  for (let k = 0; k < count; k++) {
    const frame = new Uint8Array(width * height * 3);
    const flow = new Float32Array(width * height * 2);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let colour = texture(x + pan.vx * k, y + pan.vy * k, 0.7);
        let motion: [number, number] = [-pan.vx, -pan.vy];
        for (const d of discs) {
          const cx = d.x + d.vx * k, cy = d.y + d.vy * k;
          const dx = x - cx, dy = y - cy;
          const distance = Math.hypot(dx, dy);
          if (distance <= d.r) {
            const shade = 0.85 + 0.15 * Math.cos((distance / d.r) * Math.PI / 2);
            colour = texture(dx * 1.7 + 500 * d.hue, dy * 1.7, d.hue).map((c) => c * shade) as [number, number, number];
            motion = [d.vx, d.vy];
          }
        }
        const i = y * width + x;
        frame.set(colour.map((c) => Math.max(0, Math.min(255, Math.round(c)))), 3 * i);
        flow[2 * i] = motion[0];
        flow[2 * i + 1] = motion[1];
      }
    }
    frames.push(frame);
    if (k < count - 1) truth.push(new FlowField(width, height, flow));
  }
  return { width, height, frames, truth };
}
