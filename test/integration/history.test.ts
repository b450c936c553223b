import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { ContentSink, purgeHistory, sweepOrphanContent } from '../../src/lib/relay/store.js';
import { rows } from '../../src/lib/server/db/client.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { send, startRelay, until } from '../helpers/relay.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

const DAY = 24 * 3600_000;

async function count(table: string): Promise<number> {
  const [row] = await rows<{ n: number }>(database.db, sql.raw(`select count(*)::int as n from ${table}`));
  return row!.n;
}

describe('history and leftovers', () => {
  it('keeps finished mail for HISTORY_DAYS, then removes it with everything it had', async () => {
    const clock = new ManualClock();
    const relay = await startRelay(database.db, { clock });
    await send({ port: relay.port, subject: 'old news' });
    await send({ port: relay.port, subject: 'kept' });
    const [a, b] = (await relay.relay.api.list({ kind: 'all' }, { view: 'active' })).items;
    await relay.relay.api.discard({ kind: 'all' }, a!.id, { by: 'admin' });
    await relay.relay.api.sendNow({ kind: 'all' }, b!.id, { by: 'admin' });
    await until(async () => (await relay.relay.api.get({ kind: 'all' }, b!.id))?.state === 'sent', 'sent');
    await relay.stop();
    expect(await count('outbox')).toBe(1);

    // Seven days later nothing goes; a moment after, both the mails and the outbox entry go.
    const now = clock.now();
    expect(await purgeHistory(database.db, new Date(now - 7 * DAY))).toEqual({ mails: 0, outbox: 0 });
    expect(await purgeHistory(database.db, new Date(now + 1000))).toEqual({ mails: 2, outbox: 1 });
    expect(await count('mails')).toBe(0);
    expect(await count('mail_recipients')).toBe(0);
    expect(await count('content_chunks')).toBe(0);
  });

  it('sweeps the content of a big mail whose intake never committed (a crash), but only after a grace period', async () => {
    const sink = new ContentSink(database.db);
    const big = Buffer.alloc(2 * 1024 * 1024, 'x');
    await new Promise<void>((resolve, reject) => sink.end(big, (err?: Error | null) => (err ? reject(err) : resolve())));
    expect(sink.spilled).toBe(true);
    const stored = await count('content_chunks');
    expect(stored).toBeGreaterThan(0);
    expect(await sweepOrphanContent(database.db, new Date(Date.now() - 3600_000))).toBe(0);
    expect(await sweepOrphanContent(database.db, new Date(Date.now() + 1000))).toBe(1);
    expect(await count('content_chunks')).toBe(0);
  });
});
