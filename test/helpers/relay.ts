import nodemailer from 'nodemailer';
import { parseConfig, type Config } from '../../src/lib/server/config.js';
import { silentLogger, createLogger } from '../../src/lib/server/log.js';
import type { Clock } from '../../src/lib/relay/clock.js';
import { Relay, type RelayOptions } from '../../src/lib/relay/relay.js';
import type { Db } from '../../src/lib/server/db/client.js';

export const log = process.env.TEST_LOG ? createLogger('debug') : silentLogger;

/** A configuration as from the environment, listening on 127.0.0.1 with a port the OS picks. */
export function testConfig(env: Record<string, string> = {}, upstream?: URL): Config {
  const config = parseConfig({ SMTP_HOST: '127.0.0.1', DATA_DIR: '/tmp/mailhold-unused', ...env, ...(upstream ? { UPSTREAM_URL: upstream.href } : {}) });
  config.smtp.port = 0;
  if (config.smtp.smtpsPort !== undefined) config.smtp.smtpsPort = 0;
  return config;
}

export interface StartedRelay {
  relay: Relay;
  port: number;
  /** The implicit-TLS port, when SMTPS_PORT was given (any value: the OS picks the port). */
  smtpsPort: number | undefined;
  config: Config;
  stop(): Promise<void>;
}

export async function startRelay(
  db: Db,
  opts: { env?: Record<string, string>; upstream?: URL; clock?: Clock } & Partial<Omit<RelayOptions, 'config' | 'db' | 'clock'>> = {},
): Promise<StartedRelay> {
  const { env, upstream, clock, ...rest } = opts;
  const config = testConfig(env, upstream);
  const relay = new Relay({
    config,
    db,
    log,
    clock,
    upstreamTimeouts: { connectionMs: 2000, greetingMs: 2000, socketMs: 1500 },
    worker: { sweepMs: 200 },
    ...rest,
  });
  await relay.start();
  return { relay, port: relay.smtpAddress?.port ?? 0, smtpsPort: relay.smtpsAddress?.port, config, stop: () => relay.stop() };
}

export interface SendOptions {
  port: number;
  host?: string;
  from?: string;
  to?: string[];
  raw?: string | Buffer;
  subject?: string;
  auth?: { user: string; pass: string };
  localAddress?: string;
  /** Encrypt: STARTTLS (required) or implicit TLS, trusting `ca`. Without it, plain SMTP. */
  tls?: { mode: 'starttls' | 'implicit'; ca: Buffer };
}

export function rawMail(o: { from?: string; to?: string[]; subject?: string; body?: string; headers?: string[] } = {}): string {
  const from = o.from ?? 'alice@example.com';
  const to = o.to ?? ['bob@example.net'];
  return [
    `From: Alice <${from}>`,
    `To: ${to.join(', ')}`,
    `Subject: ${o.subject ?? 'Hello'}`,
    'Date: Mon, 05 Jan 2026 09:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@example.com>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...(o.headers ?? []),
    '',
    o.body ?? 'Hi Bob,\r\nsee you tomorrow.\r\n',
  ].join('\r\n');
}

/** Sends one mail over SMTP with nodemailer (a real client on a real socket). */
export async function send(o: SendOptions): Promise<{ response: string }> {
  const transport = nodemailer.createTransport({
    host: o.host ?? '127.0.0.1',
    port: o.port,
    secure: o.tls?.mode === 'implicit',
    ignoreTLS: !o.tls,
    requireTLS: o.tls?.mode === 'starttls',
    ...(o.tls ? { tls: { ca: o.tls.ca, minVersion: 'TLSv1.2' } } : {}),
    auth: o.auth,
    localAddress: o.localAddress,
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 30_000,
  } as never);
  try {
    const from = o.from ?? 'alice@example.com';
    const to = o.to ?? ['bob@example.net'];
    return (await transport.sendMail({ envelope: { from, to }, raw: o.raw ?? rawMail({ from, to, subject: o.subject }) })) as { response: string };
  } finally {
    transport.close();
  }
}

export async function until<T>(fn: () => T | Promise<T>, what = 'condition', timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
