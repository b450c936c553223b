import { existsSync } from 'node:fs';
import path from 'node:path';
import { config as loadDotEnv } from 'dotenv';
import { z } from 'zod';
import { parseNetworkList } from '../relay/networks.js';

/**
 * The whole configuration, validated once at start. Every variable belongs to a subsystem, and an
 * error names both, e.g. "[smtp] SMTP_PORT: must be a port number (1-65535)".
 */

const MIB = 1024 * 1024;

const port = (what: string) =>
  z.coerce
    .number({ message: `must be a ${what} port number (1-65535)` })
    .int({ message: `must be a ${what} port number (1-65535)` })
    .min(1, { message: `must be a ${what} port number (1-65535)` })
    .max(65535, { message: `must be a ${what} port number (1-65535)` });

/** A whole number of `unit`s from min to max; `spell` writes a bound the way people read it. */
const whole = (unit: string, min: number, max: number, spell: (n: number) => string = (n) => `${n} ${n === 1 ? unit : `${unit}s`}`) => {
  const range = `must be a whole number of ${unit}s from ${spell(min)} to ${spell(max)}`;
  return z.coerce
    .number({ message: range })
    .int({ message: range })
    .min(min, { message: `must be at least ${spell(min)}` })
    .max(max, { message: `must be at most ${spell(max)}` });
};

const seconds = (min: number, max: number) => whole('second', min, max);

const optionalString = z
  .string()
  .transform((v) => v.trim())
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const upstreamUrl = z
  .string()
  .trim()
  .transform((v, ctx) => {
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a URL like smtp://user:pass@host:587 or smtps://host:465' });
      return z.NEVER;
    }
    if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
      ctx.addIssue({ code: 'custom', message: `scheme must be smtp: or smtps:, not ${url.protocol}` });
      return z.NEVER;
    }
    if (!url.hostname) {
      ctx.addIssue({ code: 'custom', message: 'must name a host' });
      return z.NEVER;
    }
    return url;
  });

const networks = z.string().transform((v, ctx) => {
  try {
    return parseNetworkList(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** Each entry: variable name -> [subsystem, schema]. */
const variables = {
  DATABASE_URL: ['db', optionalString.pipe(z.string().regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://').optional())],
  DATA_DIR: ['db', z.string().trim().min(1).default('./data')],
  SMTP_HOST: ['smtp', z.string().trim().min(1).default('::')],
  SMTP_PORT: ['smtp', port('SMTP').default(2525)],
  SMTPS_PORT: ['smtp', port('SMTPS').optional()],
  SMTP_NAME: ['smtp', optionalString],
  TLS_CERT: ['smtp', optionalString],
  TLS_KEY: ['smtp', optionalString],
  HOLD_SECONDS: ['hold', seconds(30, 600).default(60)],
  UPSTREAM_URL: ['delivery', optionalString.pipe(upstreamUrl.optional())],
  RELAY_NETWORKS: ['smtp', networks.default(parseNetworkList('127.0.0.0/8, ::1/128'))],
  MAX_MESSAGE_BYTES: ['smtp', whole('byte', 1024, 1024 * MIB, (n) => (n === 1024 * MIB ? '1 GiB' : `${n} bytes`)).default(100 * MIB)],
  RETRY_WINDOW_SECONDS: ['delivery', seconds(0, 7 * 24 * 3600).default(600)],
  UPSTREAM_CONNECTIONS: ['delivery', whole('connection', 1, 100).default(20)],
  HISTORY_DAYS: ['history', whole('day', 1, 3650).default(7)],
  AUTH_MODE: ['auth', z.enum(['local', 'upstream'], { message: 'must be local or upstream' }).default('local')],
  SECRET_KEY: ['auth', optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional())],
  VAPID_SUBJECT: [
    'push',
    z
      .string()
      .trim()
      .regex(/^(mailto:[^@\s]+@[^@\s]+|https:\/\/\S+)$/, 'must be a mailto: address or an https: URL')
      .default('mailto:postmaster@localhost'),
  ],
  /** For tests only: lets push endpoints point at this machine (127.0.0.1, ::1, localhost). */
  PUSH_ALLOW_LOOPBACK: [
    'push',
    z
      .enum(['0', '1', 'false', 'true'], { message: 'must be 0 or 1 (1 only for tests)' })
      .default('0')
      .transform((v) => v === '1' || v === 'true'),
  ],
  ADMIN_EMAIL: ['auth', optionalString.pipe(z.email({ message: 'must be an email address' }).optional())],
  ADMIN_PASSWORD: ['auth', optionalString.pipe(z.string().min(8, 'must be at least 8 characters').optional())],
  PORT: ['web', port('web').default(3000)],
  HOST: ['web', z.string().trim().min(1).default('0.0.0.0')],
  ORIGIN: ['web', optionalString.pipe(z.url({ message: 'must be a URL like https://mailhold.example.com' }).optional())],
  LOG_LEVEL: [
    'log',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { message: 'must be one of fatal, error, warn, info, debug, trace, silent' }).default('info'),
  ],
} as const;

type Vars = typeof variables;
type Parsed = { [K in keyof Vars]: z.output<Vars[K][1]> };

export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  smtp: {
    host: string;
    port: number;
    smtpsPort: number | undefined;
    name: string | undefined;
    tlsCert: string | undefined;
    tlsKey: string | undefined;
    relayNetworks: ReturnType<typeof parseNetworkList>;
    maxMessageBytes: number;
  };
  holdSeconds: number;
  upstream: URL | undefined;
  retryWindowSeconds: number;
  upstreamConnections: number;
  historyDays: number;
  authMode: 'local' | 'upstream';
  secretKey: string | undefined;
  vapidSubject: string;
  pushAllowLoopback: boolean;
  admin: { email: string; password: string } | undefined;
  web: { port: number; host: string; origin: string | undefined };
  logLevel: Parsed['LOG_LEVEL'];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`mailhold cannot start, the configuration is not valid:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads `.env` (if any) into the environment without overriding what is already set. */
export function loadEnvFile(cwd = process.cwd()): void {
  const file = path.join(cwd, '.env');
  if (existsSync(file)) loadDotEnv({ path: file, quiet: true, override: false });
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, [subsystem, schema]] of Object.entries(variables)) {
    const raw = env[name];
    const result = (schema as z.ZodType).safeParse(raw === undefined || raw === '' ? undefined : raw);
    if (result.success) out[name] = result.data;
    else problems.push(`[${subsystem}] ${name}: ${result.error.issues.map((i) => i.message).join('; ')}`);
  }
  const v = out as Parsed;
  if (problems.length === 0) {
    if ((v.TLS_CERT === undefined) !== (v.TLS_KEY === undefined)) {
      problems.push('[smtp] TLS_CERT and TLS_KEY: set both or neither');
    }
    if ((v.ADMIN_EMAIL === undefined) !== (v.ADMIN_PASSWORD === undefined)) {
      problems.push('[auth] ADMIN_EMAIL and ADMIN_PASSWORD: set both or neither');
    }
    if (v.SMTPS_PORT !== undefined && v.SMTPS_PORT === v.SMTP_PORT) {
      problems.push('[smtp] SMTPS_PORT: must differ from SMTP_PORT');
    }
    if (v.AUTH_MODE === 'upstream' && v.UPSTREAM_URL === undefined) {
      problems.push('[auth] AUTH_MODE: upstream needs UPSTREAM_URL to check the logins against');
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    databaseUrl: v.DATABASE_URL,
    dataDir: path.resolve(v.DATA_DIR),
    smtp: {
      host: v.SMTP_HOST,
      port: v.SMTP_PORT,
      smtpsPort: v.SMTPS_PORT,
      name: v.SMTP_NAME,
      tlsCert: v.TLS_CERT,
      tlsKey: v.TLS_KEY,
      relayNetworks: v.RELAY_NETWORKS,
      maxMessageBytes: v.MAX_MESSAGE_BYTES,
    },
    holdSeconds: v.HOLD_SECONDS,
    upstream: v.UPSTREAM_URL,
    retryWindowSeconds: v.RETRY_WINDOW_SECONDS,
    upstreamConnections: v.UPSTREAM_CONNECTIONS,
    historyDays: v.HISTORY_DAYS,
    authMode: v.AUTH_MODE,
    secretKey: v.SECRET_KEY,
    vapidSubject: v.VAPID_SUBJECT,
    pushAllowLoopback: v.PUSH_ALLOW_LOOPBACK,
    admin: v.ADMIN_EMAIL && v.ADMIN_PASSWORD ? { email: v.ADMIN_EMAIL.toLowerCase(), password: v.ADMIN_PASSWORD } : undefined,
    web: { port: v.PORT, host: v.HOST, origin: v.ORIGIN },
    logLevel: v.LOG_LEVEL,
  };
}

const REDACTED = '(redacted)';

/** The effective configuration as variable = value lines, with every secret redacted. */
export function describeConfig(config: Config): Array<[string, string]> {
  const upstream = config.upstream ? new URL(config.upstream.href) : undefined;
  if (upstream?.password) upstream.password = REDACTED;
  const dbUrl = config.databaseUrl ? new URL(config.databaseUrl) : undefined;
  if (dbUrl?.password) dbUrl.password = REDACTED;
  return [
    ['DATABASE_URL', dbUrl ? decodeURIComponent(dbUrl.href) : '(unset: embedded PGlite in DATA_DIR)'],
    ['DATA_DIR', config.dataDir],
    ['SMTP_HOST', config.smtp.host],
    ['SMTP_PORT', String(config.smtp.port)],
    ['SMTPS_PORT', config.smtp.smtpsPort === undefined ? '(unset)' : String(config.smtp.smtpsPort)],
    ['SMTP_NAME', config.smtp.name ?? '(unset: the host name)'],
    ['TLS_CERT', config.smtp.tlsCert ?? '(unset: self-signed, kept in DATA_DIR/tls)'],
    ['TLS_KEY', config.smtp.tlsKey ? REDACTED : '(unset)'],
    ['HOLD_SECONDS', String(config.holdSeconds)],
    ['UPSTREAM_URL', upstream ? decodeURIComponent(upstream.href) : '(unset: built-in outbox)'],
    ['RELAY_NETWORKS', config.smtp.relayNetworks.map((n) => n.text).join(', ')],
    ['MAX_MESSAGE_BYTES', String(config.smtp.maxMessageBytes)],
    ['RETRY_WINDOW_SECONDS', String(config.retryWindowSeconds)],
    ['UPSTREAM_CONNECTIONS', String(config.upstreamConnections)],
    ['HISTORY_DAYS', String(config.historyDays)],
    ['AUTH_MODE', config.authMode],
    ['SECRET_KEY', config.secretKey ? REDACTED : '(unset: generated into DATA_DIR)'],
    ['VAPID_SUBJECT', config.vapidSubject],
    ['PUSH_ALLOW_LOOPBACK', config.pushAllowLoopback ? '1 (tests only: push to this machine allowed)' : '0'],
    ['ADMIN_EMAIL', config.admin?.email ?? '(unset)'],
    ['ADMIN_PASSWORD', config.admin ? REDACTED : '(unset)'],
    ['PORT', String(config.web.port)],
    ['HOST', config.web.host],
    ['ORIGIN', config.web.origin ?? '(unset)'],
    ['LOG_LEVEL', config.logLevel],
  ];
}
