import type { Logger } from 'pino';
import { ConfigError, loadEnvFile, parseConfig, type Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { DataDirLockedError, lockDataDir } from './db/lock.js';
import { createLogger } from './log.js';
import { ensureUser } from './users.js';
import { Relay } from '../relay/relay.js';
import { PushService } from './push/service.js';
import { TOKEN_PURPOSE } from './push/tokens.js';
import { deriveKey, loadSecret } from './secret.js';

/**
 * The one mailhold of this process: configuration, database, relay. The web server starts it
 * from its `init` hook; everything on the server side reaches it through `getApp()`.
 */
export interface App {
  config: Config;
  database: Database;
  relay: Relay;
  push: PushService;
  log: Logger;
  /** Aborted when the process begins to shut down (live streams end on it). */
  shutdown: AbortSignal;
  stop(): Promise<void>;
}

let current: Promise<App> | undefined;

export function getApp(): Promise<App> {
  current ??= startApp();
  return current;
}

export async function startApp(env: Record<string, string | undefined> = process.env): Promise<App> {
  loadEnvFile();
  let config: Config;
  try {
    config = parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const started = Date.now();
  let unlock = () => {};
  if (!config.databaseUrl) {
    try {
      unlock = lockDataDir(config.dataDir);
    } catch (err) {
      if (err instanceof DataDirLockedError) {
        console.error(err.message);
        process.exit(1);
      }
      throw err;
    }
  }
  let database: Database;
  try {
    database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  } catch (err) {
    unlock();
    throw err;
  }
  if (config.admin && (await ensureUser(database.db, config.admin.email, config.admin.password, true))) {
    log.info({ email: config.admin.email }, 'admin created from ADMIN_EMAIL');
  }
  const relay = new Relay({ config, db: database.db, log });
  await relay.start();
  const push = await PushService.create({
    db: database.db,
    api: relay.api,
    log,
    tokenKey: deriveKey(loadSecret(config.secretKey, config.dataDir), TOKEN_PURPOSE),
    subject: config.vapidSubject,
    allowLoopback: config.pushAllowLoopback,
  });
  push.start(relay.bus);
  if (/@localhost$/.test(config.vapidSubject)) {
    log.warn({ subject: config.vapidSubject }, 'VAPID_SUBJECT names no reachable contact; some push services (Apple) refuse it: set it to mailto:you@your-domain');
  }
  if (config.pushAllowLoopback) log.warn('PUSH_ALLOW_LOOPBACK is set: push endpoints on this machine are allowed (tests only)');
  log.info(
    {
      db: database.kind,
      smtp: relay.smtpAddress?.port,
      smtps: relay.smtpsAddress?.port,
      tlsFingerprint: relay.tls.info?.fingerprint,
      authMode: config.authMode,
      upstream: config.upstream ? config.upstream.host : 'outbox',
      ms: Date.now() - started,
    },
    'mailhold started',
  );

  const controller = new AbortController();
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      controller.abort();
      log.info('mailhold stopping');
      await relay.stop().catch((err: unknown) => log.error({ err }, 'relay stop failed'));
      await push.stop().catch((err: unknown) => log.error({ err }, 'push stop failed'));
      await database.close().catch((err: unknown) => log.error({ err }, 'database close failed'));
      unlock();
      log.info('mailhold stopped');
    })());

  // SIGTERM: new SMTP connections get 421 at once, while the web server finishes its requests.
  const onSignal = () => {
    relay.intake?.drain();
    controller.abort();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // adapter-node emits this once its HTTP server has closed.
  process.once('sveltekit:shutdown' as never, () => {
    void stop().then(() => setTimeout(() => process.exit(0), 2000).unref());
  });
  return { config, database, relay, push, log, shutdown: controller.signal, stop };
}
