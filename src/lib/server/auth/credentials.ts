import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { and, eq, inArray, notExists, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { mails, upstreamCredentials } from '../db/schema.js';
import { deriveKey } from '../secret.js';

/**
 * AUTH_MODE=upstream: a mailer's provider login, kept only while mail of that user waits to be
 * delivered with it. Sealed with AES-256-GCM under a key derived from the server secret
 * (SECRET_KEY, or DATA_DIR/secret.key), with the user id as associated data, so that a sealed
 * row copied onto another user does not open. Layout: version (1) | IV (12) | tag (16) | data.
 */
export interface UpstreamLogin {
  user: string;
  pass: string;
}

const VERSION = 1;
const WAITING_STATES = ['held', 'queued', 'sending', 'deferred'] as const;

export class CredentialStore {
  readonly #key: Buffer;

  constructor(secret: Buffer) {
    this.#key = deriveKey(secret, 'upstream-credentials');
  }

  seal(userId: number, login: UpstreamLogin): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(aad(userId));
    const data = Buffer.concat([cipher.update(JSON.stringify({ u: login.user, p: login.pass }), 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), data]);
  }

  /** Undefined when the row was sealed under another key or for another user. */
  open(userId: number, sealed: Buffer): UpstreamLogin | undefined {
    if (sealed.length < 29 || sealed[0] !== VERSION) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, sealed.subarray(1, 13));
      decipher.setAAD(aad(userId));
      decipher.setAuthTag(sealed.subarray(13, 29));
      const text = Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()]).toString('utf8');
      const parsed = JSON.parse(text) as { u: string; p: string };
      return { user: parsed.u, pass: parsed.p };
    } catch {
      return undefined;
    }
  }

  /** Stores (or replaces) the login after it was checked against the upstream. */
  async save(db: DbOrTx, userId: number, login: UpstreamLogin, now: Date): Promise<void> {
    await this.saveSealed(db, userId, this.seal(userId, login), now, true);
  }

  /**
   * Writes an already sealed login. `replace: false` only puts it back if it is missing: an open
   * SMTP session uses that after each mail it hands in, in case the last of the user's earlier
   * mail finished (and took the row with it) while this one was being received.
   */
  async saveSealed(db: DbOrTx, userId: number, sealed: Buffer, now: Date, replace: boolean): Promise<void> {
    const insert = db.insert(upstreamCredentials).values({ userId, sealed, updatedAt: now });
    if (replace) await insert.onConflictDoUpdate({ target: upstreamCredentials.userId, set: { sealed, updatedAt: now } });
    else await insert.onConflictDoNothing();
  }

  async load(db: DbOrTx, userId: number): Promise<UpstreamLogin | undefined> {
    const [row] = await db.select({ sealed: upstreamCredentials.sealed }).from(upstreamCredentials).where(eq(upstreamCredentials.userId, userId));
    return row ? this.open(userId, row.sealed) : undefined;
  }

  /**
   * Deletes the login of `userId` (or of every user) when no mail of theirs waits any more.
   * One statement, so a mail committed at the same moment is either seen (the row stays) or
   * puts the row back itself (saveSealed after its commit). Returns the users whose row went.
   */
  async removeIdle(db: DbOrTx, userId?: number): Promise<number[]> {
    const waiting = db
      .select({ one: sql`1` })
      .from(mails)
      .where(and(eq(mails.ownerId, upstreamCredentials.userId), inArray(mails.state, [...WAITING_STATES])));
    const rows = await db
      .delete(upstreamCredentials)
      .where(and(userId === undefined ? undefined : eq(upstreamCredentials.userId, userId), notExists(waiting)))
      .returning({ userId: upstreamCredentials.userId });
    return rows.map((r) => r.userId);
  }
}

function aad(userId: number): Buffer {
  return Buffer.from(`mailhold:upstream-credentials:user:${userId}`, 'utf8');
}
