import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { eq, lt } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { spentTokens } from '../db/schema.js';

/**
 * Capability tokens for the buttons of a push notification. One token allows one action on one
 * mail until its due time, once. It is signed with a key derived for this purpose alone and
 * carries no session, so it can never serve as a login, and the action endpoint is the only
 * place that reads it.
 *
 *   v1.<base64url JSON claims>.<base64url HMAC-SHA256>
 */
export type PushAction = 'discard' | 'send';

export interface ActionClaims {
  /** Random id; spent once. */
  jti: string;
  mailId: string;
  action: PushAction;
  userId: number;
  /** ms since the epoch: the mail's due time. */
  expiresAt: number;
}

export type Verified = { ok: true; claims: ActionClaims } | { ok: false; reason: 'malformed' | 'signature' | 'expired' };

/** The derive-key purpose; a key for any other purpose cannot make a valid token. */
export const TOKEN_PURPOSE = 'push-action';
const PREFIX = 'v1';

export class ActionTokens {
  readonly #key: Buffer;
  readonly #now: () => number;

  constructor(key: Buffer, now: () => number = Date.now) {
    this.#key = key;
    this.#now = now;
  }

  issue(mailId: string, action: PushAction, userId: number, expiresAt: number): string {
    const claims = { j: randomBytes(16).toString('base64url'), m: mailId, a: action, u: userId, e: expiresAt };
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${PREFIX}.${body}.${this.#sign(body)}`;
  }

  verify(token: string): Verified {
    const parts = typeof token === 'string' && token.length < 1024 ? token.split('.') : [];
    const [prefix, body, sig] = parts;
    if (parts.length !== 3 || prefix !== PREFIX || !body || !sig) return { ok: false, reason: 'malformed' };
    const expected = Buffer.from(this.#sign(body), 'base64url');
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature' };
    let raw: { j?: unknown; m?: unknown; a?: unknown; u?: unknown; e?: unknown };
    try {
      raw = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (
      typeof raw.j !== 'string' ||
      typeof raw.m !== 'string' ||
      (raw.a !== 'discard' && raw.a !== 'send') ||
      typeof raw.u !== 'number' ||
      typeof raw.e !== 'number'
    ) {
      return { ok: false, reason: 'malformed' };
    }
    if (this.#now() >= raw.e) return { ok: false, reason: 'expired' };
    return { ok: true, claims: { jti: raw.j, mailId: raw.m, action: raw.a, userId: raw.u, expiresAt: raw.e } };
  }

  #sign(body: string): string {
    return createHmac('sha256', this.#key).update(`${PREFIX}.${body}`).digest('base64url');
  }
}

/** Marks the token spent; false when it was spent before (a replay). */
export async function spendToken(db: DbOrTx, claims: ActionClaims): Promise<boolean> {
  const rows = await db
    .insert(spentTokens)
    .values({ tokenId: claims.jti, expiresAt: new Date(claims.expiresAt) })
    .onConflictDoNothing()
    .returning({ tokenId: spentTokens.tokenId });
  return rows.length > 0;
}

/** Gives a token back when the action itself could not run (an error, not an outcome). */
export async function unspendToken(db: DbOrTx, claims: ActionClaims): Promise<void> {
  await db.delete(spentTokens).where(eq(spentTokens.tokenId, claims.jti));
}

/** A spent token past its expiry is refused as expired anyway; its row can go. */
export async function purgeSpentTokens(db: DbOrTx, now: number): Promise<void> {
  await db.delete(spentTokens).where(lt(spentTokens.expiresAt, new Date(now)));
}
