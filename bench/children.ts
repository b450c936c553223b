import { fork, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** The helper processes of the benchmarks: the sink (upstream) and the SMTP client. */
const here = import.meta.dirname;

export interface SinkRecord {
  subject: string;
  at: number;
  size: number;
  sha256: string;
}

export interface SinkProcess {
  port: number;
  url: string;
  report(): Promise<SinkRecord[]>;
  /** Resolves with the records once at least `n` have arrived, or rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs: number): Promise<SinkRecord[]>;
  close(): Promise<void>;
}

export async function startSink(): Promise<SinkProcess> {
  const child = fork(path.join(here, 'sink.mjs'), [], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`sink exited (${code})`)));
  });
  const port = (JSON.parse(first) as { port: number }).port;
  const ask = <T>(what: string) =>
    new Promise<T>((resolve) => {
      child.once('message', (m) => resolve(m as T));
      child.send(what);
    });
  const report = async () => (await ask<{ records: SinkRecord[] }>('report')).records;
  return {
    port,
    url: `smtp://127.0.0.1:${port}?tls=none`,
    report,
    async waitFor(n, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { count } = await ask<{ count: number }>('count');
        if (count >= n) return report();
        if (Date.now() > deadline) throw new Error(`sink: ${count} of ${n} mails arrived within ${Math.round(timeoutMs / 1000)} s`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    async close() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

/** Runs bench/smtp-client.mjs and returns the JSON it prints. */
export async function runClient<T>(args: Array<string | number>): Promise<T> {
  return runJson<T>(process.execPath, [path.join(here, 'smtp-client.mjs'), ...args.map(String)]);
}

export interface BulkResult {
  sent: number;
  errors: string[];
  errorCount: number;
  started: number;
  finished: number;
  mails: Array<{ subject: string; reply: string; acceptedAt: number; dueAt: number | null }>;
}

/** `count` mails over `sessions` concurrent SMTP sessions, Subject `${prefix}-n`. */
export async function sendBulk(port: number, count: number, sessions: number, prefix: string): Promise<BulkResult> {
  const r = await runClient<BulkResult>(['bulk', port, count, sessions, prefix]);
  if (r.sent < count) throw new Error(`only ${r.sent} of ${count} mails accepted: ${r.errors.slice(0, 3).join('; ')}`);
  return r;
}

/** Runs a command; resolves with its stdout once it exits 0, else rejects with its stderr. */
export function runText(cmd: string, args: string[], timeoutMs = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${path.basename(cmd)} ${args.slice(0, 2).join(' ')} exited ${code}: ${(err || out).trim().slice(-500)}`));
    });
  });
}

async function runJson<T>(cmd: string, args: string[]): Promise<T> {
  const out = await runText(cmd, args);
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}
