// A flow field as a response body: Middlebury .flo, KITTI's 16-bit PNG, or the colour-wheel picture as PNG.
// PNGs are compressed by sharp on libuv's pool, not on the event loop.
import sharp from 'sharp';
import { encodeFlo, flowToColor, type FlowField } from 'torch-optical-flow';
import { kittiFlowSamples } from 'torch-optical-flow/internal';

export type FlowFormat = 'flo' | 'kitti' | 'color';

export const FLOW_FORMATS: Readonly<Record<FlowFormat, { contentType: string; extension: string }>> = {
  flo: { contentType: 'application/x-flo', extension: 'flo' },
  kitti: { contentType: 'image/png', extension: 'png' },
  color: { contentType: 'image/png', extension: 'png' },
};

/** Media types a client may accept, and the format each one gets. */
export const ACCEPTED_TYPES: readonly [string, FlowFormat][] = [
  ['application/x-flo', 'flo'],
  ['application/octet-stream', 'flo'],
  ['image/png', 'color'],
];

export async function encodeFlow(flow: FlowField, format: FlowFormat): Promise<Buffer> {
  if (format === 'flo') return encodeFlo(flow);
  if (format === 'kitti') {
    const samples = kittiFlowSamples(flow);
    return sharp(samples, { raw: { width: flow.width, height: flow.height, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
  }
  const picture = flowToColor(flow);
  return sharp(picture.data, { raw: { width: picture.width, height: picture.height, channels: 3 } }).png().toBuffer();
}
