import { and, desc, eq, gt, inArray, isNotNull } from 'drizzle-orm';
import type { Config } from './config.js';
import type { DbOrTx } from './db/client.js';
import { mails } from './db/schema.js';
import { listAlerts } from '../relay/alerts.js';

/** What the admin page tells about delivery: the upstream in use, how it last answered, alerts. */
export interface DeliveryStatus {
  upstream: { url: string; host: string; port: number; secure: boolean; user: string | null } | null;
  last: { state: 'sent' | 'failed'; reply: string | null; at: number; subject: string } | null;
  retrying: { count: number; reply: string | null };
  alerts: Array<{ kind: string; message: string; count: number; firstAt: number; lastAt: number }>;
}

export async function deliveryStatus(db: DbOrTx, config: Config): Promise<DeliveryStatus> {
  const u = config.upstream;
  const [[last], deferred, alerts] = await Promise.all([
    db
      .select({ state: mails.state, reply: mails.lastReply, at: mails.finishedAt, subject: mails.subject })
      .from(mails)
      .where(and(inArray(mails.state, ['sent', 'failed']), isNotNull(mails.finishedAt), gt(mails.attempts, 0)))
      .orderBy(desc(mails.finishedAt))
      .limit(1),
    db.select({ reply: mails.lastReply }).from(mails).where(eq(mails.state, 'deferred')).orderBy(desc(mails.dueAt)).limit(1000),
    listAlerts(db),
  ]);
  let url: string | null = null;
  if (u) {
    const shown = new URL(u.href);
    shown.password = '';
    url = decodeURIComponent(shown.href);
  }
  return {
    upstream: u
      ? { url: url!, host: u.hostname, port: Number(u.port) || (u.protocol === 'smtps:' ? 465 : 587), secure: u.protocol === 'smtps:', user: u.username ? decodeURIComponent(u.username) : null }
      : null,
    last: last ? { state: last.state as 'sent' | 'failed', reply: last.reply, at: last.at!.getTime(), subject: last.subject } : null,
    retrying: { count: deferred.length, reply: deferred[0]?.reply ?? null },
    alerts: alerts.map((a) => ({ kind: a.kind, message: a.message, count: a.count, firstAt: a.firstAt.getTime(), lastAt: a.lastAt.getTime() })),
  };
}
