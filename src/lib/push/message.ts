/**
 * What a push carries to the service worker (JSON, encrypted by web-push). Kept small: push
 * services accept about 4 KB, so the subject and recipients are cut and counted.
 */
export interface HeldMessage {
  v: 1;
  kind: 'held';
  id: string;
  subject: string;
  /** The first few recipients; `more` counts the rest. */
  to: string[];
  more: number;
  /** ms since the epoch. */
  dueAt: number;
  /** The deep link to the mail. */
  url: string;
  tokens: { discard: string; send: string };
}

export interface LeftMessage {
  v: 1;
  kind: 'left';
  id: string;
  subject: string;
  outcome: 'sent' | 'discarded' | 'failed';
  url: string;
}

export type PushMessage = HeldMessage | LeftMessage;

/** Where a tap on a notification leads. */
export function mailUrl(id: string): string {
  return `/mail/${encodeURIComponent(id)}`;
}

/** The action endpoint; the only place that accepts a push action token. */
export const ACTION_PATH = '/api/push/action';
