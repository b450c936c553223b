import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../server/config.js';
import type { Db } from '../server/db/client.js';
import { CredentialStore } from '../server/auth/credentials.js';
import { createAuthenticator, type Authenticator } from '../server/auth/login.js';
import { Throttle } from '../server/auth/throttle.js';
import { loadSecret } from '../server/secret.js';
import { MailApi } from './api.js';
import { systemClock, type Clock } from './clock.js';
import { OutboxDelivery, SmtpDelivery, type Delivery } from './delivery.js';
import { buildReport, noticeMail } from './dsn.js';
import { EventBus } from './events.js';
import { Intake, type SessionUser } from './intake.js';
import { PassThroughDelivery } from './pass-through.js';
import { Policy } from './policy.js';
import { MailStates } from './state.js';
import { ServerTls } from './tls.js';
import { tlsModeOf, type UpstreamTimeouts } from './upstream.js';
import { Worker } from './worker.js';

/**
 * The relay: SMTP intake, the state machine, the delivery worker and the domain API, wired
 * together once per process. The web server starts it from its hooks; tests start it directly.
 */
export interface RelayOptions {
  config: Config;
  db: Db;
  log: Logger;
  clock?: Clock;
  /** Tests shorten these to make a silent upstream cost milliseconds. */
  upstreamTimeouts?: UpstreamTimeouts;
  worker?: { concurrency?: number; leaseMs?: number; sweepMs?: number };
  /** Run the SMTP listener (default) and/or the worker. */
  intake?: boolean;
  deliver?: boolean;
  throttle?: Throttle;
  /** How often the certificate files are checked for a renewal (default 10 s). */
  tlsWatchMs?: number;
  /** AUTH_MODE=upstream: how long a user's upstream connection may stay unused (default 60 s). */
  passThroughIdleMs?: number;
}

const FINAL_EVENTS = new Set(['MailSent', 'MailFailed', 'MailDiscarded']);

export class Relay {
  readonly bus = new EventBus();
  readonly states: MailStates;
  readonly policy: Policy;
  readonly api: MailApi;
  readonly worker: Worker | undefined;
  readonly intake: Intake | undefined;
  readonly delivery: Delivery;
  readonly throttle: Throttle;
  readonly name: string;
  /** The one login check of SMTP AUTH and the web login form. */
  readonly auth: Authenticator;
  /** The certificate shown to mailers (STARTTLS, SMTPS); its `info.fingerprint` is for the settings page. */
  readonly tls: ServerTls;
  /** AUTH_MODE=upstream: the users' provider logins, while their mail waits. */
  readonly credentials: CredentialStore | undefined;
  readonly #o: RelayOptions;
  /** The sealed pass-through login of each SMTP session, to store again with each mail it hands in. */
  readonly #sealed = new WeakMap<SessionUser, Buffer>();
  #credentialSweep: ReturnType<typeof setInterval> | undefined;
  #unsubscribe: (() => void) | undefined;
  smtpAddress: AddressInfo | undefined;
  smtpsAddress: AddressInfo | undefined;

  constructor(o: RelayOptions) {
    this.#o = o;
    const { config, db, log } = o;
    const clock = o.clock ?? systemClock;
    this.name = config.smtp.name ?? os.hostname();
    this.throttle = o.throttle ?? new Throttle();
    this.states = new MailStates({ db, clock, bus: this.bus, log, retryWindowSeconds: config.retryWindowSeconds });
    this.policy = new Policy(db, config.smtp.relayNetworks, config.holdSeconds);
    this.credentials = config.authMode === 'upstream' ? new CredentialStore(loadSecret(config.secretKey, config.dataDir)) : undefined;
    this.auth = createAuthenticator({ mode: config.authMode, db, log, upstream: config.upstream });
    this.tls = new ServerTls({ certFile: config.smtp.tlsCert, keyFile: config.smtp.tlsKey, dataDir: config.dataDir, name: this.name, log, watchMs: o.tlsWatchMs });
    this.delivery = this.#makeDelivery();
    if (o.deliver !== false) {
      this.worker = new Worker({
        db,
        states: this.states,
        delivery: this.delivery,
        clock,
        log,
        reportingMta: this.name,
        historyDays: config.historyDays,
        // Three mails per upstream connection: one being sent, the next ones claimed and ready.
        concurrency: Math.max(16, 3 * config.upstreamConnections),
        ...o.worker,
      });
    }
    this.api = new MailApi(db, this.states, this.bus, () => void this.worker?.poll());
    if (o.intake !== false) {
      this.intake = new Intake(
        { host: config.smtp.host, port: config.smtp.port, smtpsPort: config.smtp.smtpsPort, name: this.name, maxMessageBytes: config.smtp.maxMessageBytes, tls: this.tls },
        {
          db,
          states: this.states,
          policy: this.policy,
          clock,
          log,
          throttle: this.throttle,
          authenticate: (login, password) => this.#smtpLogin(login, password),
          onStored: (dueAt, user) => this.#stored(dueAt, user),
          onTooBig: (info) => this.#tooBig(info),
        },
      );
    }
  }

  #makeDelivery(): Delivery {
    const { config, db, log } = this.#o;
    const url = config.upstream;
    if (!url) return new OutboxDelivery();
    const mode = tlsModeOf(url);
    if (mode === 'opportunistic' || mode === 'none') {
      log.warn(
        { upstream: url.host, tls: mode },
        mode === 'none'
          ? 'UPSTREAM_URL has tls=none: mail AND the upstream login go to the upstream UNENCRYPTED'
          : 'UPSTREAM_URL has tls=opportunistic: an upstream that does not offer STARTTLS gets mail and login UNENCRYPTED',
      );
    }
    if (this.credentials) {
      return new PassThroughDelivery({
        url,
        db,
        credentials: this.credentials,
        log,
        timeouts: this.#o.upstreamTimeouts,
        heloName: this.name,
        idleMs: this.#o.passThroughIdleMs,
        maxConnections: config.upstreamConnections,
      });
    }
    return new SmtpDelivery(url, { timeouts: this.#o.upstreamTimeouts, heloName: this.name, maxConnections: config.upstreamConnections });
  }

  async start(): Promise<void> {
    if (this.intake) await this.tls.load();
    const credentials = this.credentials;
    if (credentials && this.#o.deliver !== false) {
      // A user's provider login stays only while mail of theirs waits.
      this.#unsubscribe = this.bus.subscribe((e) => {
        if (FINAL_EVENTS.has(e.type) && e.ownerId !== null) void this.#forget(e.ownerId);
      });
      this.#credentialSweep = setInterval(() => void this.#forget(), 60_000);
      this.#credentialSweep.unref();
      await this.#forget();
    }
    this.worker?.start();
    if (this.intake) {
      this.smtpAddress = await this.intake.start();
      this.smtpsAddress = this.intake.smtpsAddress;
    }
  }

  /** New SMTP connections get 421; messages being received are stored; deliveries finish or go back. */
  async stop(): Promise<void> {
    this.intake?.drain();
    await this.intake?.close();
    this.tls.stop();
    await this.worker?.stop();
    this.#unsubscribe?.();
    if (this.#credentialSweep) clearInterval(this.#credentialSweep);
    await this.delivery.close();
  }

  async #smtpLogin(login: string, password: string): Promise<SessionUser | undefined> {
    const result = await this.auth.check(login, password, 'smtp');
    if (!result) return undefined;
    const user: SessionUser = { id: result.user.id, email: result.user.email, isAdmin: result.user.isAdmin };
    // Kept sealed with the session, and written to the database only with a mail to deliver.
    if (result.upstream && this.credentials) this.#sealed.set(user, this.credentials.seal(user.id, result.upstream));
    return user;
  }

  #stored(dueAt: number, user: SessionUser | null): void {
    const sealed = user ? this.#sealed.get(user) : undefined;
    if (!user || !sealed || !this.credentials) return this.worker?.notify(dueAt);
    const now = new Date((this.#o.clock ?? systemClock).now());
    void this.credentials
      .saveSealed(this.#o.db, user.id, sealed, now, true)
      .catch((err: unknown) => this.#o.log.error({ err, user: user.email }, 'could not store the upstream login'))
      .finally(() => this.worker?.notify(dueAt));
  }

  async #forget(userId?: number): Promise<void> {
    try {
      const gone = await this.credentials!.removeIdle(this.#o.db, userId);
      if (gone.length) this.#o.log.info({ users: gone }, 'upstream logins deleted: no mail of theirs waits');
    } catch (err) {
      this.#o.log.error({ err }, 'could not delete idle upstream logins');
    }
  }

  async #tooBig(info: { user: SessionUser; mailFrom: string; recipients: string[]; headers: Buffer; subject: string; size: number; clientIp: string }): Promise<void> {
    const clock = this.#o.clock ?? systemClock;
    const now = new Date(clock.now());
    const to = info.mailFrom || info.user.email;
    const input = {
      reportingMta: this.name,
      to,
      originalId: '(refused at intake)',
      originalSubject: info.subject,
      arrivalDate: now,
      failed: info.recipients.map((address) => ({
        address,
        reply: `552 5.3.4 Message too big: ${info.size} bytes, the limit is ${this.#o.config.smtp.maxMessageBytes} bytes`,
      })),
      originalHeaders: info.headers,
      reason: 'too_big' as const,
      now,
    };
    const notice = noticeMail(input, await buildReport(input), info.user.id);
    const stored = await this.states.submit(notice.mail, notice.content);
    this.worker?.notify(stored.dueAt);
  }
}
