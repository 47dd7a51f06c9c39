// A short clip with exactly known motion, made on the spot so the demo needs no download: a textured
// background panning slowly and three textured discs gliding over it, each with its own velocity.
import { FlowField } from '..';

export interface DemoClip {
  width: number;
  height: number;
  /** RGB frames. */
  frames: Uint8Array[];
  /** truth[k] is the flow from frame k to frame k + 1. */
  truth: FlowField[];
}

interface Disc { cx: number; cy: number; ax: number; ay: number; phase: number; r: number; hue: [number, number, number] }

/** A few sinusoids in random directions: smooth, non-repeating texture without any download. */
function waves(seed: number, count: number, minPeriod: number, maxPeriod: number) {
  let state = seed;
  const random = () => { state = (state * 1103515245 + 12345) >>> 0; return state / 2 ** 32; };
  return Array.from({ length: count }, () => {
    const angle = random() * Math.PI * 2, period = minPeriod + random() * (maxPeriod - minPeriod);
    return { kx: Math.cos(angle) * 2 * Math.PI / period, ky: Math.sin(angle) * 2 * Math.PI / period, phase: random() * 6.3, weight: 0.5 + random() };
  });
}

const BACKGROUND = [waves(11, 7, 40, 160), waves(23, 7, 12, 60), waves(37, 7, 6, 25)];
const DISC = waves(51, 9, 5, 22);

function field(list: ReturnType<typeof waves>, u: number, v: number): number {
  let sum = 0, norm = 0;
  for (const w of list) { sum += w.weight * Math.sin(w.kx * u + w.ky * v + w.phase); norm += w.weight; }
  return sum / norm;
}

function background(u: number, v: number): [number, number, number] {
  const [a, b, c] = BACKGROUND.map((list) => field(list, u, v));
  return [150 + 60 * a + 25 * c, 140 + 45 * b + 25 * c, 120 + 50 * (a - b) / 2 + 25 * c];
}

function discColour(u: number, v: number, hue: [number, number, number]): [number, number, number] {
  const t = field(DISC, u, v);
  const stripes = Math.sin((u + v) * 0.35) > 0 ? 1 : 0.55;
  return hue.map((h) => h * (0.55 + 0.45 * t) * stripes + 20) as [number, number, number];
}

/** Centre of a disc in frame k: each glides along its own ellipse, so directions vary through the clip. */
function centre(d: Disc, k: number, count: number): [number, number] {
  const t = (2 * Math.PI * k) / count + d.phase;
  return [d.cx + d.ax * Math.sin(t), d.cy + d.ay * Math.cos(t)];
}

export function makeDemoClip(width = 320, height = 240, count = 48): DemoClip {
  const pan = { vx: 1.5, vy: 0.5 };
  const discs: Disc[] = [
    { cx: 80, cy: 75, ax: 45, ay: 25, phase: 0, r: 36, hue: [255, 80, 60] },
    { cx: 235, cy: 85, ax: -35, ay: 40, phase: 1.5, r: 42, hue: [60, 120, 255] },
    { cx: 160, cy: 180, ax: 60, ay: -22, phase: 3.5, r: 32, hue: [90, 230, 90] },
  ].map((d) => ({ ...d, cx: (d.cx * width) / 320, cy: (d.cy * height) / 240 })) as Disc[];
  const frames: Uint8Array[] = [];
  const truth: FlowField[] = [];
  for (let k = 0; k < count; k++) {
    const frame = new Uint8Array(width * height * 3);
    const flow = new Float32Array(width * height * 2);
    const now = discs.map((d) => centre(d, k, count));
    const next = discs.map((d) => centre(d, k + 1, count));
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let colour = background(x + pan.vx * k, y + pan.vy * k);
        let motion: [number, number] = [-pan.vx, -pan.vy];
        discs.forEach((d, n) => {
          const dx = x - now[n][0], dy = y - now[n][1];
          const distance = Math.hypot(dx, dy);
          if (distance <= d.r) {
            const shade = 0.8 + 0.2 * Math.cos((distance / d.r) * Math.PI / 2);
            colour = discColour(dx + 300 * n, dy, d.hue).map((c) => c * shade) as [number, number, number];
            motion = [next[n][0] - now[n][0], next[n][1] - now[n][1]];
          }
        });
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
