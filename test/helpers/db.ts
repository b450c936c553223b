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
  const name = `mailhold_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = await openDatabase({ url: url.href, dataDir });
  return {
    ...database,
    url: url.href,
    dataDir,
    drop: async () => {
      await database.close().catch(() => {});
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
