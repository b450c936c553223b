import type { Readable } from 'node:stream';
import { classify, replyText, type UpstreamError, type Verdict } from './classify.js';
import type { Claim, RecipientOutcome } from './state.js';
import { UpstreamPool } from './upstream-pool.js';
import { upstreamOptions, type UpstreamTimeouts } from './upstream.js';

/**
 * Sends one claimed mail to the upstream: the stored raw bytes, unchanged, with the stored
 * envelope (so Bcc recipients stay invisible and intact). Every recipient gets its own outcome.
 */
export interface Delivery {
  /**
   * `open` gives the stored message (again, if a send is retried on another session). `alerts`
   * collects conditions the administrator must see (our credentials refused, TLS broken).
   */
  send(claim: Claim, open: () => Readable): Promise<{ outcomes: RecipientOutcome[]; alerts: Array<{ kind: string; message: string }> }>;
  close(): Promise<void>;
  readonly kind: 'smtp' | 'outbox';
}

interface SentInfo {
  accepted?: Array<string | { address: string }>;
  rejected?: Array<string | { address: string }>;
  rejectedErrors?: UpstreamError[] & Array<{ recipient?: string }>;
  response?: string;
}

export class SmtpDelivery implements Delivery {
  readonly kind = 'smtp';
  readonly #pool: UpstreamPool;

  /** `auth` replaces the login in the URL (AUTH_MODE=upstream: the sender's own provider login). */
  constructor(url: URL, opts: { maxConnections: number; timeouts?: UpstreamTimeouts; heloName?: string; auth?: { user: string; pass: string } }) {
    const { auth, ...connection } = upstreamOptions(url, opts.timeouts, opts.heloName);
    this.#pool = new UpstreamPool({
      connection,
      auth: opts.auth ?? auth,
      // Parallel sessions are what releases a burst of held mail on time: each mail costs a few
      // round trips, so throughput is sessions ÷ round-trip time (UPSTREAM_CONNECTIONS).
      maxConnections: opts.maxConnections,
      // A session is reused for many mails, as Postfix does, and not kept open when idle.
      maxMessages: 1000,
      idleMs: 10_000,
    });
  }

  async send(claim: Claim, open: () => Readable) {
    const to = claim.recipients.map((r) => r.address);
    const alerts: Array<{ kind: string; message: string }> = [];
    const outcome = (seq: number, verdict: Verdict): RecipientOutcome => {
      if (verdict.action === 'defer' && verdict.alert) alerts.push({ kind: verdict.alert, message: verdict.reply });
      return { seq, result: verdict.action === 'fail' ? 'failed' : 'deferred', reply: verdict.reply };
    };
    try {
      const info = (await this.#pool.send(
        // The stored envelope; SIZE and BODY=8BITMIME are declared when the upstream offers them.
        { from: claim.mailFrom || false, to, size: claim.size, use8BitMime: claim.body8bit },
        open,
      )) as SentInfo;
      const reply = replyText({ response: info.response });
      const errors = info.rejectedErrors ?? [];
      const rejected = new Map<string, UpstreamError>();
      for (const e of errors) if (e.recipient) rejected.set(e.recipient.toLowerCase(), e);
      const outcomes = claim.recipients.map((r) => {
        const err = rejected.get(r.address.toLowerCase());
        return err ? outcome(r.seq, classify(err)) : { seq: r.seq, result: 'sent' as const, reply };
      });
      return { outcomes, alerts };
    } catch (e) {
      const err = e as UpstreamError & { rejectedErrors?: Array<UpstreamError & { recipient?: string }> };
      if (err.code === 'EENVELOPE' && err.rejectedErrors?.length) {
        // Every recipient was refused at RCPT TO, each with its own reply.
        const outcomes: RecipientOutcome[] = [];
        for (const r of claim.recipients) {
          const own = err.rejectedErrors.find((x) => x.recipient?.toLowerCase() === r.address.toLowerCase());
          outcomes.push(outcome(r.seq, classify(own ?? err)));
        }
        return { outcomes, alerts };
      }
      // The whole attempt failed: connection, TLS, AUTH, MAIL FROM or DATA.
      const verdict = classify(err);
      return { outcomes: claim.recipients.map((r) => outcome(r.seq, verdict)), alerts };
    }
  }

  async close(): Promise<void> {
    this.#pool.close();
  }
}

/**
 * No UPSTREAM_URL: mail "goes out" into the built-in outbox, where the administrator can read it.
 * The outbox entry itself is written by the worker in the transaction that marks the mail sent.
 */
export class OutboxDelivery implements Delivery {
  readonly kind = 'outbox';

  async send(claim: Claim) {
    return { outcomes: claim.recipients.map((r) => ({ seq: r.seq, result: 'sent' as const, reply: '250 stored in the built-in outbox' })), alerts: [] };
  }

  async close(): Promise<void> {}
}
