import { and, asc, eq, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { pushSubscriptions } from '../db/schema.js';
import { checkEndpoint, EndpointError, type EndpointPolicy } from './endpoint.js';

/** What a browser's PushSubscription.toJSON() gives, plus a name for the device list. */
export interface NewSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  label?: string;
}

export interface Subscription {
  id: number;
  userId: number;
  endpoint: string;
  p256dh: string;
  auth: string;
}

export interface Device {
  id: number;
  label: string;
  /** The push service's host (which browser vendor), never the secret path. */
  service: string;
  createdAt: number;
  lastSuccessAt: number | null;
  failures: number;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function keyBytes(value: string, what: string, length: number): void {
  if (!B64URL.test(value) || Buffer.from(value, 'base64url').length !== length) {
    throw new EndpointError(`the subscription's ${what} key is not valid`);
  }
}

/** The subscriptions of the user's devices. */
export class SubscriptionStore {
  readonly #db: DbOrTx;
  readonly #policy: EndpointPolicy;
  /** Called after every change, so that caches of who has a device can be dropped. */
  onChange: () => void = () => {};

  constructor(db: DbOrTx, policy: EndpointPolicy = {}) {
    this.#db = db;
    this.#policy = policy;
  }

  /**
   * Stores (or takes over) the subscription. A browser has one subscription per site, so an
   * endpoint that another user subscribed on this device before now belongs to this user.
   */
  async save(userId: number, sub: NewSubscription): Promise<number> {
    checkEndpoint(sub.endpoint, this.#policy);
    // p256dh: an uncompressed P-256 point; auth: 16 random bytes (RFC 8291).
    keyBytes(sub.keys.p256dh, 'p256dh', 65);
    if (Buffer.from(sub.keys.p256dh, 'base64url')[0] !== 4) throw new EndpointError("the subscription's p256dh key is not valid");
    keyBytes(sub.keys.auth, 'auth', 16);
    const label = (sub.label ?? '').trim().slice(0, 100);
    const [row] = await this.#db
      .insert(pushSubscriptions)
      .values({ userId, endpoint: sub.endpoint, p256dh: sub.keys.p256dh, auth: sub.keys.auth, label })
      .onConflictDoUpdate({
        target: pushSubscriptions.endpoint,
        set: { userId, p256dh: sub.keys.p256dh, auth: sub.keys.auth, label, failures: 0, createdAt: sql`now()` },
      })
      .returning({ id: pushSubscriptions.id });
    this.onChange();
    return row!.id;
  }

  async forUser(userId: number): Promise<Subscription[]> {
    return this.#db
      .select({ id: pushSubscriptions.id, userId: pushSubscriptions.userId, endpoint: pushSubscriptions.endpoint, p256dh: pushSubscriptions.p256dh, auth: pushSubscriptions.auth })
      .from(pushSubscriptions)
      .where(eq(pushSubscriptions.userId, userId))
      .orderBy(asc(pushSubscriptions.id));
  }

  async devices(userId: number): Promise<Device[]> {
    const rows = await this.#db.select().from(pushSubscriptions).where(eq(pushSubscriptions.userId, userId)).orderBy(asc(pushSubscriptions.createdAt));
    return rows.map((r) => ({
      id: r.id,
      label: r.label,
      service: hostOf(r.endpoint),
      createdAt: r.createdAt.getTime(),
      lastSuccessAt: r.lastSuccessAt?.getTime() ?? null,
      failures: r.failures,
    }));
  }

  /** The user's own subscription with this endpoint (the device unsubscribing itself). */
  async removeEndpoint(userId: number, endpoint: string): Promise<boolean> {
    const rows = await this.#db
      .delete(pushSubscriptions)
      .where(and(eq(pushSubscriptions.userId, userId), eq(pushSubscriptions.endpoint, endpoint)))
      .returning({ id: pushSubscriptions.id });
    return rows.length > 0;
  }

  /** The user's own device, from the device list. */
  async remove(userId: number, id: number): Promise<boolean> {
    const rows = await this.#db
      .delete(pushSubscriptions)
      .where(and(eq(pushSubscriptions.userId, userId), eq(pushSubscriptions.id, id)))
      .returning({ id: pushSubscriptions.id });
    return rows.length > 0;
  }

  /** The push service said the subscription is gone (404/410), or the endpoint is no longer allowed. */
  async drop(id: number): Promise<void> {
    await this.#db.delete(pushSubscriptions).where(eq(pushSubscriptions.id, id));
  }

  async succeeded(id: number, at: Date): Promise<void> {
    await this.#db.update(pushSubscriptions).set({ lastSuccessAt: at, failures: 0 }).where(eq(pushSubscriptions.id, id));
  }

  async failed(id: number): Promise<void> {
    await this.#db
      .update(pushSubscriptions)
      .set({ failures: sql`${pushSubscriptions.failures} + 1` })
      .where(eq(pushSubscriptions.id, id));
  }
}

function hostOf(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return '';
  }
}
