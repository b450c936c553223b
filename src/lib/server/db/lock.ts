import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export class DataDirLockedError extends Error {
  constructor(dir: string, holder: string) {
    super(
      `[db] DATA_DIR ${dir} is in use by another mailhold (${holder}). ` +
        'The embedded database must never be opened by two processes: stop the other one, ' +
        'or give this one its own DATA_DIR, or use DATABASE_URL for several processes.',
    );
    this.name = 'DataDirLockedError';
  }
}

interface Holder {
  pid: number;
  host: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the data directory for this process (a pid file created with O_EXCL). A file left by a
 * process that is gone is taken over; one held by a live process on this host refuses the start.
 * Returns the release function.
 */
export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'mailhold.lock');
  const me: Holder = { pid: process.pid, host: os.hostname() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          const now = JSON.parse(readFileSync(file, 'utf8')) as Holder;
          if (now.pid === me.pid && now.host === me.host) unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder: Holder | undefined;
      try {
        holder = JSON.parse(readFileSync(file, 'utf8')) as Holder;
      } catch {
        holder = undefined;
      }
      const stale = !holder || (holder.host === me.host && holder.pid !== me.pid && !alive(holder.pid));
      if (!stale) throw new DataDirLockedError(dir, `pid ${holder!.pid} on ${holder!.host}`);
      try {
        unlinkSync(file);
      } catch {
        /* someone else took it over first; the next attempt tells */
      }
    }
  }
  throw new DataDirLockedError(dir, 'a process that started at the same moment');
}
