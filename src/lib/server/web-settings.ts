import { eq } from 'drizzle-orm';
import type { DbOrTx } from './db/client.js';
import { settings } from './db/schema.js';

/**
 * Settings of the web side that live in the database (the hold time lives with the relay's
 * policy). `ip_view`: a visitor from RELAY_NETWORKS without a login sees the mail sent from their
 * own IP address, as the appliance's page did. Off unless an admin turns it on.
 */
const IP_VIEW = 'ip_view';
const CACHE_MS = 5000;
let cached: { value: boolean; at: number; db: DbOrTx } | undefined;

export async function ipViewEnabled(db: DbOrTx): Promise<boolean> {
  if (cached && cached.db === db && Date.now() - cached.at < CACHE_MS) return cached.value;
  const [row] = await db.select({ value: settings.value }).from(settings).where(eq(settings.key, IP_VIEW));
  const value = row?.value === true;
  cached = { value, at: Date.now(), db };
  return value;
}

export async function setIpView(db: DbOrTx, value: boolean): Promise<void> {
  await db
    .insert(settings)
    .values({ key: IP_VIEW, value, updatedAt: new Date() })
    .onConflictDoUpdate({ target: settings.key, set: { value, updatedAt: new Date() } });
  cached = { value, at: Date.now(), db };
}
