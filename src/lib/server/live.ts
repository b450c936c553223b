import type { EventBus, MailEvent } from '../relay/events.js';
import type { Scope } from '../relay/state.js';

/** Whether a viewer with this scope may learn of this event (the same rule as the mail list). */
export function eventVisible(scope: Scope, e: MailEvent): boolean {
  if (scope.kind === 'all') return true;
  if (scope.kind === 'user') return e.ownerId === scope.userId;
  return e.clientIp === scope.ip;
}

/**
 * The mail events a viewer may see, as an async iterable that ends when `signal` aborts (the
 * client went away, or the server is shutting down). Events that arrive while the consumer is
 * busy wait in a queue; a consumer too slow for 10,000 of them is ended (it reloads on reconnect).
 */
export async function* watchMail(bus: EventBus, scope: Scope, signal: AbortSignal): AsyncGenerator<MailEvent> {
  const queue: MailEvent[] = [];
  let wake: (() => void) | undefined;
  let overflow = false;
  const unsubscribe = bus.subscribe((e) => {
    if (!eventVisible(scope, e)) return;
    if (queue.length >= 10_000) overflow = true;
    else queue.push(e);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    while (!signal.aborted && !overflow) {
      const next = queue.shift();
      if (next) {
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener('abort', onAbort);
  }
}
