import { eq } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { MailApi } from '../../relay/api.js';
import { systemClock, type Clock, type Timer } from '../../relay/clock.js';
import type { EventBus, MailEvent, MailHeld } from '../../relay/events.js';
import type { MailState } from '../db/schema.js';
import { pushSubscriptions, users } from '../db/schema.js';
import type { Db } from '../db/client.js';
import { mailUrl, type HeldMessage, type LeftMessage, type PushMessage } from '../../push/message.js';
import type { ResultKey } from '../../push/texts.js';
import type { EndpointPolicy } from './endpoint.js';
import { PushSender, type SendOptions } from './sender.js';
import { SubscriptionStore, type Subscription } from './subscriptions.js';
import { ActionTokens, purgeSpentTokens, spendToken, unspendToken, type PushAction } from './tokens.js';
import { loadVapidKeys, type VapidKeys } from './vapid.js';

/**
 * Push notifications for held mail. It listens to the relay's events and never blocks them: an
 * event only puts a task on a bounded queue, worked off by a few tasks at a time, so a slow or
 * hanging push service cannot delay a release. Tasks of one mail run in order (the push that
 * says "Discarded" must not overtake the one that said "Held"). Retries wait on the clock.
 */
const AUDIENCE_TTL_MS = 5000;

export interface PushServiceOptions extends EndpointPolicy {
  db: Db;
  api: MailApi;
  log: Logger;
  /** The key for action tokens: deriveKey(secret, TOKEN_PURPOSE). */
  tokenKey: Buffer;
  subject: string;
  clock?: Clock;
  /** Tests: the certificate of the push-service double. */
  ca?: string | Buffer;
  timeoutMs?: number;
  /** Tasks waiting at most; more are dropped (and logged). */
  queueLimit?: number;
  concurrency?: number;
  retry?: { firstMs?: number; maxMs?: number; attempts?: number };
}

export interface ActResult {
  status: number;
  key: ResultKey;
  mailId?: string;
  action?: PushAction;
  state?: MailState;
}

interface Pushed {
  ownerId: number | null;
  subject: string;
  dueAt: number;
  /** Subscriptions that accepted the "held" push: they get the push that replaces it. */
  delivered: Set<number>;
  left: boolean;
}

const MAX_RECIPIENTS = 3;
const LEFT_TTL_SECONDS = 3600;

export class PushService {
  readonly subscriptions: SubscriptionStore;
  readonly tokens: ActionTokens;
  readonly publicKey: string;
  readonly #o: PushServiceOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #sender: PushSender;
  readonly #queue: Array<() => Promise<void>> = [];
  readonly #tails = new Map<string, Promise<void>>();
  readonly #pushed = new Map<string, Pushed>();
  readonly #timers = new Set<Timer>();
  readonly #idle: Array<() => void> = [];
  #running = 0;
  #unsubscribe: (() => void) | undefined;
  #purge: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  static async create(o: PushServiceOptions): Promise<PushService> {
    return new PushService(o, await loadVapidKeys(o.db));
  }

  private constructor(o: PushServiceOptions, vapid: VapidKeys) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.log.child({ c: 'push' });
    this.publicKey = vapid.publicKey;
    this.subscriptions = new SubscriptionStore(o.db, o);
    this.subscriptions.onChange = () => (this.#audience = undefined);
    this.tokens = new ActionTokens(o.tokenKey, () => this.#clock.now());
    this.#sender = new PushSender({ vapid, subject: o.subject, timeoutMs: o.timeoutMs, ca: o.ca, allowLoopback: o.allowLoopback });
  }

  start(bus: EventBus): void {
    this.#unsubscribe = bus.subscribe((e) => this.#onEvent(e));
    this.#purge = setInterval(() => this.#housekeeping(), 10 * 60_000);
    this.#purge.unref();
  }

  async stop(graceMs = 2000): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    clearInterval(this.#purge);
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    this.#queue.length = 0;
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.#sender.close();
  }

  /** Resolves when nothing is queued or running (retries may still wait on the clock). */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  /** Runs a button's action: verifies and spends the token, then the same domain call as the page. */
  async act(token: string, ip: string): Promise<ActResult> {
    const verified = this.tokens.verify(token);
    if (!verified.ok) {
      this.#log.info({ reason: verified.reason, ip }, 'PUSH_ACTION refused');
      return verified.reason === 'expired' ? { status: 410, key: 'expired' } : { status: 403, key: 'invalid' };
    }
    const { claims } = verified;
    const base = { mailId: claims.mailId, action: claims.action };
    if (!(await spendToken(this.#o.db, claims))) {
      this.#log.info({ id: claims.mailId, action: claims.action, ip }, 'PUSH_ACTION replayed');
      return { ...base, status: 409, key: 'used' };
    }
    const actor = { by: 'push' as const, userId: claims.userId, ip };
    let result;
    try {
      const scope = await this.#scopeOf(claims.userId);
      result = claims.action === 'discard' ? await this.#o.api.discard(scope, claims.mailId, actor) : await this.#o.api.sendNow(scope, claims.mailId, actor);
    } catch (err) {
      await unspendToken(this.#o.db, claims).catch(() => {});
      throw err;
    }
    this.#log.info({ id: claims.mailId, action: claims.action, outcome: result.outcome, ip }, 'PUSH_ACTION');
    if (result.outcome === 'not_found') return { ...base, status: 404, key: 'notFound' };
    if (result.outcome === 'done') return { ...base, status: 200, key: claims.action === 'discard' ? 'discarded' : 'sentNow', state: result.state };
    const state = result.state;
    const key: ResultKey = state === 'discarded' ? 'alreadyDiscarded' : claims.action === 'send' && state !== 'sent' ? 'alreadyGoing' : 'tooLateSent';
    return { ...base, status: 409, key, state };
  }

  /** An admin's token acts like the admin on the page (mail without an owner is theirs). */
  async #scopeOf(userId: number) {
    const [user] = await this.#o.db.select({ isAdmin: users.isAdmin }).from(users).where(eq(users.id, userId));
    return user?.isAdmin ? ({ kind: 'all' } as const) : ({ kind: 'user', userId } as const);
  }

  #onEvent(e: MailEvent): void {
    if (this.#stopped) return;
    if (e.type === 'MailHeld') {
      const entry: Pushed = { ownerId: e.ownerId, subject: e.subject, dueAt: e.dueAt, delivered: new Set(), left: false };
      this.#pushed.set(e.id, entry);
      this.#enqueue(e.id, () => this.#held(e, entry));
    } else if (e.type === 'MailSent' || e.type === 'MailDiscarded' || e.type === 'MailFailed') {
      const entry = this.#pushed.get(e.id);
      if (!entry) return;
      // From now on no "held" push goes out for it, not even one still waiting in the queue.
      entry.left = true;
      const outcome = e.type === 'MailSent' ? 'sent' : e.type === 'MailDiscarded' ? 'discarded' : 'failed';
      this.#enqueue(e.id, () => this.#left(e.id, outcome));
    }
  }

  #enqueue(mailId: string, task: () => Promise<void>): void {
    if (this.#queue.length >= (this.#o.queueLimit ?? 1000)) {
      this.#log.warn({ id: mailId }, 'push queue full, notification dropped');
      return;
    }
    const prev = this.#tails.get(mailId) ?? Promise.resolve();
    let done!: () => void;
    const tail = new Promise<void>((r) => (done = r));
    this.#tails.set(mailId, tail);
    this.#queue.push(async () => {
      try {
        await prev;
        await task();
      } finally {
        done();
        if (this.#tails.get(mailId) === tail) this.#tails.delete(mailId);
      }
    });
    this.#pump();
  }

  #pump(): void {
    while (this.#running < (this.#o.concurrency ?? 4) && this.#queue.length) {
      const task = this.#queue.shift()!;
      this.#running++;
      task()
        .catch((err: unknown) => this.#log.error({ err }, 'push task failed'))
        .finally(() => {
          this.#running--;
          this.#pump();
          if (this.#running === 0 && this.#queue.length === 0) for (const r of this.#idle.splice(0)) r();
        });
    }
  }

  /**
   * Who has a device at all, and who the admins are: read at most every few seconds, and again
   * after a device subscribes here. Most mail belongs to people without a device; their mail then
   * costs no database query on the intake path.
   */
  #audience: { at: number; subscribers: Set<number>; admins: number[] } | undefined;

  async #who(): Promise<{ subscribers: Set<number>; admins: number[] }> {
    const now = Date.now();
    if (this.#audience && now - this.#audience.at < AUDIENCE_TTL_MS) return this.#audience;
    const [subs, admins] = await Promise.all([
      this.#o.db.selectDistinct({ userId: pushSubscriptions.userId }).from(pushSubscriptions),
      this.#o.db.select({ id: users.id }).from(users).where(eq(users.isAdmin, true)),
    ]);
    this.#audience = { at: now, subscribers: new Set(subs.map((r) => r.userId)), admins: admins.map((a) => a.id) };
    return this.#audience;
  }

  async #recipientsOf(ownerId: number | null): Promise<Subscription[]> {
    const who = await this.#who();
    const ids = (ownerId !== null ? [ownerId] : who.admins).filter((id) => who.subscribers.has(id));
    return (await Promise.all(ids.map((id) => this.subscriptions.forUser(id)))).flat();
  }

  async #held(e: MailHeld, entry: Pushed): Promise<void> {
    if (entry.left) return;
    const subs = await this.#recipientsOf(e.ownerId);
    if (subs.length === 0) {
      this.#pushed.delete(e.id);
      return;
    }
    await Promise.all(
      subs.map((sub) => {
        const message: HeldMessage = {
          v: 1,
          kind: 'held',
          id: e.id,
          subject: cut(e.subject, 100),
          to: e.recipients.slice(0, MAX_RECIPIENTS).map((r) => cut(r, 64)),
          more: Math.max(0, e.recipients.length - MAX_RECIPIENTS),
          dueAt: e.dueAt,
          url: mailUrl(e.id),
          tokens: {
            discard: this.tokens.issue(e.id, 'discard', sub.userId, e.dueAt),
            send: this.tokens.issue(e.id, 'send', sub.userId, e.dueAt),
          },
        };
        return this.#deliver(e.id, sub, message, 'high', entry, 1);
      }),
    );
  }

  async #left(id: string, outcome: LeftMessage['outcome']): Promise<void> {
    const entry = this.#pushed.get(id);
    if (!entry) return;
    this.#pushed.delete(id);
    if (entry.delivered.size === 0) return;
    const subs = (await this.#recipientsOf(entry.ownerId)).filter((s) => entry.delivered.has(s.id));
    const message: LeftMessage = { v: 1, kind: 'left', id, subject: cut(entry.subject, 100), outcome, url: mailUrl(id) };
    await Promise.all(subs.map((sub) => this.#deliver(id, sub, message, 'normal', undefined, 1)));
  }

  /** One push to one device; `held` is set for the first push of a mail, which ends with its hold. */
  async #deliver(mailId: string, sub: Subscription, message: PushMessage, urgency: SendOptions['urgency'], held: Pushed | undefined, attempt: number): Promise<void> {
    if (this.#stopped || held?.left) return;
    const ttlSeconds = held ? Math.floor((held.dueAt - this.#clock.now()) / 1000) : LEFT_TTL_SECONDS;
    if (ttlSeconds <= 0) return;
    const result = await this.#sender.send(sub, message, { ttlSeconds, urgency, topic: mailId.replaceAll('-', '') });
    const log = { id: mailId, sub: sub.id, kind: message.kind, attempt };
    const db = this.subscriptions;
    switch (result.kind) {
      case 'delivered':
        held?.delivered.add(sub.id);
        await db.succeeded(sub.id, new Date(this.#clock.now()));
        this.#log.debug(log, 'PUSHED');
        return;
      case 'gone':
        await db.drop(sub.id);
        this.#log.info({ ...log, status: result.status }, 'push subscription gone, deleted');
        return;
      case 'refused':
        await db.failed(sub.id);
        this.#log.warn({ ...log, status: result.status, reason: result.reason }, 'push refused');
        return;
      case 'retry': {
        await db.failed(sub.id);
        const r = this.#o.retry ?? {};
        if (attempt >= (r.attempts ?? 6)) {
          this.#log.warn({ ...log, reason: result.reason }, 'push given up');
          return;
        }
        const wait = Math.min(result.afterMs ?? (r.firstMs ?? 2000) * 2 ** (attempt - 1), r.maxMs ?? 60_000);
        this.#log.info({ ...log, reason: result.reason, waitMs: wait }, 'push deferred');
        const timer = this.#clock.at(this.#clock.now() + wait, () => {
          this.#timers.delete(timer);
          this.#enqueue(mailId, () => this.#deliver(mailId, sub, message, urgency, held, attempt + 1));
        });
        this.#timers.add(timer);
        return;
      }
    }
  }

  #housekeeping(): void {
    const now = this.#clock.now();
    for (const [id, p] of this.#pushed) if (p.dueAt < now - 24 * 3600_000) this.#pushed.delete(id);
    purgeSpentTokens(this.#o.db, now).catch((err: unknown) => this.#log.warn({ err }, 'spent tokens purge failed'));
  }
}

function cut(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
