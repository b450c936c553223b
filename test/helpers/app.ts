import { randomBytes } from 'node:crypto';
import { PushService } from '../../src/lib/server/push/service.js';
import type { App } from '../../src/lib/server/app.js';
import { makeContext, type ContextUser } from '../../src/lib/server/trpc/init.js';
import { createCaller } from '../../src/lib/server/trpc/caller.js';
import type { TestDatabase } from './db.js';
import { log, startRelay, type StartedRelay } from './relay.js';
import type { Clock } from '../../src/lib/relay/clock.js';

/**
 * An App as the web server has it (config, database, relay, shutdown signal) around a test
 * relay, and tRPC callers for any visitor, for testing the API without HTTP.
 */
export interface TestApp {
  app: App;
  started: StartedRelay;
  shutdown: AbortController;
  caller(user: ContextUser | null, ip?: string): Promise<ReturnType<typeof createCaller>>;
  stop(): Promise<void>;
}

export async function startTestApp(database: TestDatabase, opts: { upstream?: URL; clock?: Clock; env?: Record<string, string> } = {}): Promise<TestApp> {
  const started = await startRelay(database.db, opts);
  const shutdown = new AbortController();
  const push = await PushService.create({
    db: database.db,
    api: started.relay.api,
    log,
    tokenKey: randomBytes(32),
    subject: 'mailto:postmaster@example.com',
    allowLoopback: true,
  });
  push.start(started.relay.bus);
  const app: App = {
    config: started.config,
    database,
    relay: started.relay,
    push,
    log,
    shutdown: shutdown.signal,
    stop: async () => {
      shutdown.abort();
      await push.stop();
      await started.stop();
    },
  };
  return {
    app,
    started,
    shutdown,
    caller: async (user, ip = '127.0.0.1') => createCaller(await makeContext(app, user, ip)),
    stop: () => app.stop(),
  };
}
