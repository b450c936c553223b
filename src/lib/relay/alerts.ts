import { eq, sql } from 'drizzle-orm';
import type { DbOrTx } from '../server/db/client.js';
import { alerts } from '../server/db/schema.js';

/** Conditions the administrator must see: one row per kind, counted, cleared when they stop. */
export async function raiseAlert(db: DbOrTx, kind: string, message: string, now: Date): Promise<void> {
  await db
    .insert(alerts)
    .values({ kind, message, count: 1, firstAt: now, lastAt: now })
    .onConflictDoUpdate({ target: alerts.kind, set: { message, count: sql`${alerts.count} + 1`, lastAt: now } });
}

export async function clearAlert(db: DbOrTx, kind: string): Promise<void> {
  await db.delete(alerts).where(eq(alerts.kind, kind));
}

export async function listAlerts(db: DbOrTx) {
  return db.select().from(alerts);
}
