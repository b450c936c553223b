import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { createPostgresDatabase } from '../test/helpers/db.js';
import { startSink, type SinkProcess } from './children.js';
import { buildEntry, root, startServer, type ServerProcess } from '../test/helpers/server.js';

/**
 * One mailhold under test: a fresh database (PGlite in a new DATA_DIR, or a new PostgreSQL
 * database on the admin URL), the built server started on it, and a way to restart it on the
 * same data and to throw everything away afterwards.
 */
export type DbKind = 'pglite' | 'postgres';
export const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const ADMIN = { email: 'admin@example.com', password: 'bench-admin-password' };

export interface Target {
  db: DbKind;
  /**
   * PostgreSQL only: writes out what the server has buffered (CHECKPOINT), so that the next
   * measurement, mailhold's or the reference's, does not share the disk with that flush.
   */
  settle(): Promise<void>;
  server: ServerProcess;
  /** The environment the server was started with (DATABASE_URL included). */
  env: Record<string, string>;
  dataDir: string;
  /** Starts the server again on the same data; `waitReady: false` returns at spawn. */
  restart(opts?: { waitReady?: boolean }): Promise<ServerProcess>;
  /** Stops the server and removes its database and data directory. */
  close(): Promise<void>;
}

export async function openTarget(db: DbKind, env: Record<string, string>): Promise<Target> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mailhold-bench-'));
  const fullEnv: Record<string, string> = { LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', ...env };
  // BENCH_CPU_PROF=<dir>: every server writes a V8 CPU profile there when it stops.
  if (process.env.BENCH_CPU_PROF) {
    fullEnv.NODE_OPTIONS = `--import=${path.join(import.meta.dirname, 'cpu-prof.mjs')}`;
    fullEnv.BENCH_CPU_PROF_DIR = path.resolve(process.env.BENCH_CPU_PROF);
  }
  let drop = async () => {};
  if (db === 'postgres') {
    const empty = await createPostgresDatabase('mailhold_bench', adminUrl);
    fullEnv.DATABASE_URL = empty.url;
    drop = empty.drop;
  }
  let server: ServerProcess;
  try {
    server = await startServer({ env: fullEnv, dataDir });
  } catch (err) {
    await drop();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const target: Target = {
    db,
    async settle() {
      if (db !== 'postgres') return;
      const client = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await client`checkpoint`;
      } finally {
        await client.end();
      }
    },
    server,
    env: fullEnv,
    dataDir,
    async restart(opts = {}) {
      await target.server.stop();
      target.server = await startServer({ env: fullEnv, dataDir, waitReady: opts.waitReady });
      return target.server;
    },
    async close() {
      await target.server.stop().catch(() => {});
      await drop().catch((e) => console.error(`could not drop the bench database: ${e}`));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return target;
}

/**
 * A mailhold that delivers to a sink process (HOLD_SECONDS=30, the minimum): runs `measure` with
 * both, and closes both afterwards, whatever happens.
 */
export async function withUpstream<T>(db: DbKind, measure: (target: Target, sink: SinkProcess) => Promise<T>): Promise<T> {
  const sink = await startSink();
  try {
    const target = await openTarget(db, { HOLD_SECONDS: '30', UPSTREAM_URL: sink.url });
    try {
      return await measure(target, sink);
    } finally {
      await target.close();
    }
  } finally {
    await sink.close();
  }
}

/** Builds the server (`npx vite build`) when build/ is missing or older than the sources. */
export function ensureBuild(): void {
  const newest = (p: string): number => {
    const st = statSync(p);
    if (!st.isDirectory()) return st.mtimeMs;
    return Math.max(st.mtimeMs, ...readdirSync(p).map((f) => newest(path.join(p, f))));
  };
  const sources = ['src', 'drizzle', 'svelte.config.js', 'vite.config.ts', 'package.json'].map((p) => path.join(root, p)).filter(existsSync);
  if (existsSync(buildEntry) && Math.max(...sources.map(newest)) <= statSync(buildEntry).mtimeMs) return;
  console.log('building (build/ is missing or older than src/)...');
  execFileSync('npx', ['vite', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
