import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import * as schema from './schema.js';

/** The one database type everything above the driver sees, PGlite or PostgreSQL alike. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** Checkpoints (PGlite) and closes every connection. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** postgres:// URL; without one the embedded PGlite in `dataDir` is used. */
  url?: string;
  dataDir: string;
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
}

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  const folder = migrationsFolder();
  if (opts.url) {
    await migrateWithLock(opts.url, folder);
    const client = postgres(opts.url, { max: opts.poolSize ?? 10, onnotice: () => {}, connection: { application_name: 'mailhold' } });
    const db = drizzlePostgres(client, { schema }) as unknown as Db;
    return {
      db,
      kind: 'postgres',
      close: () => client.end({ timeout: 5 }),
    };
  }
  const dir = path.join(opts.dataDir, 'pgdata');
  mkdirSync(dir, { recursive: true });
  const client = await PGlite.create(dir);
  const pdb = drizzlePglite(client, { schema });
  await migratePglite(pdb, { migrationsFolder: folder });
  return {
    db: pdb as unknown as Db,
    kind: 'pglite',
    close: async () => {
      if (client.closed) return;
      await client.query('CHECKPOINT');
      await client.close();
    },
  };
}

/** Several mailhold processes may start on one PostgreSQL at once; only one migrates at a time. */
async function migrateWithLock(url: string, folder: string): Promise<void> {
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(74201)`;
    await migratePostgres(drizzlePostgres(client), { migrationsFolder: folder });
    await client`select pg_advisory_unlock(74201)`;
  } finally {
    await client.end({ timeout: 5 });
  }
}

/**
 * The committed SQL migrations live in `drizzle/` at the top of the project. The code may run
 * from `src/` (tests, CLI) or from a bundle in `build/`, so look upwards from here for it.
 */
export function migrationsFolder(): string {
  if (process.env.MAILHOLD_MIGRATIONS) return path.resolve(process.env.MAILHOLD_MIGRATIONS);
  const starts = [path.dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    let dir = start;
    for (;;) {
      if (existsSync(path.join(dir, 'drizzle', 'meta', '_journal.json'))) return path.join(dir, 'drizzle');
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error('[db] cannot find the migrations folder drizzle/ (set MAILHOLD_MIGRATIONS to its path)');
}

/** Rows of a raw statement; postgres.js returns an array, PGlite an object with `rows`. */
export async function rows<T>(db: DbOrTx, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown;
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/**
 * A statement with $1.. parameters straight to the driver, for the hottest path (intake's group
 * commit). On PostgreSQL it is a named prepared statement: one round trip instead of the two an
 * unprepared query with parameters takes (describe, then execute), and planned once.
 */
export async function executePrepared(db: Db, text: string, params: unknown[]): Promise<void> {
  const client = (db as unknown as { $client: unknown }).$client as {
    unsafe?: (q: string, p: unknown[], o: { prepare: boolean }) => Promise<unknown>;
    query?: (q: string, p: unknown[]) => Promise<unknown>;
  };
  if (typeof client.unsafe === 'function') await client.unsafe(text, params, { prepare: true });
  else if (typeof client.query === 'function') await client.query(text, params);
  else throw new Error('unknown database driver');
}
