import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * A full garbage collection on request. V8 frees the network and database buffers a big mail
 * streams through only when its own heuristics decide to, and it lets over 100 MiB of such dead
 * buffers pile up first. Streaming a big mail asks for a collection every few tens of MiB, so the
 * process stays within a small, fixed amount of memory whatever the size of the mail. Where the
 * runtime does not allow it (no way to expose gc), this does nothing.
 */
let gc: (() => void) | null | undefined;

function load(): (() => void) | null {
  try {
    const existing = (globalThis as { gc?: () => void }).gc;
    if (typeof existing === 'function') return existing;
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as () => void) : null;
  } catch {
    return null;
  }
}

export function collectGarbage(): void {
  if (gc === undefined) gc = load();
  gc?.();
}

/** Calls collectGarbage() once per `everyBytes` of data reported through the returned function. */
export function garbageBudget(everyBytes = 8 * 1024 * 1024): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since >= everyBytes) {
      since = 0;
      collectGarbage();
    }
  };
}
