import { asc, eq } from 'drizzle-orm';
import type { DbOrTx } from './db/client.js';
import { users } from './db/schema.js';
import { hashPassword, verifyPassword } from './auth/passwords.js';
import { sessionsChanged } from './auth/session-changes.js';

export interface User {
  id: number;
  email: string;
  isAdmin: boolean;
}

const EMAIL = /^[^\s@<>()",;:\\]+@[^\s@<>()",;:\\]+\.[^\s@<>()",;:\\]+$|^[^\s@<>()",;:\\]+@localhost$/i;

export class UserError extends Error {}

/** Addresses compare case-insensitively everywhere in mailhold; they are stored lower-case. */
export function normalizeEmail(email: string): string {
  const e = email.trim().toLowerCase();
  if (!EMAIL.test(e) || e.length > 254) throw new UserError(`not an email address: ${JSON.stringify(email)}`);
  return e;
}

export function checkPassword(password: string): void {
  if (password.length < 8) throw new UserError('the password must have at least 8 characters');
  if (password.length > 1024) throw new UserError('the password must have at most 1024 characters');
}

const publicColumns = { id: users.id, email: users.email, isAdmin: users.isAdmin };

export async function addUser(db: DbOrTx, email: string, password: string, isAdmin = false): Promise<User> {
  const address = normalizeEmail(email);
  checkPassword(password);
  const passwordHash = await hashPassword(password);
  const [row] = await db.insert(users).values({ email: address, passwordHash, isAdmin }).onConflictDoNothing().returning(publicColumns);
  if (!row) throw new UserError(`a user ${address} exists already`);
  return row;
}

/** Creates the user, or leaves an existing one as it is. Returns whether it was created. */
export async function ensureUser(db: DbOrTx, email: string, password: string, isAdmin: boolean): Promise<boolean> {
  const address = normalizeEmail(email);
  if (await findUser(db, address)) return false;
  checkPassword(password);
  const passwordHash = await hashPassword(password);
  const rows = await db.insert(users).values({ email: address, passwordHash, isAdmin }).onConflictDoNothing().returning({ id: users.id });
  return rows.length > 0;
}

export async function setPassword(db: DbOrTx, id: number, password: string): Promise<void> {
  checkPassword(password);
  await db.update(users).set({ passwordHash: await hashPassword(password) }).where(eq(users.id, id));
}

export async function setAdmin(db: DbOrTx, id: number, isAdmin: boolean): Promise<void> {
  await db.update(users).set({ isAdmin }).where(eq(users.id, id));
  sessionsChanged();
}

export async function removeUser(db: DbOrTx, id: number): Promise<boolean> {
  const rows = await db.delete(users).where(eq(users.id, id)).returning({ id: users.id });
  sessionsChanged();
  return rows.length > 0;
}

export async function findUser(db: DbOrTx, email: string): Promise<User | undefined> {
  const [row] = await db.select(publicColumns).from(users).where(eq(users.email, email.trim().toLowerCase()));
  return row;
}

export async function getUser(db: DbOrTx, id: number): Promise<User | undefined> {
  const [row] = await db.select(publicColumns).from(users).where(eq(users.id, id));
  return row;
}

export async function listUsers(db: DbOrTx): Promise<User[]> {
  return db.select(publicColumns).from(users).orderBy(asc(users.email));
}

/** Checks an address and password (SMTP AUTH and the web login alike). */
export async function authenticate(db: DbOrTx, email: string, password: string): Promise<User | undefined> {
  const [row] = await db
    .select({ ...publicColumns, passwordHash: users.passwordHash })
    .from(users)
    .where(eq(users.email, email.trim().toLowerCase()));
  const ok = await verifyPassword(password, row?.passwordHash);
  if (!ok || !row) return undefined;
  return { id: row.id, email: row.email, isAdmin: row.isAdmin };
}
