/**
 * Failed-login throttling, shared by SMTP AUTH and the web login. Keyed by client IP and by
 * account, so that neither one address guessing many passwords nor many addresses guessing one
 * account's password gets far. In memory: a restart forgets, which only helps the legitimate user.
 */
export interface ThrottleOptions {
  /** Failures allowed within the window before the key is blocked. */
  maxFailures: number;
  windowMs: number;
  /** The block after the limit; doubles with each further failure up to maxBlockMs. */
  blockMs: number;
  maxBlockMs: number;
  now?: () => number;
}

interface Entry {
  failures: number[];
  blockedUntil: number;
  strikes: number;
}

export class Throttle {
  #entries = new Map<string, Entry>();
  #opts: Required<ThrottleOptions>;

  constructor(opts: Partial<ThrottleOptions> = {}) {
    this.#opts = { maxFailures: 5, windowMs: 15 * 60_000, blockMs: 60_000, maxBlockMs: 15 * 60_000, now: Date.now, ...opts };
  }

  /** Milliseconds until any of the keys may try again; 0 when none is blocked. */
  retryAfter(keys: string[]): number {
    const now = this.#opts.now();
    let wait = 0;
    for (const key of keys) {
      const e = this.#entries.get(key);
      if (e && e.blockedUntil > now) wait = Math.max(wait, e.blockedUntil - now);
    }
    return wait;
  }

  fail(keys: string[]): void {
    const now = this.#opts.now();
    for (const key of keys) {
      const e = this.#entries.get(key) ?? { failures: [], blockedUntil: 0, strikes: 0 };
      e.failures = e.failures.filter((t) => t > now - this.#opts.windowMs);
      e.failures.push(now);
      if (e.failures.length >= this.#opts.maxFailures) {
        e.blockedUntil = now + Math.min(this.#opts.blockMs * 2 ** e.strikes, this.#opts.maxBlockMs);
        e.strikes++;
      }
      this.#entries.set(key, e);
    }
    if (this.#entries.size > 10_000) this.#prune(now);
  }

  succeed(keys: string[]): void {
    for (const key of keys) this.#entries.delete(key);
  }

  #prune(now: number): void {
    for (const [key, e] of this.#entries) {
      if (e.blockedUntil <= now && e.failures.every((t) => t <= now - this.#opts.windowMs)) this.#entries.delete(key);
    }
  }
}
