import { eq } from 'drizzle-orm';
import webpush from 'web-push';
import type { DbOrTx } from '../db/client.js';
import { settings } from '../db/schema.js';

/** The server's VAPID key pair (base64url, as web-push and PushManager.subscribe want them). */
export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

const KEY = 'push.vapid';

/**
 * Generated once and kept in the settings table: a new pair would orphan every browser's
 * subscription. Several processes may start at once; the first insert wins and all read it back.
 */
export async function loadVapidKeys(db: DbOrTx): Promise<VapidKeys> {
  const existing = await read(db);
  if (existing) return existing;
  const fresh = webpush.generateVAPIDKeys();
  await db.insert(settings).values({ key: KEY, value: fresh }).onConflictDoNothing();
  const kept = await read(db);
  if (!kept) throw new Error('[push] the VAPID keys could not be stored');
  return kept;
}

async function read(db: DbOrTx): Promise<VapidKeys | undefined> {
  const [row] = await db.select({ value: settings.value }).from(settings).where(eq(settings.key, KEY));
  const v = row?.value as Partial<VapidKeys> | undefined;
  return v?.publicKey && v.privateKey ? { publicKey: v.publicKey, privateKey: v.privateKey } : undefined;
}
