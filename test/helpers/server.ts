import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * The built server (`build/index.js`, made by `npm run build`) in a child process, as a user
 * runs it: under Node, or under Deno. Ports are picked free; the data directory is fresh unless
 * given.
 */
export const root = path.resolve(import.meta.dirname, '../..');
export const buildEntry = path.join(root, 'build', 'index.js');

/**
 * The Deno executable from the `deno` npm package. node_modules/.bin/deno is a Node launcher that
 * runs it as a child and does not pass signals on, so the binary is run directly.
 */
export function denoBinary(): string {
  const platform = `${process.platform}-${process.arch}`;
  const candidates = [
    path.join(root, 'node_modules', 'deno', 'deno'),
    ...(platform === 'linux-x64' ? ['linux-x64-glibc', 'linux-x64-musl'] : [platform]).map((p) => path.join(root, 'node_modules', '@deno', p, 'deno')),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`no Deno executable in node_modules (looked for ${candidates.join(', ')}): run npm ci`);
  return found;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface ServerProcess {
  child: ChildProcess;
  webPort: number;
  /** The web port (same as webPort). */
  port: number;
  smtpPort: number;
  dataDir: string;
  url: string;
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

export interface StartOptions {
  env?: Record<string, string>;
  dataDir?: string;
  /** `npm-start` runs scripts/start.js, which builds first when the build is missing or stale. */
  runtime?: 'node' | 'deno' | 'npm-start';
  /** Resolve once /healthz answers (default), or at once (for starts that are meant to fail). */
  waitReady?: boolean;
}

export async function startServer(opts: StartOptions = {}): Promise<ServerProcess> {
  if (!existsSync(buildEntry)) throw new Error('build/index.js is missing: run `npm run build` first (npm test does)');
  const webPort = Number(opts.env?.PORT ?? (await freePort()));
  const smtpPort = Number(opts.env?.SMTP_PORT ?? (await freePort()));
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'mailhold-e2e-'));
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    PORT: String(webPort),
    HOST: '127.0.0.1',
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(smtpPort),
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG ? 'debug' : 'info',
    ...opts.env,
  };
  const command =
    opts.runtime === 'deno'
      ? [denoBinary(), ['run', '-A', buildEntry]]
      : opts.runtime === 'npm-start'
        ? [process.execPath, [path.join(root, 'scripts', 'start.js')]]
        : [process.execPath, [buildEntry]];
  const child = spawn(command[0] as string, command[1] as string[], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${webPort}`;
  const server: ServerProcess = {
    child,
    webPort,
    port: webPort,
    smtpPort,
    dataDir,
    url,
    output: () => out,
    exited,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  if (opts.waitReady === false) return server;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${out}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return server;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`the server did not answer /healthz within 60 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resident memory of a process now, and its high-water mark, in bytes (Linux). */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

export type RunningServer = ServerProcess;
