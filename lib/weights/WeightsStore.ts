// Where weights files are kept and how they get there: a cache directory of our own, files torch.hub already
// downloaded, verified downloads (one per file across processes), the authors' zip, a mirror and an offline switch.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FlowError } from '../FlowError';
import { MODELS_DIR } from '../models';
import * as is from '../validate';
import { extractMembers } from './archive';
import { weightsArchive, weightsCatalogue, type WeightsArchive, type WeightsEntry } from './catalogue';
import { download, sha256File, type DownloadProgress } from './download';
import { FileLock } from './FileLock';

export interface WeightsStoreOptions {
  /** The cache directory. Default: `$OPTICAL_FLOW_HOME`, else `$XDG_CACHE_HOME/optical-flow` or `~/.cache/optical-flow`. */
  cacheDir?: string;
  /** Never touch the network. Default: `$OPTICAL_FLOW_OFFLINE` set to 1, true or yes. */
  offline?: boolean;
  /** A base URL serving the files under their file names, instead of their publishers. Default: `$OPTICAL_FLOW_MIRROR`. */
  mirror?: string;
  /** Milliseconds without progress before a download fails. Default 30000. */
  timeout?: number;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

/** Where a set of weights was found, and how it was checked. */
export interface LocatedWeights {
  /** The file to load (for bundled weights, the export itself). */
  path: string;
  where: 'bundled' | 'cache' | 'torch-hub';
  /** How the file's integrity was established. */
  verification: string;
  /** The address it comes from (the archive's for archive members). */
  url?: string;
  sha256?: string;
}

export interface VerifyResult {
  name: string;
  path: string | undefined;
  ok: boolean;
  message: string;
}

interface TrustRecord {
  url: string;
  sha256: string;
  bytes: number;
  recordedAt: string;
  members: Record<string, string>;
}

const LOCK_STALE_MS = 30_000;
const inFlight = new Map<string, Promise<void>>();

function truthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.toLowerCase());
}

function userCache(): string {
  return process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
}

export class WeightsStore {
  readonly cacheDir: string;
  readonly offline: boolean;
  readonly mirror: string | undefined;
  readonly timeout: number;
  private readonly onProgress?: (progress: DownloadProgress) => void;
  private readonly signal?: AbortSignal;

  constructor(options: WeightsStoreOptions = {}) {
    const opts = is.options<WeightsStoreOptions>('weights options', options,
      ['cacheDir', 'offline', 'mirror', 'timeout', 'onProgress', 'signal']);
    this.cacheDir = path.resolve(opts.cacheDir !== undefined ? is.string('cacheDir', opts.cacheDir)
      : process.env.OPTICAL_FLOW_HOME || path.join(userCache(), 'optical-flow'));
    if (opts.offline !== undefined && typeof opts.offline !== 'boolean') throw is.typeError('offline', 'a boolean', opts.offline);
    this.offline = opts.offline ?? truthy(process.env.OPTICAL_FLOW_OFFLINE);
    const mirror = opts.mirror !== undefined ? is.string('mirror', opts.mirror) : process.env.OPTICAL_FLOW_MIRROR || undefined;
    if (mirror !== undefined && !/^https?:\/\/[^/]/.test(mirror)) throw is.valueError('mirror', 'an http(s) base URL', mirror);
    this.mirror = mirror?.replace(/\/+$/, '');
    this.timeout = opts.timeout === undefined ? 30_000 : is.integer('timeout', opts.timeout, 1, 3_600_000);
    if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw is.typeError('onProgress', 'a function', opts.onProgress);
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw is.typeError('signal', 'an AbortSignal', opts.signal);
    this.onProgress = opts.onProgress;
    this.signal = opts.signal;
  }

  /** The folder downloaded weights are kept in. */
  get weightsDir(): string {
    return path.join(this.cacheDir, 'weights');
  }

  /** torch.hub's checkpoint folders (torchvision's, ptlflow's), searched so that nothing is downloaded twice. */
  static torchHubDirs(): string[] {
    const hub = path.join(process.env.TORCH_HOME || path.join(userCache(), 'torch'), 'hub');
    return [path.join(hub, 'checkpoints'), path.join(hub, 'ptlflow', 'checkpoints')];
  }

  /** Where the file is downloaded from, the mirror applied. */
  urlOf(entry: WeightsEntry): string | undefined {
    const archive = entry.archive ? weightsArchive(entry.archive) : undefined;
    const url = archive?.url ?? entry.url;
    if (url === undefined) return undefined;
    const file = archive?.file ?? entry.file;
    return this.mirror ? `${this.mirror}/${encodeURIComponent(file)}` : url;
  }

  /** The file the cache keeps the weights in (whether or not it is there yet). */
  cachePath(entry: WeightsEntry): string {
    return entry.bundled ? path.join(MODELS_DIR, entry.file) : path.join(this.weightsDir, entry.file);
  }

  /** The weights' file if it is already on this machine, without touching the network. */
  locate(entry: WeightsEntry): LocatedWeights | undefined {
    const url = this.urlOf(entry);
    if (entry.bundled) {
      const file = this.cachePath(entry);
      return fs.existsSync(file) ? { path: file, where: 'bundled', verification: 'shipped with the package' } : undefined;
    }
    const cached = this.cachePath(entry);
    if (fs.existsSync(cached)) return { path: cached, where: 'cache', verification: this.verification(entry), url, sha256: entry.sha256 };
    if (!entry.archive) {
      for (const dir of WeightsStore.torchHubDirs()) {
        const file = path.join(dir, entry.file);
        if (fs.existsSync(file)) {
          return { path: file, where: 'torch-hub', verification: `found in torch.hub's cache (${this.verification(entry)} when torch.hub downloaded it)`, url, sha256: entry.sha256 };
        }
      }
    }
    return undefined;
  }

  /** The weights' file: from the cache, or downloaded, verified and cached first. */
  async fetch(entry: WeightsEntry): Promise<LocatedWeights> {
    const found = this.locate(entry);
    if (found) return found;
    if (entry.bundled) {
      throw new FlowError('ERR_WEIGHTS', `the bundled export ${this.cachePath(entry)} for '${entry.name}' is missing; run \`npm run setup\``);
    }
    const url = this.urlOf(entry) as string;
    const target = entry.archive ? path.join(this.weightsDir, (weightsArchive(entry.archive) as WeightsArchive).file) : this.cachePath(entry);
    if (this.offline) {
      const what = entry.archive ? `${url} and extract ${entry.member} from it to ${this.cachePath(entry)}` : `${url} to ${this.cachePath(entry)}`;
      throw new FlowError('ERR_OFFLINE', `weights '${entry.name}' are not in the cache and downloads are off (offline); fetch ${what}`);
    }
    fs.mkdirSync(this.weightsDir, { recursive: true });
    let job = inFlight.get(target);
    if (!job) {
      job = (entry.archive ? this.fetchArchive(entry.archive) : this.fetchFile(entry, url)).finally(() => inFlight.delete(target));
      inFlight.set(target, job);
    }
    await job;
    const located = this.locate(entry);
    if (!located) throw new FlowError('ERR_DOWNLOAD', `weights '${entry.name}' were downloaded but ${this.cachePath(entry)} is not there`);
    return located;
  }

  private async fetchFile(entry: WeightsEntry, url: string): Promise<void> {
    const target = this.cachePath(entry);
    const lock = await FileLock.acquire(`${target}.lock`, { staleAfter: LOCK_STALE_MS, done: () => fs.existsSync(target), signal: this.signal, name: entry.name });
    if (!lock) return;
    try {
      if (fs.existsSync(target)) return;
      await download(url, target, {
        name: entry.name, sha256: entry.sha256, sha256Prefix: entry.sha256Prefix, bytes: entry.bytes,
        timeout: this.timeout, signal: this.signal, onProgress: this.onProgress,
      });
    } finally {
      lock.release();
    }
  }

  private trustRecordPath(archive: WeightsArchive): string {
    return path.join(this.weightsDir, `${archive.file}.trust.json`);
  }

  /** What the cache recorded about an archive the first time it was downloaded (trust on first use). */
  trustRecord(archiveName: string): TrustRecord | undefined {
    const archive = weightsArchive(archiveName);
    if (!archive) return undefined;
    try {
      return JSON.parse(fs.readFileSync(this.trustRecordPath(archive), 'utf8')) as TrustRecord;
    } catch {
      return undefined;
    }
  }

  private async fetchArchive(archiveName: string): Promise<void> {
    const archive = weightsArchive(archiveName) as WeightsArchive;
    const members = weightsCatalogue().filter((e) => e.archive === archiveName);
    const zipFile = path.join(this.weightsDir, archive.file);
    const allThere = () => members.every((e) => fs.existsSync(this.cachePath(e)));
    const lock = await FileLock.acquire(`${zipFile}.lock`, { staleAfter: LOCK_STALE_MS, done: allThere, signal: this.signal, name: archive.file });
    if (!lock) return;
    try {
      if (allThere()) return;
      const record = this.trustRecord(archiveName);
      const got = await download(this.urlOf(members[0]) as string, zipFile, {
        name: archive.file, sha256: record?.sha256, bytes: record?.bytes, recorded: true, timeout: this.timeout, signal: this.signal, onProgress: this.onProgress,
      });
      try {
        const targets = new Map(members.map((e) => [e.member as string, this.cachePath(e)]));
        const hashes = await extractMembers(zipFile, targets, archive.file);
        if (!record) {
          const trust: TrustRecord = {
            url: archive.url, sha256: got.sha256, bytes: got.bytes, recordedAt: new Date().toISOString(), members: Object.fromEntries(hashes),
          };
          fs.writeFileSync(this.trustRecordPath(archive), `${JSON.stringify(trust, null, 2)}\n`);
        }
      } finally {
        fs.rmSync(zipFile, { force: true });
      }
    } finally {
      lock.release();
    }
  }

  /** How a downloaded file of this entry is (or was) checked. */
  verification(entry: WeightsEntry): string {
    if (entry.bundled) return 'shipped with the package';
    if (entry.sha256) return `SHA-256 ${entry.sha256}${entry.bytes ? ` and size ${entry.bytes} bytes` : ''}`;
    if (entry.sha256Prefix) return `SHA-256 prefix ${entry.sha256Prefix} from the file name`;
    if (entry.archive) {
      const record = this.trustRecord(entry.archive);
      const member = record?.members[entry.member as string];
      return record
        ? `trust on first use: the archive's SHA-256 ${record.sha256} and this member's ${member ?? 'unknown'} were recorded ${record.recordedAt}`
        : 'trust on first use: nothing published to check against; the first download is recorded';
    }
    return 'none published';
  }

  /** Re-hashes a cached file against what is published (or was recorded on first use). */
  async verify(entry: WeightsEntry): Promise<VerifyResult> {
    const located = this.locate(entry);
    if (!located) return { name: entry.name, path: undefined, ok: true, message: 'not downloaded' };
    if (entry.bundled) return { name: entry.name, path: located.path, ok: true, message: 'bundled with the package' };
    const sha256 = await sha256File(located.path);
    const bytes = fs.statSync(located.path).size;
    let expected: string | undefined = entry.sha256;
    const prefix = entry.sha256Prefix;
    if (entry.archive) expected = this.trustRecord(entry.archive)?.members[entry.member as string];
    if (entry.bytes !== undefined && bytes !== entry.bytes) {
      return { name: entry.name, path: located.path, ok: false, message: `${bytes} bytes, not the published ${entry.bytes}` };
    }
    if (expected !== undefined && sha256 !== expected) {
      return { name: entry.name, path: located.path, ok: false, message: `SHA-256 ${sha256}, expected ${expected}` };
    }
    if (prefix !== undefined && !sha256.startsWith(prefix)) {
      return { name: entry.name, path: located.path, ok: false, message: `SHA-256 ${sha256} does not start with ${prefix}` };
    }
    const how = expected !== undefined ? (entry.archive ? 'matches the SHA-256 recorded on first use' : 'matches the published SHA-256')
      : prefix !== undefined ? `matches the SHA-256 prefix ${prefix}` : 'nothing to check against';
    return { name: entry.name, path: located.path, ok: true, message: `${how} (${sha256.slice(0, 16)}…, ${bytes} bytes)` };
  }
}
