import { createHash, randomBytes } from 'node:crypto';
import type { Cookies, RequestEvent } from '@sveltejs/kit';
import { and, eq, gt, lt } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { sessions, users } from '../db/schema.js';
import type { User } from '../users.js';
import { sessionsChanged } from './session-changes.js';

/**
 * Web sessions. The cookie carries a random token; the database keeps only its SHA-256, so a
 * copy of the database does not log anyone in. A session lasts SESSION_DAYS from the login (the
 * cookie expires with it), then the user logs in again; logout deletes the row.
 */

export const SESSION_COOKIE = 'mailhold_session';
const SESSION_DAYS = 14;
const SESSION_MS = SESSION_DAYS * 24 * 3600 * 1000;

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export async function createSession(db: DbOrTx, userId: number, meta: { ip: string; userAgent: string }, now = Date.now()): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now + SESSION_MS);
  await db.insert(sessions).values({
    idHash: hashToken(token),
    userId,
    createdAt: new Date(now),
    expiresAt,
    ip: meta.ip,
    userAgent: meta.userAgent.slice(0, 500),
  });
  // Housekeeping on the rare path: a login clears every expired session.
  await db.delete(sessions).where(lt(sessions.expiresAt, new Date(now)));
  return { token, expiresAt };
}

/** The user of a session token, or null when the token is unknown or expired. */
export async function readSession(db: DbOrTx, token: string, now = Date.now()): Promise<User | null> {
  if (!token || token.length > 100) return null;
  const idHash = hashToken(token);
  const [row] = await db
    .select({ id: users.id, email: users.email, isAdmin: users.isAdmin })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.idHash, idHash), gt(sessions.expiresAt, new Date(now))));
  if (!row) return null;
  return { id: row.id, email: row.email, isAdmin: row.isAdmin };
}

export async function deleteSession(db: DbOrTx, token: string): Promise<void> {
  await db.delete(sessions).where(eq(sessions.idHash, hashToken(token)));
  sessionsChanged();
}

/** Ends every session of a user (password reset, removal). */
export async function deleteUserSessions(db: DbOrTx, userId: number): Promise<void> {
  await db.delete(sessions).where(eq(sessions.userId, userId));
  sessionsChanged();
}

/** Logs the user in on this response: a new session row and its cookie (Secure over https). */
export async function startSession(event: RequestEvent, db: DbOrTx, user: User, ip: string, secure: boolean): Promise<void> {
  const { token, expiresAt } = await createSession(db, user.id, { ip, userAgent: event.request.headers.get('user-agent') ?? '' });
  event.cookies.set(SESSION_COOKIE, token, { path: '/', httpOnly: true, sameSite: 'lax', secure, expires: expiresAt });
  event.locals.user = user;
}

export async function endSession(event: RequestEvent, db: DbOrTx, secure: boolean): Promise<void> {
  const token = event.cookies.get(SESSION_COOKIE);
  if (token) await deleteSession(db, token);
  clearCookie(event.cookies, secure);
  event.locals.user = null;
}

function clearCookie(cookies: Cookies, secure: boolean): void {
  cookies.delete(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'lax', secure });
}

/** Sets `event.locals.user` from the session cookie (the `handle` hook calls this for every request). */
export async function loadSession(event: RequestEvent, db: DbOrTx, secure: boolean): Promise<void> {
  const token = event.cookies.get(SESSION_COOKIE);
  event.locals.user = token ? await readSession(db, token) : null;
  if (token && !event.locals.user) clearCookie(event.cookies, secure);
}
