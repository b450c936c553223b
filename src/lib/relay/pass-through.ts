import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { CredentialStore } from '../server/auth/credentials.js';
import type { Db } from '../server/db/client.js';
import { SmtpDelivery, type Delivery } from './delivery.js';
import type { Claim } from './state.js';
import type { UpstreamTimeouts } from './upstream.js';

/**
 * AUTH_MODE=upstream: each user's mail goes out with that user's own provider login, as it did
 * before mailhold was put between the mailer and the provider.
 *
 * - Mail that came in with SMTP AUTH is delivered with its owner's stored login, and only with
 *   it. If that login is not stored (any more), the mail waits (deferred) rather than going out
 *   under another identity.
 * - Error mails that mailhold writes for such a user use the user's login when it is stored.
 * - Everything else (allowlisted networks without AUTH) uses UPSTREAM_URL as it is: its own
 *   login, or none.
 *
 * One pooled transport per login, closed after `idleMs` without use, and closed at once when the
 * user's login changes.
 */
export interface PassThroughOptions {
  url: URL;
  db: Db;
  credentials: CredentialStore;
  log: Logger;
  timeouts?: UpstreamTimeouts;
  heloName?: string;
  idleMs?: number;
  /** UPSTREAM_CONNECTIONS, for mail that goes out with the relay's own login (or none). */
  maxConnections: number;
}

interface Pooled {
  key: string;
  delivery: SmtpDelivery;
  lastUsed: number;
  busy: number;
}

export class PassThroughDelivery implements Delivery {
  readonly kind = 'smtp';
  readonly #o: PassThroughOptions;
  readonly #shared: SmtpDelivery;
  readonly #byUser = new Map<number, Pooled>();
  readonly #reaper: ReturnType<typeof setInterval>;

  constructor(o: PassThroughOptions) {
    this.#o = o;
    this.#shared = new SmtpDelivery(o.url, { timeouts: o.timeouts, heloName: o.heloName, maxConnections: o.maxConnections });
    const idle = o.idleMs ?? 60_000;
    this.#reaper = setInterval(() => this.#closeIdle(idle), Math.max(1000, idle / 2));
    this.#reaper.unref();
  }

  /** Transports open right now, one per user login (for tests and metrics). */
  get openTransports(): number {
    return this.#byUser.size;
  }

  async send(claim: Claim, open: () => Readable) {
    const own = claim.ownerId !== null && (claim.authUser !== null || claim.kind === 'notice');
    const login = own ? await this.#o.credentials.load(this.#o.db, claim.ownerId!) : undefined;
    if (!login) {
      if (claim.authUser === null) return this.#shared.send(claim, open);
      const reply = "454 4.7.0 the sender's provider login is not stored (any more); waiting for the sender to log in again";
      return { outcomes: claim.recipients.map((r) => ({ seq: r.seq, result: 'deferred' as const, reply })), alerts: [] };
    }
    const pooled = this.#transportFor(claim.ownerId!, login);
    pooled.busy++;
    try {
      const result = await pooled.delivery.send(claim, open);
      // A refused user login is that user's business (a changed password), not a broken relay
      // configuration: the mail is deferred and finally bounced to them, without an admin alert.
      return { ...result, alerts: result.alerts.filter((a) => a.kind !== 'upstream_auth') };
    } finally {
      pooled.busy--;
      pooled.lastUsed = Date.now();
    }
  }

  #transportFor(userId: number, login: { user: string; pass: string }): Pooled {
    const key = createHash('sha256').update(`${login.user}\0${login.pass}`).digest('hex');
    const current = this.#byUser.get(userId);
    if (current?.key === key) return current;
    if (current) void this.#retire(current);
    const pooled: Pooled = {
      key,
      // A login sends one person's mail: two sessions are plenty, and never more than allowed.
      delivery: new SmtpDelivery(this.#o.url, { timeouts: this.#o.timeouts, heloName: this.#o.heloName, auth: login, maxConnections: Math.min(2, this.#o.maxConnections) }),
      lastUsed: Date.now(),
      busy: 0,
    };
    this.#byUser.set(userId, pooled);
    return pooled;
  }

  async #retire(pooled: Pooled): Promise<void> {
    while (pooled.busy > 0) await new Promise((r) => setTimeout(r, 200).unref());
    await pooled.delivery.close();
  }

  #closeIdle(idleMs: number): void {
    const now = Date.now();
    for (const [userId, pooled] of this.#byUser) {
      if (pooled.busy === 0 && now - pooled.lastUsed >= idleMs) {
        this.#byUser.delete(userId);
        void pooled.delivery.close();
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#reaper);
    const all = [...this.#byUser.values()];
    this.#byUser.clear();
    await Promise.all([this.#shared.close(), ...all.map((p) => p.delivery.close())]);
  }
}
