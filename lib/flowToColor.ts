// The Middlebury colour coding of flow (Baker et al.), with the colour wheel the RAFT authors and
// torchvision use: hue is the direction, saturation the magnitude relative to a normalising maximum.
import { FlowField } from './FlowField';

/** An 8-bit RGB picture. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
  format: 'rgb';
}

export interface ColorOptions {
  /**
   * Motion (in pixels) that gets full saturation. Default: this field's largest motion. Give one value for a
   * whole video so that colours mean the same in every frame.
   */
  maxMagnitude?: number;
}

// Numbers of hues between the primary and secondary colours: red-yellow, yellow-green, green-cyan,
// cyan-blue, blue-magenta, magenta-red.
const SEGMENTS: [number, number, number, number][] = [
  // [length, channel that ramps, ramp up (1) or down (-1), channel held at 255]
  [15, 1, 1, 0], [6, 0, -1, 1], [4, 2, 1, 1], [11, 1, -1, 2], [13, 0, 1, 2], [6, 2, -1, 0],
];

function makeWheel(): Float64Array[] {
  const wheel: Float64Array[] = [];
  for (const [length, ramp, direction, held] of SEGMENTS) {
    for (let i = 0; i < length; i++) {
      const colour = new Float64Array(3);
      colour[held] = 255;
      colour[ramp] = direction > 0 ? Math.floor((255 * i) / length) : 255 - Math.floor((255 * i) / length);
      wheel.push(colour);
    }
  }
  return wheel;
}

const WHEEL = makeWheel();

/** Colour of one flow vector already divided by the normalising magnitude; writes 3 bytes at `offset`. */
function colourOf(u: number, v: number, out: Uint8Array, offset: number): void {
  const n = WHEEL.length;
  const radius = Math.sqrt(u * u + v * v);
  const angle = Math.atan2(-v, -u) / Math.PI;
  const fk = ((angle + 1) / 2) * (n - 1);
  const k0 = Math.floor(fk);
  const k1 = k0 + 1 === n ? 0 : k0 + 1;
  const f = fk - k0;
  for (let c = 0; c < 3; c++) {
    let col = (1 - f) * (WHEEL[k0][c] / 255) + f * (WHEEL[k1][c] / 255);
    col = radius <= 1 ? 1 - radius * (1 - col) : col * 0.75;
    out[offset + c] = Math.floor(255 * col);
  }
}

/** The flow as a colour picture. */
export function flowToColor(flow: FlowField, options: ColorOptions = {}): RgbImage {
  const max = options.maxMagnitude ?? flow.maxMagnitude();
  if (!(max >= 0) || !Number.isFinite(max)) {
    throw new RangeError(`Expected a finite, non-negative number for maxMagnitude but received ${max}`);
  }
  const scale = 1 / (max + Number.EPSILON);
  const data = new Uint8Array(flow.width * flow.height * 3);
  for (let i = 0; i < flow.width * flow.height; i++) {
    const u = flow.data[2 * i], v = flow.data[2 * i + 1];
    if (!Number.isFinite(u) || !Number.isFinite(v) || Math.abs(u) > 1e9 || Math.abs(v) > 1e9) continue;  // unknown: black
    colourOf(u * scale, v * scale, data, 3 * i);
  }
  return { data, width: flow.width, height: flow.height, channels: 3, format: 'rgb' };
}

/** A round legend of the colour coding: the colour a motion in each direction gets, up to full saturation. */
export function colorWheelLegend(size = 64): RgbImage {
  const data = new Uint8Array(size * size * 3).fill(255);
  const centre = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = (x - centre) / centre, v = (y - centre) / centre;
      if (u * u + v * v <= 1) colourOf(u, v, data, 3 * (y * size + x));
    }
  }
  return { data, width: size, height: size, channels: 3, format: 'rgb' };
}

/** Pictures of equal height placed left to right, with a gap; `legend` is drawn into the last one's corner. */
export function sideBySide(images: RgbImage[], options: { gap?: number; legend?: RgbImage } = {}): RgbImage {
  if (images.length === 0) throw new RangeError('Expected at least one image for sideBySide but received none');
  const height = images[0].height;
  for (const image of images) {
    if (image.height !== height) throw new RangeError(`Expected images of height ${height} but received one of height ${image.height}`);
  }
  const gap = options.gap ?? 4;
  const width = images.reduce((w, image) => w + image.width, 0) + gap * (images.length - 1);
  const data = new Uint8Array(width * height * 3).fill(255);
  let left = 0;
  for (const image of images) {
    for (let y = 0; y < height; y++) {
      data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), (y * width + left) * 3);
    }
    left += image.width + gap;
  }
  const legend = options.legend;
  if (legend && legend.height + 8 <= height && legend.width + 8 <= images[images.length - 1].width) {
    const x0 = width - legend.width - 6, y0 = height - legend.height - 6;
    for (let y = 0; y < legend.height; y++) {
      data.set(legend.data.subarray(y * legend.width * 3, (y + 1) * legend.width * 3), ((y0 + y) * width + x0) * 3);
    }
  }
  return { data, width, height, channels: 3, format: 'rgb' };
}
