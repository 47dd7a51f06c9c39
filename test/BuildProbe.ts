// Run as a child process with OPTICAL_FLOW_BINDING set to one build of the addon (build-cuda/, build-debian/, or
// the GPU check's): prints what that build reports and what it does with the exports it is given, as one JSON line.
//   node BuildProbe.js '{"exports": {"raft-small": "a.pt"}, "frames": ["a.rgb", "b.rgb"], "size": [128, 96],
//                        "out": "dir", "devices": ["cpu", "cuda"], "threads": 2}'
// For each export and device: the flow in <out>/<name>-<device>.flow (raw float32) or the error's code and message.
import * as fs from 'fs';
import * as path from 'path';
import { capabilities, DeviceName, FlowError, FlowEstimator, Precision } from '../lib';

interface ProbeRequest {
  exports: Record<string, string>;
  frames: [string, string];
  size: [number, number];
  out: string;
  devices: DeviceName[];
  threads?: number;
  precision?: Precision;
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2]) as ProbeRequest;
  const [width, height] = request.size;
  const [a, b] = request.frames.map((file) => ({ data: new Uint8Array(fs.readFileSync(file)), width, height }));
  const results: Record<string, Record<string, { file?: string; seconds?: number; code?: string; message?: string }>> = {};
  for (const [name, file] of Object.entries(request.exports)) {
    results[name] = {};
    for (const device of request.devices) {
      try {
        const flow = await FlowEstimator.load({ model: file, device, threads: request.threads, precision: request.precision });
        try {
          const started = process.hrtime.bigint();
          const field = await flow.estimate(a, b);
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          const out = path.join(request.out, `${name}-${device.replace(':', '')}.flow`);
          fs.writeFileSync(out, field.data);
          results[name][device] = { file: out, seconds };
        } finally {
          await flow.dispose();
        }
      } catch (error) {
        const { code, message } = error as FlowError;
        results[name][device] = { code, message };
      }
    }
  }
  console.log(JSON.stringify({ capabilities: capabilities(), results }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
