import https from 'node:https';
import webpush, { WebPushError } from 'web-push';
import type { PushMessage } from '../../push/message.js';
import { checkEndpoint, EndpointError, guardedLookup, type EndpointPolicy } from './endpoint.js';
import type { Subscription } from './subscriptions.js';
import type { VapidKeys } from './vapid.js';

/**
 * Sends one push to one subscription and says what to do next. The push service's answer is
 * classified here and nowhere else:
 *   2xx            delivered
 *   404, 410       gone: the browser dropped the subscription, delete it
 *   429, 5xx, no answer, timeout    retry later (honouring Retry-After)
 *   other 4xx      refused: this push will never be accepted, do not retry
 */
export type SendResult =
  | { kind: 'delivered' }
  | { kind: 'gone'; status: number }
  | { kind: 'retry'; status: number | null; afterMs: number | null; reason: string }
  | { kind: 'refused'; status: number | null; reason: string };

export interface SendOptions {
  ttlSeconds: number;
  urgency: 'very-low' | 'low' | 'normal' | 'high';
  /** Replaces an undelivered push with the same topic at the push service. */
  topic: string;
}

export interface SenderOptions extends EndpointPolicy {
  vapid: VapidKeys;
  subject: string;
  timeoutMs?: number;
  /** Tests: the certificate of the push-service double. */
  ca?: string | Buffer;
}

export class PushSender {
  readonly #o: SenderOptions;
  readonly #agent: https.Agent;

  constructor(o: SenderOptions) {
    this.#o = o;
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: 16, lookup: guardedLookup(o) as never, ...(o.ca ? { ca: o.ca } : {}) });
  }

  async send(sub: Subscription, message: PushMessage, opts: SendOptions): Promise<SendResult> {
    try {
      checkEndpoint(sub.endpoint, this.#o);
    } catch (err) {
      return { kind: 'refused', status: null, reason: (err as Error).message };
    }
    try {
      await webpush.sendNotification({ endpoint: sub.endpoint, keys: { p256dh: sub.p256dh, auth: sub.auth } }, JSON.stringify(message), {
        vapidDetails: { subject: this.#o.subject, publicKey: this.#o.vapid.publicKey, privateKey: this.#o.vapid.privateKey },
        TTL: opts.ttlSeconds,
        urgency: opts.urgency,
        topic: opts.topic,
        contentEncoding: 'aes128gcm',
        timeout: this.#o.timeoutMs ?? 10_000,
        agent: this.#agent,
      });
      return { kind: 'delivered' };
    } catch (err) {
      return classify(err);
    }
  }

  close(): void {
    this.#agent.destroy();
  }
}

export function classify(err: unknown): SendResult {
  if (err instanceof WebPushError) {
    const status = err.statusCode;
    if (status === 404 || status === 410) return { kind: 'gone', status };
    if (status === 429 || status >= 500) return { kind: 'retry', status, afterMs: retryAfter(err.headers['retry-after']), reason: `${status} ${err.body}`.trim() };
    return { kind: 'refused', status, reason: `${status} ${err.body}`.trim() };
  }
  const e = err as NodeJS.ErrnoException;
  if (e instanceof EndpointError || e?.code === 'EPUSHADDRESS') return { kind: 'refused', status: null, reason: e.message };
  return { kind: 'retry', status: null, afterMs: null, reason: e?.message ?? String(err) };
}

function retryAfter(value: string | string[] | undefined): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}
