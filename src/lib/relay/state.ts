import { and, eq, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { Logger } from 'pino';
import { executePrepared, rows, type Db, type DbOrTx } from '../server/db/client.js';
import { contentChunks, mailRecipients, mails, type MailState, type MailSummary } from '../server/db/schema.js';
import type { Clock } from './clock.js';
import type { EventBus, MailEvent } from './events.js';
import { nextAttemptAt } from './retry.js';

const MAX_GROUP_COMMIT = 200;
const MAX_COMMITS_IN_FLIGHT = 3;
/** Messages up to this size are read together with their claim. */
const PRELOAD_BYTES = 256 * 1024;

export interface ContentRows {
  contentId: string;
  firstSeq: number;
  pieces: Buffer[];
}

/**
 * The only place that changes a mail's state. Every transition is a compare-and-set in SQL (the
 * UPDATE names the state it expects), so two processes, or a person and the worker, can race on
 * one mail and exactly one of them wins. Events are emitted after the transaction commits, and
 * every transition writes one log line with a stable verb and the mail id.
 *
 *   held ──► discarded                     (Discard)
 *   held ──► queued                        (Send now)
 *   held | queued | deferred ──► sending   (claimed by a worker when due)
 *   sending ──► sent | deferred | failed   (by the worker that holds the lease and fence)
 *   sending ──► deferred                   (lease expired or given back at shutdown)
 *
 * `queued` is a mail that goes without (more) hold: excluded at intake, released by hand, or an
 * error mail that mailhold wrote itself.
 */

export const WAITING: MailState[] = ['held', 'queued', 'deferred'];
export const FINAL: MailState[] = ['discarded', 'sent', 'failed'];

/** Whose mail an action may touch. */
export type Scope = { kind: 'all' } | { kind: 'user'; userId: number } | { kind: 'ip'; ip: string };

/** Who acted, for the history ("discarded from the notification by ..."). */
export interface Actor {
  by: 'page' | 'push' | 'admin' | 'cli' | 'api';
  userId?: number | null;
  ip?: string | null;
}

export type ActionResult =
  | { outcome: 'done'; id: string; state: MailState }
  | { outcome: 'too_late'; id: string; state: MailState; at: number | null }
  | { outcome: 'not_found'; id: string };

export interface NewMail {
  id: string;
  kind: 'mail' | 'notice';
  ownerId: number | null;
  authUser: string | null;
  clientIp: string;
  helo: string;
  mailFrom: string;
  recipients: string[];
  smtpUtf8: boolean;
  body8bit: boolean;
  size: number;
  contentId: string;
  headers: Buffer;
  subject: string;
  summary: MailSummary;
  bounceAllowed: boolean;
  receivedAt: number;
  holdSeconds: number;
  excludedBy: 'sender' | 'recipient' | 'source_ip' | null;
  noticeFor?: string | null;
}

export interface Claim {
  id: string;
  kind: 'mail' | 'notice';
  fence: number;
  mailFrom: string;
  contentId: string | null;
  ownerId: number | null;
  /** The SMTP AUTH login it came in with; null from an allowlisted network, and for notices. */
  authUser: string | null;
  clientIp: string;
  subject: string;
  bounceAllowed: boolean;
  body8bit: boolean;
  smtpUtf8: boolean;
  size: number;
  headers: Buffer;
  receivedAt: Date;
  attempts: number;
  firstAttemptAt: Date;
  recipients: Array<{ seq: number; address: string }>;
  /** The whole message, read with the claim when it is small (saves a query per delivery). */
  content?: Buffer[];
}

/** One row of the claim statement; every column is null when nothing was claimed. */
interface ClaimRow {
  next_due: number | null;
  id: string | null;
  kind: Claim['kind'] | null;
  fence: number | null;
  mail_from: string | null;
  content_id: string | null;
  owner_id: number | null;
  auth_user: string | null;
  client_ip: string | null;
  subject: string | null;
  bounce_allowed: boolean | null;
  body_8bit: boolean | null;
  smtp_utf8: boolean | null;
  size: number | null;
  headers: string | null;
  received_at: number | null;
  attempts: number | null;
  first_attempt_at: number | null;
  recipients: string | null;
  content: string | null;
}

export interface RecipientOutcome {
  seq: number;
  result: 'sent' | 'failed' | 'deferred';
  reply: string;
}

export interface FinishExtras {
  /** Delivered into the built-in outbox: the content moves there instead of being deleted. */
  keepContent?: boolean;
  /** More work in the same transaction (the outbox entry). */
  beforeCommit?: (tx: DbOrTx) => Promise<void>;
  /** Writes the error mail for recipients that failed in this attempt, in the same transaction. */
  notice?: (failed: Array<{ address: string; reply: string }>) => Promise<{ mail: NewMail; content: ContentRows } | null>;
}

export class LeaseLostError extends Error {
  constructor(id: string) {
    super(`lost the lease on mail ${id}; another worker has it now`);
  }
}

export interface StateDeps {
  db: Db;
  clock: Clock;
  bus: EventBus;
  log: Logger;
  retryWindowSeconds: number;
}

export class MailStates {
  readonly #d: StateDeps;

  constructor(deps: StateDeps) {
    this.#d = deps;
  }

  #now(): Date {
    return new Date(this.#d.clock.now());
  }

  #emit(events: MailEvent[]): void {
    for (const e of events) {
      const { type, id, state, ...rest } = e;
      const verb = type.replace(/^Mail/, '').toLowerCase();
      const fields: Record<string, unknown> = { mail: id, state };
      if ('reason' in rest) fields.reason = rest.reason;
      if ('by' in rest) fields.by = rest.by;
      if ('reply' in rest) fields.reply = rest.reply;
      if ('dueAt' in rest) fields.due = new Date(rest.dueAt).toISOString();
      this.#d.log.info(fields, verb);
      this.#d.bus.emit(e);
    }
  }

  #queue: Array<{ mail: NewMail; content: ContentRows; resolve: (e: MailEvent) => void; reject: (err: unknown) => void }> = [];
  #inFlight = 0;

  /**
   * Commits a mail received over SMTP, together with the rest of its content. Mails that arrive
   * while a commit is in flight go together in the next transaction (group commit): one round
   * of statements and one durable commit for all of them, which is what lets intake keep up with
   * many sessions at once. If a shared commit fails, each mail is tried on its own, so that one
   * bad mail cannot fail the others.
   */
  submit(mail: NewMail, content: ContentRows): Promise<{ id: string; state: MailState; dueAt: number }> {
    return new Promise<MailEvent>((resolve, reject) => {
      this.#queue.push({ mail, content, resolve, reject });
      void this.#drain();
    }).then((event) => ({ id: mail.id, state: event.state, dueAt: 'dueAt' in event ? event.dueAt : mail.receivedAt }));
  }

  async #drain(): Promise<void> {
    // A few commits may be in flight at once (PostgreSQL flushes their WAL together); each takes
    // whatever has queued up by the time it starts.
    while (this.#queue.length && this.#inFlight < MAX_COMMITS_IN_FLIGHT) {
      const batch = this.#queue.splice(0, MAX_GROUP_COMMIT);
      this.#inFlight++;
      void this.#commitBatch(batch).finally(() => {
        this.#inFlight--;
        void this.#drain();
      });
    }
  }

  async #commitBatch(batch: Array<{ mail: NewMail; content: ContentRows; resolve: (e: MailEvent) => void; reject: (err: unknown) => void }>): Promise<void> {
    try {
      const started = performance.now();
      const events = await insertMails(this.#d.db, batch.map((b) => b.mail), batch.map((b) => b.content), { prepared: true });
      this.#d.log.debug({ mails: batch.length, ms: Math.round((performance.now() - started) * 10) / 10 }, 'group commit');
      batch.forEach((b, i) => b.resolve(events[i]!));
      this.#emit(events);
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      for (const b of batch) {
        try {
          const [event] = await insertMails(this.#d.db, [b.mail], [b.content], { prepared: true });
          b.resolve(event!);
          this.#emit([event!]);
        } catch (own) {
          b.reject(own);
        }
      }
    }
  }

  async discard(id: string, scope: Scope, actor: Actor): Promise<ActionResult> {
    const now = this.#now();
    const result = await this.#d.db.transaction(async (tx) => {
      const [held] = await tx
        .select({ contentId: mails.contentId })
        .from(mails)
        .where(and(eq(mails.id, id), eq(mails.state, 'held'), scopeWhere(scope)))
        .for('update');
      if (!held) return null;
      const [row] = await tx
        .update(mails)
        .set({ state: 'discarded', finishedAt: now, contentId: null, actionBy: actor.by, actionUserId: actor.userId ?? null, actionIp: actor.ip ?? null })
        .where(and(eq(mails.id, id), eq(mails.state, 'held')))
        .returning({ ownerId: mails.ownerId, clientIp: mails.clientIp });
      if (!row) return null;
      if (held.contentId) await tx.delete(contentChunks).where(eq(contentChunks.contentId, held.contentId));
      return row;
    });
    if (!result) return this.#whyNot(id, scope);
    this.#emit([{ type: 'MailDiscarded', id, ownerId: result.ownerId, clientIp: result.clientIp, state: 'discarded', at: now.getTime(), by: actor.by }]);
    return { outcome: 'done', id, state: 'discarded' };
  }

  /** Send now: the hold ends at once; the worker takes it from the queue. */
  async release(id: string, scope: Scope, actor: Actor): Promise<ActionResult> {
    const now = this.#now();
    const rows = await this.#d.db
      .update(mails)
      .set({ state: 'queued', dueAt: now, actionBy: actor.by, actionUserId: actor.userId ?? null, actionIp: actor.ip ?? null })
      .where(and(eq(mails.id, id), eq(mails.state, 'held'), scopeWhere(scope)))
      .returning({ ownerId: mails.ownerId, clientIp: mails.clientIp });
    const row = rows[0];
    if (!row) return this.#whyNot(id, scope);
    this.#emit([{ type: 'MailQueued', id, ownerId: row.ownerId, clientIp: row.clientIp, state: 'queued', at: now.getTime(), reason: 'released', by: actor.by }]);
    return { outcome: 'done', id, state: 'queued' };
  }

  async discardAll(scope: Scope, actor: Actor, ids?: string[]): Promise<string[]> {
    const now = this.#now();
    const rows = await this.#d.db.transaction(async (tx) => {
      const held = await tx
        .select({ id: mails.id, contentId: mails.contentId })
        .from(mails)
        .where(and(eq(mails.state, 'held'), scopeWhere(scope), ids ? inArray(mails.id, ids) : undefined))
        .for('update', { skipLocked: true });
      if (held.length === 0) return [];
      const done = await tx
        .update(mails)
        .set({ state: 'discarded', finishedAt: now, contentId: null, actionBy: actor.by, actionUserId: actor.userId ?? null, actionIp: actor.ip ?? null })
        .where(and(inArray(mails.id, held.map((h) => h.id)), eq(mails.state, 'held')))
        .returning({ id: mails.id, ownerId: mails.ownerId, clientIp: mails.clientIp });
      const contentIds = held.filter((h) => h.contentId && done.some((d) => d.id === h.id)).map((h) => h.contentId!);
      if (contentIds.length) await tx.delete(contentChunks).where(inArray(contentChunks.contentId, contentIds));
      return done;
    });
    this.#emit(rows.map((r) => ({ type: 'MailDiscarded' as const, id: r.id, ownerId: r.ownerId, clientIp: r.clientIp, state: 'discarded' as const, at: now.getTime(), by: actor.by })));
    return rows.map((r) => r.id);
  }

  async releaseAll(scope: Scope, actor: Actor, ids?: string[]): Promise<string[]> {
    const now = this.#now();
    const rows = await this.#d.db
      .update(mails)
      .set({ state: 'queued', dueAt: now, actionBy: actor.by, actionUserId: actor.userId ?? null, actionIp: actor.ip ?? null })
      .where(and(eq(mails.state, 'held'), scopeWhere(scope), ids ? inArray(mails.id, ids) : undefined))
      .returning({ id: mails.id, ownerId: mails.ownerId, clientIp: mails.clientIp });
    this.#emit(rows.map((r) => ({ type: 'MailQueued' as const, id: r.id, ownerId: r.ownerId, clientIp: r.clientIp, state: 'queued' as const, at: now.getTime(), reason: 'released' as const, by: actor.by })));
    return rows.map((r) => r.id);
  }

  async #whyNot(id: string, scope: Scope): Promise<ActionResult> {
    const [row] = await this.#d.db
      .select({ state: mails.state, finishedAt: mails.finishedAt, dueAt: mails.dueAt })
      .from(mails)
      .where(and(eq(mails.id, id), scopeWhere(scope)));
    if (!row) return { outcome: 'not_found', id };
    const at = row.finishedAt ?? (row.state === 'held' ? null : row.dueAt);
    return { outcome: 'too_late', id, state: row.state, at: at ? at.getTime() : null };
  }

  /**
   * Takes up to `limit` due mails for delivery under a lease, in one statement: the claim itself
   * (FOR UPDATE SKIP LOCKED, so workers never take the same mail), the pending recipients, the
   * whole message of each small mail, and the next due time of what stays waiting, for the
   * worker's timer. One round trip per claim is what lets release keep pace with intake. The
   * fence, bumped on every claim, makes a worker whose lease expired unable to finish.
   */
  async claim(owner: string, leaseMs: number, limit: number): Promise<{ claims: Claim[]; nextDue: number | undefined }> {
    const now = this.#now();
    const found = await rows<ClaimRow>(
      this.#d.db,
      sql`with due as (
            select id from ${mails}
            where state in ('held', 'queued', 'deferred') and due_at <= ${now.toISOString()}::timestamptz
            order by due_at limit ${limit} for update skip locked
          ), claimed as (
            update ${mails} m set state = 'sending', lease_owner = ${owner},
              lease_until = ${new Date(now.getTime() + leaseMs).toISOString()}::timestamptz,
              fence = m.fence + 1, attempts = m.attempts + 1,
              first_attempt_at = coalesce(m.first_attempt_at, ${now.toISOString()}::timestamptz)
            from due where m.id = due.id and m.state in ('held', 'queued', 'deferred')
            returning m.*
          )
          select (select extract(epoch from min(w.due_at)) * 1000 from ${mails} w
                  where w.state in ('held', 'queued', 'deferred') and w.id not in (select id from claimed))::float8 as next_due,
            c.id::text as id, c.kind, c.fence, c.mail_from, c.content_id::text as content_id, c.owner_id, c.auth_user,
            c.client_ip, c.subject, c.bounce_allowed, c.body_8bit, c.smtp_utf8, c.size::float8 as size,
            encode(c.headers, 'base64') as headers, (extract(epoch from c.received_at) * 1000)::float8 as received_at,
            c.attempts, (extract(epoch from c.first_attempt_at) * 1000)::float8 as first_attempt_at,
            (select coalesce(json_agg(json_build_object('seq', r.seq, 'address', r.address) order by r.seq), '[]')::text
               from ${mailRecipients} r where r.mail_id = c.id and r.state = 'pending') as recipients,
            case when c.size <= ${PRELOAD_BYTES} then
              (select string_agg(encode(k.data, 'base64'), ',' order by k.seq) from ${contentChunks} k where k.content_id = c.content_id)
            end as content
          from (select 1) one left join claimed c on true`,
    );
    const nextDue = found[0]?.next_due ?? undefined;
    const claimed = found
      .filter((r) => r.id !== null)
      .map((r): Claim => {
        const claim: Claim = {
          id: r.id!,
          kind: r.kind!,
          fence: Number(r.fence),
          mailFrom: r.mail_from!,
          contentId: r.content_id,
          ownerId: r.owner_id,
          authUser: r.auth_user,
          clientIp: r.client_ip!,
          subject: r.subject!,
          bounceAllowed: r.bounce_allowed!,
          body8bit: r.body_8bit!,
          smtpUtf8: r.smtp_utf8!,
          size: Number(r.size),
          headers: Buffer.from(r.headers!, 'base64'),
          receivedAt: new Date(Number(r.received_at)),
          attempts: Number(r.attempts),
          firstAttemptAt: new Date(Number(r.first_attempt_at ?? now.getTime())),
          recipients: JSON.parse(r.recipients ?? '[]') as Claim['recipients'],
        };
        // Only a complete message is used; anything odd is read again while sending.
        const parts = r.content ? r.content.split(',').map((b) => Buffer.from(b, 'base64')) : undefined;
        if (parts && parts.reduce((n, p) => n + p.length, 0) === claim.size) claim.content = parts;
        return claim;
      });
    this.#emit(claimed.map((c) => ({ type: 'MailSending' as const, id: c.id, ownerId: c.ownerId, clientIp: c.clientIp, state: 'sending' as const, at: now.getTime() })));
    return { claims: claimed, nextDue: nextDue === null ? undefined : nextDue };
  }

  /** Extends a lease during a long delivery; false when the lease is no longer ours. */
  async renew(claim: Claim, owner: string, leaseMs: number): Promise<boolean> {
    const rows = await this.#d.db
      .update(mails)
      .set({ leaseUntil: new Date(this.#d.clock.now() + leaseMs) })
      .where(and(eq(mails.id, claim.id), eq(mails.state, 'sending'), eq(mails.fence, claim.fence), eq(mails.leaseOwner, owner)))
      .returning({ id: mails.id });
    return rows.length > 0;
  }

  /**
   * Records the outcome of one delivery attempt. Recipients still deferred when the retry window
   * is over fail. The mail ends `sent` when nothing is pending and at least one recipient got it,
   * `failed` when none did, `deferred` while some recipient waits for a retry.
   */
  async finish(claim: Claim, outcomes: RecipientOutcome[], extras: FinishExtras = {}): Promise<MailState> {
    const now = this.#now();
    const events: MailEvent[] = [];
    const state = await this.#d.db.transaction(async (tx) => {
      // The final UPDATE of the mail row checks the fence; if another worker took the mail over
      // meanwhile, it finds nothing and everything written here is rolled back.
      const ours = and(eq(mails.id, claim.id), eq(mails.state, 'sending'), eq(mails.fence, claim.fence));
      const deferred = outcomes.filter((o) => o.result === 'deferred');
      const next = deferred.length ? nextAttemptAt(claim.attempts, claim.firstAttemptAt.getTime(), now.getTime(), this.#d.retryWindowSeconds) : undefined;
      const finalOutcomes = outcomes.map((o) =>
        o.result === 'deferred' && next === undefined ? { ...o, result: 'failed' as const, reply: `retry window over, last reply: ${o.reply}` } : o,
      );
      for (const o of finalOutcomes) {
        if (o.result === 'deferred') {
          await tx.update(mailRecipients).set({ reply: o.reply, updatedAt: now }).where(and(eq(mailRecipients.mailId, claim.id), eq(mailRecipients.seq, o.seq)));
        } else {
          await tx.update(mailRecipients).set({ state: o.result, reply: o.reply, updatedAt: now }).where(and(eq(mailRecipients.mailId, claim.id), eq(mailRecipients.seq, o.seq)));
        }
      }
      const counts = await tx
        .select({ state: mailRecipients.state, n: sql<number>`count(*)::int` })
        .from(mailRecipients)
        .where(eq(mailRecipients.mailId, claim.id))
        .groupBy(mailRecipients.state);
      const count = (s: string) => counts.find((c) => c.state === s)?.n ?? 0;
      const lastReply = (finalOutcomes.find((o) => o.result !== 'sent') ?? finalOutcomes[0])?.reply ?? null;

      const failedNow = finalOutcomes.filter((o) => o.result === 'failed');
      if (failedNow.length && extras.notice) {
        const notice = await extras.notice(
          failedNow.map((o) => ({ address: claim.recipients.find((r) => r.seq === o.seq)?.address ?? '', reply: o.reply })),
        );
        if (notice) events.push(...(await insertMails(tx, [notice.mail], [notice.content])));
      }

      const base = { id: claim.id, ownerId: claim.ownerId, clientIp: claim.clientIp, at: now.getTime() };
      if (count('pending') > 0 && next !== undefined) {
        const moved = await tx
          .update(mails)
          .set({ state: 'deferred', dueAt: new Date(next), lastReply, leaseOwner: null, leaseUntil: null })
          .where(ours)
          .returning({ id: mails.id });
        if (moved.length === 0) throw new LeaseLostError(claim.id);
        events.unshift({ ...base, type: 'MailDeferred', state: 'deferred', dueAt: next, reply: lastReply ?? '' });
        return 'deferred' as const;
      }
      const final: MailState = count('sent') > 0 ? 'sent' : 'failed';
      const [row] = await tx
        .update(mails)
        .set({ state: final, finishedAt: now, lastReply, leaseOwner: null, leaseUntil: null, contentId: null })
        .where(ours)
        .returning({ id: mails.id });
      if (!row) throw new LeaseLostError(claim.id);
      if (final === 'sent' && extras.beforeCommit) await extras.beforeCommit(tx);
      if (row && claim.contentId && !extras.keepContent) await tx.delete(contentChunks).where(eq(contentChunks.contentId, claim.contentId));
      if (final === 'sent') events.unshift({ ...base, type: 'MailSent', state: 'sent' });
      else events.unshift({ ...base, type: 'MailFailed', state: 'failed', reply: lastReply ?? '' });
      return final;
    });
    this.#emit(events);
    return state;
  }

  #sentQueue: Array<{ claim: Claim; reply: string; resolve: () => void; reject: (err: unknown) => void }> = [];
  #finishing = 0;

  /**
   * The common end of a delivery, every recipient accepted, recorded for many mails in one
   * statement (like the group commit at intake): each mail's row is checked against its fence,
   * its pending recipients marked sent and its content deleted. A mail whose lease was lost is
   * left alone and reported with LeaseLostError.
   */
  finishSent(claim: Claim, reply: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#sentQueue.push({ claim, reply, resolve, reject });
      this.#drainSent();
    });
  }

  #drainSent(): void {
    while (this.#sentQueue.length && this.#finishing < MAX_COMMITS_IN_FLIGHT) {
      const batch = this.#sentQueue.splice(0, MAX_GROUP_COMMIT);
      this.#finishing++;
      void this.#finishSentBatch(batch).finally(() => {
        this.#finishing--;
        this.#drainSent();
      });
    }
  }

  async #finishSentBatch(batch: Array<{ claim: Claim; reply: string; resolve: () => void; reject: (err: unknown) => void }>): Promise<void> {
    const now = this.#now();
    const list = batch.map((b) => ({ id: b.claim.id, fence: b.claim.fence, content_id: b.claim.contentId, reply: b.reply }));
    try {
      const done = await rows<{ id: string }>(
        this.#d.db,
        sql`with x as (
              select * from jsonb_to_recordset(${JSON.stringify(list)}::jsonb) as x(id uuid, fence integer, content_id uuid, reply text)
            ), done as (
              update ${mails} m set state = 'sent', finished_at = ${now.toISOString()}::timestamptz, last_reply = x.reply,
                     lease_owner = null, lease_until = null, content_id = null
              from x where m.id = x.id and m.state = 'sending' and m.fence = x.fence
              returning m.id
            ), r as (
              update ${mailRecipients} r set state = 'sent', reply = x.reply, updated_at = ${now.toISOString()}::timestamptz
              from x where r.mail_id = x.id and r.state = 'pending' and r.mail_id in (select id from done)
              returning 1
            ), c as (
              delete from ${contentChunks} where content_id in (select x.content_id from x where x.id in (select id from done))
              returning 1
            )
            select id::text as id from done`,
      );
      const ok = new Set(done.map((d) => d.id));
      const events: MailEvent[] = [];
      for (const b of batch) {
        if (ok.has(b.claim.id)) {
          events.push({ type: 'MailSent', id: b.claim.id, ownerId: b.claim.ownerId, clientIp: b.claim.clientIp, state: 'sent', at: now.getTime() });
          b.resolve();
        } else b.reject(new LeaseLostError(b.claim.id));
      }
      this.#emit(events);
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /** Mails whose worker died (its lease ran out) go back to the queue, due now. */
  async expireLeases(): Promise<number> {
    const now = this.#now();
    const rows = await this.#d.db
      .update(mails)
      .set({ state: 'deferred', dueAt: now, leaseOwner: null, leaseUntil: null, lastReply: 'delivery interrupted; will retry' })
      .where(and(eq(mails.state, 'sending'), lt(mails.leaseUntil, now)))
      .returning({ id: mails.id, ownerId: mails.ownerId, clientIp: mails.clientIp });
    this.#emit(rows.map((r) => ({ type: 'MailDeferred' as const, id: r.id, ownerId: r.ownerId, clientIp: r.clientIp, state: 'deferred' as const, at: now.getTime(), dueAt: now.getTime(), reply: 'delivery interrupted' })));
    return rows.length;
  }

  /** At shutdown: what this worker still holds goes back to the queue for the next start. */
  async releaseLeases(owner: string): Promise<number> {
    const now = this.#now();
    const rows = await this.#d.db
      .update(mails)
      .set({ state: 'deferred', dueAt: now, leaseOwner: null, leaseUntil: null })
      .where(and(eq(mails.state, 'sending'), eq(mails.leaseOwner, owner)))
      .returning({ id: mails.id });
    return rows.length;
  }

  /** The earliest due time of any waiting mail, for the worker's timer. */
  async nextDue(): Promise<number | undefined> {
    const [row] = await this.#d.db
      .select({ dueAt: sql<string | Date | null>`min(${mails.dueAt})` })
      .from(mails)
      .where(inArray(mails.state, WAITING));
    return row?.dueAt ? new Date(row.dueAt).getTime() : undefined;
  }
}

export function scopeWhere(scope: Scope): SQL | undefined {
  if (scope.kind === 'user') return eq(mails.ownerId, scope.userId);
  if (scope.kind === 'ip') return eq(mails.clientIp, scope.ip);
  return undefined;
}

/**
 * Several new mails in one statement: the mails, their recipients and the content rows given,
 * each set as one JSON parameter. One statement is one round trip and, outside a transaction,
 * one atomic commit; its text never changes, so the server plans it once.
 */
export async function insertMails(tx: DbOrTx, list: NewMail[], contents: ContentRows[] = [], opts: { prepared?: boolean } = {}): Promise<MailEvent[]> {
  const events: MailEvent[] = [];
  const mailRows = list.map((m) => {
    const queued = m.kind === 'notice' || m.excludedBy !== null || m.holdSeconds === 0;
    const dueAt = m.receivedAt + (queued ? 0 : m.holdSeconds * 1000);
    const state: MailState = queued ? 'queued' : 'held';
    const base = { id: m.id, ownerId: m.ownerId, clientIp: m.clientIp, at: m.receivedAt };
    events.push(
      state === 'held'
        ? { ...base, type: 'MailHeld', state, dueAt, subject: m.subject, recipients: m.recipients }
        : { ...base, type: 'MailQueued', state, reason: m.kind === 'notice' ? 'notice' : 'excluded' },
    );
    return {
      id: m.id,
      kind: m.kind,
      state,
      owner_id: m.ownerId,
      auth_user: m.authUser,
      client_ip: m.clientIp,
      helo: m.helo,
      mail_from: m.mailFrom,
      smtp_utf8: m.smtpUtf8,
      body_8bit: m.body8bit,
      size: m.size,
      content_id: m.contentId,
      headers: m.headers.toString('base64'),
      subject: m.subject,
      summary: m.summary,
      bounce_allowed: m.bounceAllowed,
      received_at: new Date(m.receivedAt).toISOString(),
      due_at: new Date(dueAt).toISOString(),
      hold_seconds: queued ? 0 : m.holdSeconds,
      excluded_by: m.excludedBy,
      notice_for: m.noticeFor ?? null,
    };
  });
  const recipientRows = list.flatMap((m) => m.recipients.map((address, seq) => ({ mail_id: m.id, seq, address })));
  const contentRows = contents.flatMap((c) => c.pieces.map((p, i) => ({ content_id: c.contentId, seq: c.firstSeq + i, data: p.toString('base64') })));
  const params = [JSON.stringify(mailRows), JSON.stringify(recipientRows), JSON.stringify(contentRows)];
  if (opts.prepared) {
    await executePrepared(tx as Db, INSERT_MAILS, params);
  } else {
    const [a, b, c, d] = INSERT_MAILS.split(/\$[123]/) as [string, string, string, string];
    await tx.execute(sql.join([sql.raw(a), sql`${params[0]}`, sql.raw(b), sql`${params[1]}`, sql.raw(c), sql`${params[2]}`, sql.raw(d)], sql.raw('')));
  }
  return events;
}

const INSERT_MAILS = `
    with m as (
      insert into mails (id, kind, state, owner_id, auth_user, client_ip, helo, mail_from, smtp_utf8, body_8bit, size, content_id,
                         headers, subject, summary, bounce_allowed, received_at, due_at, hold_seconds, excluded_by, notice_for)
      select id, kind, state, owner_id, auth_user, client_ip, helo, mail_from, smtp_utf8, body_8bit, size, content_id,
             decode(headers, 'base64'), subject, summary, bounce_allowed, received_at, due_at, hold_seconds, excluded_by, notice_for
      from jsonb_to_recordset($1::jsonb) as x(
        id uuid, kind text, state text, owner_id integer, auth_user text, client_ip text, helo text, mail_from text, smtp_utf8 boolean,
        body_8bit boolean, size bigint, content_id uuid, headers text, subject text, summary jsonb, bounce_allowed boolean,
        received_at timestamptz, due_at timestamptz, hold_seconds integer, excluded_by text, notice_for uuid)
      returning 1
    ), r as (
      insert into mail_recipients (mail_id, seq, address)
      select mail_id, seq, address from jsonb_to_recordset($2::jsonb) as x(mail_id uuid, seq integer, address text)
      returning 1
    ), c as (
      insert into content_chunks (content_id, seq, data)
      select content_id, seq, decode(data, 'base64') from jsonb_to_recordset($3::jsonb) as x(content_id uuid, seq integer, data text)
      returning 1
    )
    select (select count(*) from m) as mails, (select count(*) from r) as recipients, (select count(*) from c) as chunks`;
