// A lock file that lets one process download a file while others wait for it. The holder refreshes the lock's
// modification time while it works; a lock whose holder has died (same host, no such process) or that has not
// been refreshed for `staleAfter` milliseconds is broken, so a crashed process never blocks the others for long.
import * as fs from 'fs';
import * as os from 'os';
import { FlowError } from '../FlowError';

export interface LockOptions {
  /** Milliseconds without a refresh after which a lock is taken to be abandoned. */
  staleAfter: number;
  /** Checked while waiting: true when the work is done and the lock is no longer needed. */
  done: () => boolean;
  signal?: AbortSignal;
  /** What the lock protects, for messages. */
  name: string;
}

interface Holder {
  pid: number;
  host: string;
}

const POLL_MS = 100;

function readHolder(file: string): Holder | undefined {
  try {
    const holder = JSON.parse(fs.readFileSync(file, 'utf8')) as Holder;
    return typeof holder.pid === 'number' && typeof holder.host === 'string' ? holder : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class FileLock {
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(readonly file: string, staleAfter: number) {
    this.heartbeat = setInterval(() => {
      const now = new Date();
      try { fs.utimesSync(file, now, now); } catch { /* broken by another process: its download is now the one */ }
    }, Math.max(50, Math.floor(staleAfter / 4)));
    this.heartbeat.unref();
  }

  /** Takes the lock, waiting while another live process holds it; undefined when `done()` became true meanwhile. */
  static async acquire(file: string, options: LockOptions): Promise<FileLock | undefined> {
    const me = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() });
    for (;;) {
      if (options.done()) return undefined;
      if (options.signal?.aborted) throw new FlowError('ERR_ABORTED', `waiting for ${options.name} was aborted`);
      try {
        fs.writeFileSync(file, me, { flag: 'wx' });
        return new FileLock(file, options.staleAfter);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new FlowError('ERR_DOWNLOAD', `cannot create the lock file ${file}: ${(error as Error).message}`);
        }
      }
      if (FileLock.abandoned(file, options.staleAfter)) {
        // Renaming first means that of two processes breaking the same lock, only one succeeds.
        const broken = `${file}.${process.pid}.broken`;
        try {
          fs.renameSync(file, broken);
          fs.rmSync(broken, { force: true });
        } catch { /* someone else broke it first */ }
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  private static abandoned(file: string, staleAfter: number): boolean {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      return false;
    }
    if (Date.now() - stat.mtimeMs > staleAfter) return true;
    const holder = readHolder(file);
    // A holder on this host that no longer exists has crashed; one on another host is judged by its refreshes.
    return holder !== undefined && holder.host === os.hostname() && holder.pid !== process.pid && !alive(holder.pid);
  }

  release(): void {
    clearInterval(this.heartbeat);
    fs.rmSync(this.file, { force: true });
  }
}
