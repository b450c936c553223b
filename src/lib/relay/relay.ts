import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../server/config.js';
import type { Db } from '../server/db/client.js';
import { Throttle } from '../server/auth/throttle.js';
import { authenticate } from '../server/users.js';
import { MailApi } from './api.js';
import { systemClock, type Clock } from './clock.js';
import { OutboxDelivery, SmtpDelivery, type Delivery } from './delivery.js';
import { buildReport, noticeMail } from './dsn.js';
import { EventBus } from './events.js';
import { Intake, readTls, type SessionUser } from './intake.js';
import { Policy } from './policy.js';
import { MailStates } from './state.js';
import { storeContent } from './store.js';
import type { UpstreamTimeouts } from './upstream.js';
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
}

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
  readonly #o: RelayOptions;
  smtpAddress: AddressInfo | undefined;

  constructor(o: RelayOptions) {
    this.#o = o;
    const { config, db, log } = o;
    const clock = o.clock ?? systemClock;
    this.name = config.smtp.name ?? os.hostname();
    this.throttle = o.throttle ?? new Throttle();
    this.states = new MailStates({ db, clock, bus: this.bus, log, retryWindowSeconds: config.retryWindowSeconds });
    this.policy = new Policy(db, config.smtp.relayNetworks, config.holdSeconds);
    this.delivery = config.upstream ? new SmtpDelivery(config.upstream, { timeouts: o.upstreamTimeouts, heloName: this.name }) : new OutboxDelivery();
    if (o.deliver !== false) {
      this.worker = new Worker({ db, states: this.states, delivery: this.delivery, clock, log, reportingMta: this.name, historyDays: config.historyDays, ...o.worker });
    }
    this.api = new MailApi(db, this.states, this.bus, () => void this.worker?.poll());
    if (o.intake !== false) {
      const tls = config.smtp.tlsCert && config.smtp.tlsKey ? readTls(config.smtp.tlsCert, config.smtp.tlsKey) : undefined;
      this.intake = new Intake(
        { host: config.smtp.host, port: config.smtp.port, name: this.name, maxMessageBytes: config.smtp.maxMessageBytes, tls },
        {
          db,
          states: this.states,
          policy: this.policy,
          clock,
          log,
          throttle: this.throttle,
          authenticate: async (email, password) => {
            const user = await authenticate(db, email, password);
            return user ? { id: user.id, email: user.email, isAdmin: user.isAdmin } : undefined;
          },
          onStored: (dueAt) => this.worker?.notify(dueAt),
          onTooBig: (info) => this.#tooBig(info),
        },
      );
    }
  }

  async start(): Promise<void> {
    this.worker?.start();
    if (this.intake) this.smtpAddress = await this.intake.start();
  }

  /** New SMTP connections get 421; messages being received are stored; deliveries finish or go back. */
  async stop(): Promise<void> {
    this.intake?.drain();
    await this.intake?.close();
    await this.worker?.stop();
    await this.delivery.close();
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
    const raw = await buildReport(input);
    const contentId = randomUUID();
    const stored = await this.states.accept(noticeMail(input, raw, contentId, info.user.id), (tx) => storeContent(tx, raw, contentId).then(() => {}));
    this.worker?.notify(stored.dueAt);
  }
}
