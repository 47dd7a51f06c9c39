// One verified HTTP download into a file: streamed to a temporary file beside the target, hashed on the way, moved
// into place only when the size and checksum match. Proxies come from the environment through undici's
// EnvHttpProxyAgent (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), redirects are followed, and a stalled server times out.
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import { EnvHttpProxyAgent, fetch } from 'undici';
import { FlowError } from '../FlowError';

export interface DownloadProgress {
  /** The weights (or archive) being downloaded. */
  name: string;
  loaded: number;
  /** Bytes expected, when the server or the catalogue says. */
  total: number | undefined;
}

export interface DownloadOptions {
  /** What the progress reports and errors call the file. */
  name: string;
  /** The full SHA-256 the file must have. */
  sha256?: string;
  /** Leading hex digits of the SHA-256 the file must have. */
  sha256Prefix?: string;
  bytes?: number;
  /** The checksum and size were recorded on a first download, not published: say so in errors. */
  recorded?: boolean;
  /** Milliseconds without progress (connecting, waiting for headers, between chunks) before giving up. */
  timeout: number;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
}

export interface Downloaded {
  sha256: string;
  bytes: number;
}

const dispatchers = new Map<number, EnvHttpProxyAgent>();

// One agent per timeout, kept for the process: connections are reused and the proxy variables are read once.
function dispatcher(timeout: number): EnvHttpProxyAgent {
  let agent = dispatchers.get(timeout);
  if (!agent) {
    agent = new EnvHttpProxyAgent({ connectTimeout: timeout, headersTimeout: timeout, bodyTimeout: timeout });
    dispatchers.set(timeout, agent);
  }
  return agent;
}

function describeFailure(error: unknown): string {
  const err = error as { message?: string; cause?: { code?: string; message?: string } };
  const cause = err?.cause;
  if (cause?.code === 'UND_ERR_HEADERS_TIMEOUT' || cause?.code === 'UND_ERR_BODY_TIMEOUT' || cause?.code === 'UND_ERR_CONNECT_TIMEOUT') {
    return 'the server stopped responding (timed out)';
  }
  if (cause?.code === 'UND_ERR_SOCKET' || err?.message === 'terminated') return 'the connection closed before the whole file arrived';
  const detail = cause?.message ?? cause?.code ?? err?.message ?? String(error);
  return detail;
}

/** Downloads `url` to `target`; on any failure nothing is left under `target` or beside it. */
export async function download(url: string, target: string, options: DownloadOptions): Promise<Downloaded> {
  const expected = options.recorded ? 'one recorded on first use,' : 'published';
  const partial = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
  const hash = createHash('sha256');
  let loaded = 0;
  let out: fs.WriteStream | undefined;
  // A watchdog of our own besides undici's timeouts, so that nothing (a proxy that never answers, say) can hang.
  const watchdog = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const stalled = () => watchdog.signal.aborted && !options.signal?.aborted;
  const progress = () => {
    clearTimeout(timer);
    timer = setTimeout(() => watchdog.abort(), options.timeout);
  };
  const signal = options.signal ? AbortSignal.any([options.signal, watchdog.signal]) : watchdog.signal;
  const failure = (error: unknown, received = '') => {
    if (stalled()) return new FlowError('ERR_DOWNLOAD', `could not download ${options.name} from ${url}: the server stopped responding (timed out)${received}`);
    if (options.signal?.aborted) return new FlowError('ERR_ABORTED', `the download of ${options.name} was aborted`);
    return new FlowError('ERR_DOWNLOAD', `could not download ${options.name} from ${url}: ${describeFailure(error)}${received}`);
  };
  try {
    if (options.signal?.aborted) throw new FlowError('ERR_ABORTED', `the download of ${options.name} was aborted`);
    progress();
    let response;
    try {
      response = await fetch(url, { dispatcher: dispatcher(options.timeout), signal, redirect: 'follow' });
    } catch (error) {
      throw failure(error);
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => undefined);
      throw new FlowError('ERR_DOWNLOAD', `could not download ${options.name} from ${url}: the server answered ${response.status} ${response.statusText}`.trimEnd());
    }
    const announced = Number(response.headers.get('content-length') ?? NaN);
    const total = options.bytes ?? (Number.isFinite(announced) ? announced : undefined);
    if (options.bytes !== undefined && Number.isFinite(announced) && announced !== options.bytes) {
      await response.body.cancel().catch(() => undefined);
      throw new FlowError('ERR_DOWNLOAD', `could not download ${options.name} from ${url}: the server offers ${announced} bytes, the ${expected} size is ${options.bytes}`);
    }
    out = fs.createWriteStream(partial, { flags: 'wx' });
    const file = out;
    const opened = new Promise<void>((resolve, reject) => { file.once('open', () => resolve()); file.once('error', reject); });
    await opened;
    options.onProgress?.({ name: options.name, loaded, total });
    try {
      for await (const chunk of Readable.fromWeb(response.body as import('stream/web').ReadableStream<Uint8Array>)) {
        const bytes = chunk as Buffer;
        hash.update(bytes);
        loaded += bytes.length;
        if (total !== undefined && loaded > total) {
          throw new FlowError('ERR_DOWNLOAD', `could not download ${options.name} from ${url}: more than the expected ${total} bytes arrived`);
        }
        if (!file.write(bytes)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
        progress();
        options.onProgress?.({ name: options.name, loaded, total });
      }
    } catch (error) {
      if (error instanceof FlowError) throw error;
      throw failure(error, ` (${loaded} bytes received)`);
    }
    clearTimeout(timer);
    await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));
    if (total !== undefined && loaded !== total) {
      throw new FlowError('ERR_DOWNLOAD', `could not download ${options.name} from ${url}: ${loaded} of ${total} bytes arrived`);
    }
    const sha256 = hash.digest('hex');
    if (options.sha256 !== undefined && sha256 !== options.sha256) {
      throw new FlowError('ERR_DOWNLOAD', `${options.name} from ${url} has SHA-256 ${sha256}, not the ${expected} ${options.sha256}: the file was not kept`);
    }
    if (options.sha256Prefix !== undefined && !sha256.startsWith(options.sha256Prefix)) {
      throw new FlowError('ERR_DOWNLOAD', `${options.name} from ${url} has SHA-256 ${sha256}, which does not start with ${options.sha256Prefix} as its name says: the file was not kept`);
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(partial, target);
    return { sha256, bytes: loaded };
  } catch (error) {
    out?.destroy();
    fs.rmSync(partial, { force: true });
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** The SHA-256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
