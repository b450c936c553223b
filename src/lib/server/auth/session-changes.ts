/**
 * Tells whoever holds a long-lived view (a live mail stream) that sessions or rights changed in
 * this process: a logout, a password reset, a user removed or made (no longer) admin. Each view
 * then checks its own session again. Other processes' changes reach them by the periodic check.
 */
type Listener = () => void;
const listeners = new Set<Listener>();

export function onSessionsChanged(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function sessionsChanged(): void {
  for (const l of [...listeners]) l();
}
