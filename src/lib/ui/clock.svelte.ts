import { getContext, setContext } from 'svelte';

/**
 * The time the page counts down against: the server's clock (corrected by the skew seen in API
 * answers), ticking four times a second. `now` is null during server rendering, so that times
 * are written only in the browser's own time zone and never disagree between server and browser.
 */
export class Clock {
  now = $state<number | null>(null);
  #skew = 0;

  start(): () => void {
    const tick = () => (this.now = Date.now() + this.#skew);
    tick();
    const handle = setInterval(tick, 250);
    return () => clearInterval(handle);
  }

  /** A server timestamp taken while answering; the difference to ours is the skew (plus latency). */
  sync(serverNow: number): void {
    this.#skew = serverNow - Date.now();
    if (this.now !== null) this.now = Date.now() + this.#skew;
  }
}

const KEY = Symbol('clock');

export function provideClock(): Clock {
  return setContext(KEY, new Clock());
}

export function clock(): Clock {
  return getContext<Clock>(KEY);
}
