import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase, type Database } from '../../src/lib/server/db/client.js';

/**
 * A fresh database for one test file: a new PostgreSQL database on the machine's server when
 * MAILHOLD_TEST_DB=postgres (the default URL is the local test server), else an embedded PGlite
 * in a temporary directory. Both run the committed migrations, as a real start does.
 */
export const dbKind: 'pglite' | 'postgres' = process.env.MAILHOLD_TEST_DB === 'postgres' ? 'postgres' : 'pglite';
export const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase extends Database {
  /** postgres:// URL of this database (PostgreSQL only), for a second process or worker. */
  url?: string;
  dataDir: string;
  /** Closes and removes the database. */
  drop(): Promise<void>;
}

export async function createTestDatabase(kind: 'pglite' | 'postgres' = dbKind): Promise<TestDatabase> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailhold-test-'));
  if (kind === 'pglite') {
    const database = await openDatabase({ dataDir });
    return {
      ...database,
      dataDir,
      drop: async () => {
        await database.close().catch(() => {});
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const empty = await createPostgresDatabase('mailhold_test');
  const database = await openDatabase({ url: empty.url, dataDir });
  return {
    ...database,
    url: empty.url,
    dataDir,
    drop: async () => {
      await database.close().catch(() => {});
      await empty.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A new, empty database on the PostgreSQL server of `admin` (a server mailhold runs migrations on
 * when it starts with it as DATABASE_URL), and how to drop it again.
 */
export async function createPostgresDatabase(prefix: string, admin = adminUrl): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const run = async (statement: string) => {
    const client = postgres(admin, { max: 1, onnotice: () => {} });
    try {
      await client.unsafe(statement);
    } finally {
      await client.end();
    }
  };
  await run(`create database ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.href, drop: () => run(`drop database if exists ${name} with (force)`) };
}
