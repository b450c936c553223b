import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { CHUNK_BYTES } from '../../src/lib/relay/store.js';
import { rows } from '../../src/lib/server/db/client.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { send, startRelay, until } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';

let database: TestDatabase;
let sink: Sink;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await new Sink().start();
  sink.keep = 'hash';
});
afterAll(async () => {
  await sink.close();
  await database.drop();
});

const MIB = 1024 * 1024;

/** A message of `size` bytes made on the fly (never whole in memory), and its SHA-256 when done. */
function bigMessage(size: number): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  const head = Buffer.from('From: alice@example.com\r\nTo: bob@example.net\r\nSubject: the big one\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n');
  const line = Buffer.from(`${'0123456789abcdefghijklmnopqrstuvwxyz'.repeat(2)}0123\r\n`);
  let sent = 0;
  function* chunks() {
    hash.update(head);
    sent += head.length;
    yield head;
    const block = Buffer.concat(Array.from({ length: 1024 }, () => line));
    while (sent + block.length <= size) {
      hash.update(block);
      sent += block.length;
      yield block;
    }
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), digest: () => hash.digest('hex') };
}

function rssSampler() {
  const base = process.memoryUsage.rss();
  let peak = base;
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 25);
  return { stop: () => (clearInterval(t), (peak - base) / MIB) };
}

describe('a 100 MiB mail', () => {
  it('is accepted and delivered byte-identical without holding it in memory', async () => {
    const clock = new ManualClock();
    const relay = await startRelay(database.db, { clock, upstream: sink.url(), env: { MAX_MESSAGE_BYTES: String(200 * MIB) } });
    const msg = bigMessage(100 * MIB);
    const sampler = rssSampler();
    const t0 = Date.now();
    await send({ port: relay.port, raw: msg.stream as never });
    const acceptSeconds = (Date.now() - t0) / 1000;
    const acceptGrowth = sampler.stop();
    const [mail] = (await relay.relay.api.list({ kind: 'all' }, { view: 'active' })).items;
    expect(mail!.size).toBeGreaterThan(99 * MIB);
    const pieces = await rows<{ n: number; biggest: number }>(
      database.db,
      sql`select count(*)::int as n, max(length(data))::int as biggest from content_chunks where content_id = (select content_id from mails where id = ${mail!.id})`,
    );
    expect(pieces[0]!.n).toBe(Math.ceil(mail!.size / CHUNK_BYTES));
    expect(pieces[0]!.biggest).toBeLessThanOrEqual(CHUNK_BYTES);

    const deliverSampler = rssSampler();
    clock.advance(60_000);
    const [got] = await sink.waitFor(1, 120_000);
    const deliverGrowth = deliverSampler.stop();
    expect(got!.size).toBe(mail!.size);
    expect(got!.sha256).toBe(msg.digest());
    // This process also runs the sending client and the receiving sink, so its memory says little
    // about the relay's; test/e2e/server.test.ts measures the server process on its own. Here: the
    // message is stored in bounded pieces, never as one.
    console.log(`100 MiB in one process with client and sink: accepted in ${acceptSeconds.toFixed(1)} s, RSS growth ${acceptGrowth.toFixed(0)} MiB accepting, ${deliverGrowth.toFixed(0)} MiB delivering`);
    expect(acceptGrowth).toBeLessThan(400);
    await until(async () => (await relay.relay.api.get({ kind: 'all' }, mail!.id))?.state === 'sent', 'sent');
    await relay.stop();
  }, 240_000);
});
