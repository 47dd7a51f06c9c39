// A local HTTP server standing in for the weight hosts, on 127.0.0.1 and a free port. Paths are /<mode>/<file>:
// files (plain), slow (the body over about a second), redirect/N (N redirects, then the file), truncate (half the
// body, then the connection closes), stall (headers and a few bytes, then nothing). Unknown files are 404.
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';

export class WeightsServer {
  /** Requests per "mode/file". */
  readonly requests = new Map<string, number>();
  private readonly files = new Map<string, string>();
  private readonly server: http.Server;
  private readonly sockets = new Set<import('net').Socket>();
  base = '';

  constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Serves `path`'s bytes as `name`. */
  serve(name: string, path: string): void {
    this.files.set(name, path);
  }

  count(mode: string, name: string): number {
    return this.requests.get(`${mode}/${name}`) ?? 0;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const parts = decodeURIComponent(new URL(req.url ?? '/', this.base).pathname).split('/').filter(Boolean);
    let mode = parts[0] ?? '';
    let name = parts[parts.length - 1] ?? '';
    if (mode === 'redirect') {
      const left = Number(parts[1]);
      res.writeHead(302, { location: left > 1 ? `/redirect/${left - 1}/${name}` : `/files/${name}` }).end();
      return;
    }
    if (parts.length !== 2) { mode = 'bad'; name = parts.join('/'); }
    this.requests.set(`${mode}/${name}`, this.count(mode, name) + 1);
    const file = this.files.get(name);
    if (!file || !['files', 'slow', 'truncate', 'stall'].includes(mode)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const data = fs.readFileSync(file);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(data.length) });
    if (mode === 'files') {
      res.end(data);
    } else if (mode === 'truncate') {
      res.write(data.subarray(0, data.length >> 1), () => res.socket?.destroy());
    } else if (mode === 'stall') {
      res.write(data.subarray(0, 1024));
    } else {
      const pieces = 10;
      let sent = 0;
      const step = () => {
        if (res.destroyed) return;
        const next = Math.min(data.length, sent + Math.ceil(data.length / pieces));
        res.write(data.subarray(sent, next));
        sent = next;
        if (sent >= data.length) res.end();
        else setTimeout(step, 100);
      };
      step();
    }
  }
}
