import { and, asc, count, desc, eq, gt, inArray, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../server/db/client.js';
import { mailRecipients, mails, outbox, users, type MailState, type MailSummary } from '../server/db/schema.js';
import type { EventBus } from './events.js';
import type { Actor, ActionResult, MailStates, Scope } from './state.js';
import { FINAL, scopeWhere } from './state.js';
import { readContentBuffer } from './store.js';

/**
 * The domain API: what the web pages, the tRPC procedures, the push actions and the CLI use.
 * Every read and every action is scoped (a user's own mail, an IP's mail, or all for an admin);
 * a mail outside the scope is reported exactly like a mail that does not exist.
 */

export const ACTIVE: MailState[] = ['held', 'queued', 'sending', 'deferred'];

export interface MailListItem {
  id: string;
  kind: 'mail' | 'notice';
  state: MailState;
  subject: string;
  mailFrom: string;
  recipients: string[];
  summary: MailSummary;
  size: number;
  clientIp: string;
  owner: { id: number; email: string } | null;
  authUser: string | null;
  receivedAt: number;
  dueAt: number;
  holdSeconds: number;
  excludedBy: string | null;
  attempts: number;
  lastReply: string | null;
  finishedAt: number | null;
  actionBy: string | null;
  actionIp: string | null;
  actionUser: string | null;
}

export interface MailDetail extends MailListItem {
  recipientStates: Array<{ address: string; state: 'pending' | 'sent' | 'failed'; reply: string | null }>;
  /** The root header block as text (latin1, one char per byte): show it as text, never as HTML. */
  headers: string;
}

export interface ListOptions {
  /** `active`: held and on its way, earliest due first. `history`: finished, latest first. */
  view: 'active' | 'history';
  limit?: number;
  /** The `next` of the previous page. */
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  next: string | null;
  total: number;
}

export interface OutboxEntry {
  id: string;
  mailId: string;
  mailFrom: string;
  recipients: string[];
  subject: string;
  size: number;
  deliveredAt: number;
}

const actionUsers = sql`(select ${users.email} from ${users} where ${users.id} = ${mails.actionUserId})`;

export class MailApi {
  readonly #db: Db;
  readonly #states: MailStates;
  readonly events: EventBus;
  /** Called after a release, so the worker picks the mail up at once. */
  readonly #onReleased: () => void;

  constructor(db: Db, states: MailStates, events: EventBus, onReleased: () => void) {
    this.#db = db;
    this.#states = states;
    this.events = events;
    this.#onReleased = onReleased;
  }

  async list(scope: Scope, opts: ListOptions): Promise<Page<MailListItem>> {
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 500);
    const active = opts.view === 'active';
    const states = active ? ACTIVE : FINAL;
    const base = and(inArray(mails.state, states), scopeWhere(scope));
    let after;
    if (opts.cursor) {
      const [ms, id] = opts.cursor.split('_');
      const at = new Date(Number(ms));
      if (id && !Number.isNaN(at.getTime())) {
        after = active
          ? or(gt(mails.dueAt, at), and(eq(mails.dueAt, at), gt(mails.id, id)))
          : or(lt(mails.finishedAt, at), and(eq(mails.finishedAt, at), lt(mails.id, id)));
      }
    }
    const [rows, [total]] = await Promise.all([
      this.#db
        .select({ m: mails, ownerEmail: users.email, actionUser: actionUsers.mapWith(String) })
        .from(mails)
        .leftJoin(users, eq(users.id, mails.ownerId))
        .where(and(base, after))
        .orderBy(...(active ? [asc(mails.dueAt), asc(mails.id)] : [desc(mails.finishedAt), desc(mails.id)]))
        .limit(limit + 1),
      this.#db.select({ n: count() }).from(mails).where(base),
    ]);
    const page = rows.slice(0, limit);
    const recipients = await this.#recipients(page.map((r) => r.m.id));
    const items = page.map((r) => toItem(r.m, r.ownerEmail, r.actionUser, recipients.get(r.m.id) ?? []));
    const last = page[page.length - 1];
    const next =
      rows.length > limit && last ? `${(active ? last.m.dueAt : (last.m.finishedAt ?? last.m.dueAt)).getTime()}_${last.m.id}` : null;
    return { items, next, total: total?.n ?? 0 };
  }

  async get(scope: Scope, id: string): Promise<MailDetail | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await this.#db
      .select({ m: mails, ownerEmail: users.email, actionUser: actionUsers.mapWith(String) })
      .from(mails)
      .leftJoin(users, eq(users.id, mails.ownerId))
      .where(and(eq(mails.id, id), scopeWhere(scope)));
    if (!row) return undefined;
    const rcpts = await this.#db
      .select({ address: mailRecipients.address, state: mailRecipients.state, reply: mailRecipients.reply })
      .from(mailRecipients)
      .where(eq(mailRecipients.mailId, id))
      .orderBy(asc(mailRecipients.seq));
    return {
      ...toItem(row.m, row.ownerEmail, row.actionUser, rcpts.map((r) => r.address)),
      recipientStates: rcpts,
      headers: row.m.headers.toString('latin1'),
    };
  }

  /** The first bytes of the stored message (for a text preview), while it is still stored. */
  async rawStart(scope: Scope, id: string, maxBytes: number): Promise<Buffer | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await this.#db.select({ contentId: mails.contentId }).from(mails).where(and(eq(mails.id, id), scopeWhere(scope)));
    if (!row?.contentId) return undefined;
    return readContentBuffer(this.#db, row.contentId, maxBytes).catch(() => undefined);
  }

  /** How many held mails a bulk action would touch. */
  async countHeld(scope: Scope): Promise<number> {
    const [row] = await this.#db.select({ n: count() }).from(mails).where(and(eq(mails.state, 'held'), scopeWhere(scope)));
    return row?.n ?? 0;
  }

  discard(scope: Scope, id: string, actor: Actor): Promise<ActionResult> {
    if (!isUuid(id)) return Promise.resolve({ outcome: 'not_found', id });
    return this.#states.discard(id, scope, actor);
  }

  async sendNow(scope: Scope, id: string, actor: Actor): Promise<ActionResult> {
    if (!isUuid(id)) return { outcome: 'not_found', id };
    const result = await this.#states.release(id, scope, actor);
    if (result.outcome === 'done') this.#onReleased();
    return result;
  }

  /** Discards every held mail in the scope (or only `ids` of them); returns the ids discarded. */
  discardAll(scope: Scope, actor: Actor, ids?: string[]): Promise<string[]> {
    return this.#states.discardAll(scope, actor, ids?.filter(isUuid));
  }

  async sendAll(scope: Scope, actor: Actor, ids?: string[]): Promise<string[]> {
    const done = await this.#states.releaseAll(scope, actor, ids?.filter(isUuid));
    if (done.length) this.#onReleased();
    return done;
  }

  async outbox(limit = 100, before?: number): Promise<OutboxEntry[]> {
    const rows = await this.#db
      .select()
      .from(outbox)
      .where(before ? lt(outbox.deliveredAt, new Date(before)) : undefined)
      .orderBy(desc(outbox.deliveredAt))
      .limit(Math.min(Math.max(limit, 1), 500));
    return rows.map((r) => ({ id: r.id, mailId: r.mailId, mailFrom: r.mailFrom, recipients: r.recipients, subject: r.subject, size: r.size, deliveredAt: r.deliveredAt.getTime() }));
  }

  /** The raw message delivered into the outbox. */
  async outboxMessage(id: string): Promise<Buffer | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await this.#db.select({ contentId: outbox.contentId }).from(outbox).where(eq(outbox.id, id));
    return row ? readContentBuffer(this.#db, row.contentId) : undefined;
  }

  async #recipients(ids: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (ids.length === 0) return out;
    const rows = await this.#db
      .select({ mailId: mailRecipients.mailId, address: mailRecipients.address })
      .from(mailRecipients)
      .where(inArray(mailRecipients.mailId, ids))
      .orderBy(asc(mailRecipients.mailId), asc(mailRecipients.seq));
    for (const r of rows) {
      const list = out.get(r.mailId) ?? [];
      list.push(r.address);
      out.set(r.mailId, list);
    }
    return out;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(id: string): boolean {
  return UUID.test(id);
}

function toItem(m: typeof mails.$inferSelect, ownerEmail: string | null, actionUser: string | null, recipients: string[]): MailListItem {
  return {
    id: m.id,
    kind: m.kind,
    state: m.state,
    subject: m.subject,
    mailFrom: m.mailFrom,
    recipients,
    summary: m.summary,
    size: m.size,
    clientIp: m.clientIp,
    owner: m.ownerId !== null && ownerEmail ? { id: m.ownerId, email: ownerEmail } : null,
    authUser: m.authUser,
    receivedAt: m.receivedAt.getTime(),
    dueAt: m.dueAt.getTime(),
    holdSeconds: m.holdSeconds,
    excludedBy: m.excludedBy,
    attempts: m.attempts,
    lastReply: m.lastReply,
    finishedAt: m.finishedAt?.getTime() ?? null,
    actionBy: m.actionBy,
    actionIp: m.actionIp,
    actionUser: actionUser && actionUser !== 'null' ? actionUser : null,
  };
}
