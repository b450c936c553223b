import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { openDatabase, type Database } from '../../src/lib/server/db/client.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../helpers/db.js';
import { rawMail, send, startRelay, until } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';

let database: TestDatabase;
let sink: Sink;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await new Sink().start();
});
afterAll(async () => {
  await sink.close();
  await database.drop();
});

describe('several workers on one database', () => {
  it('deliver 500 mails exactly once', async () => {
    const clock = new ManualClock();
    const intake = await startRelay(database.db, { clock, upstream: sink.url(), deliver: false });
    const n = 500;
    const batch = 25;
    for (let i = 0; i < n; i += batch) {
      await Promise.all(Array.from({ length: batch }, (_, j) => send({ port: intake.port, raw: rawMail({ subject: `mail ${i + j}` }) })));
    }
    await intake.stop();

    // Each worker gets its own connections, as two processes on one PostgreSQL would.
    const extra: Database[] = [];
    const dbFor = async () => {
      if (dbKind === 'pglite') return database.db;
      const d = await openDatabase({ url: database.url!, dataDir: database.dataDir, poolSize: 4 });
      extra.push(d);
      return d.db;
    };
    const workers = await Promise.all(
      [0, 1].map(async () => startRelay(await dbFor(), { clock, upstream: sink.url(), intake: false, worker: { concurrency: 8, sweepMs: 50 } })),
    );
    const claimedBy = workers.map((w) => {
      let n = 0;
      w.relay.bus.subscribe((e) => e.type === 'MailSending' && n++);
      return () => n;
    });
    clock.advance(60_000);
    for (const w of workers) void w.relay.worker!.poll();
    await sink.waitFor(n, 60_000);
    await until(async () => (await workers[0]!.relay.api.list({ kind: 'all' }, { view: 'active' })).total === 0, 'queue empty', 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const subjects = sink.received.map((m) => /Subject: (.*)\r\n/.exec(m.raw.toString())![1]);
    expect(subjects).toHaveLength(n);
    expect(new Set(subjects).size).toBe(n);
    // Both took part, and together they claimed each mail once.
    expect(claimedBy.map((c) => c()).every((c) => c > 0)).toBe(true);
    expect(claimedBy.reduce((a, c) => a + c(), 0)).toBe(n);
    for (const w of workers) await w.stop();
    for (const d of extra) await d.close();
  });
});
