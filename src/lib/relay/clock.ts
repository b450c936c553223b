/**
 * Time as the relay sees it. Production uses the system clock; tests inject a clock that they
 * move by hand, so that a 60-second hold takes milliseconds and every due time is exact.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` once the clock has reached `at` (ms since the epoch). */
  at(at: number, fn: () => void): Timer;
}

export interface Timer {
  cancel(): void;
}

/** setTimeout takes at most 2^31-1 ms; longer waits are re-armed on the way. */
const MAX_TIMEOUT = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  at(at, fn) {
    let handle: ReturnType<typeof setTimeout>;
    const arm = () => {
      const wait = at - Date.now();
      handle = setTimeout(wait > MAX_TIMEOUT ? arm : fn, Math.max(0, Math.min(wait, MAX_TIMEOUT)));
      handle.unref();
    };
    arm();
    return { cancel: () => clearTimeout(handle) };
  },
};

/** A clock that stands still until `advance()` or `set()` moves it. */
export class ManualClock implements Clock {
  #now: number;
  #timers = new Set<{ at: number; fn: () => void }>();

  constructor(start = Date.UTC(2026, 0, 5, 9, 0, 0)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  at(at: number, fn: () => void): Timer {
    const t = { at, fn };
    this.#timers.add(t);
    if (at <= this.#now) queueMicrotask(() => this.#fire());
    return { cancel: () => this.#timers.delete(t) };
  }

  advance(ms: number): void {
    this.set(this.#now + ms);
  }

  set(now: number): void {
    this.#now = Math.max(this.#now, now);
    this.#fire();
  }

  #fire(): void {
    const due = [...this.#timers].filter((t) => t.at <= this.#now).sort((a, b) => a.at - b.at);
    for (const t of due) {
      this.#timers.delete(t);
      t.fn();
    }
  }
}
