import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { rawMail, send, startRelay, until, type StartedRelay } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';

let database: TestDatabase;
let sink: Sink;
let started: StartedRelay[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});
afterEach(async () => {
  for (const s of started.splice(0)) await s.stop();
  await sink?.close();
});

async function setup(clock: ManualClock, env: Record<string, string> = {}) {
  sink = await new Sink().start();
  const s = await startRelay(database.db, { clock, upstream: sink.url(), env });
  started.push(s);
  return s;
}

const all = { kind: 'all' } as const;
const admin = { by: 'admin' } as const;

describe('the hold', () => {
  it('keeps a mail until its due time, then delivers the original bytes with the original envelope', async () => {
    const clock = new ManualClock();
    const { port, relay } = await setup(clock);
    const raw = rawMail({ subject: 'Quarterly numbers', to: ['bob@example.net'] }) + 'Bcc-less body with a bare\nLF\r\n';
    const response = await send({ port, from: 'alice@example.com', to: ['bob@example.net', 'hidden-bcc@example.org'], raw });
    expect(response.response).toMatch(/^250 /);

    const page = await relay.api.list(all, { view: 'active' });
    expect(page.items).toHaveLength(1);
    const [mail] = page.items;
    expect(mail!.state).toBe('held');
    expect(mail!.dueAt - mail!.receivedAt).toBe(60_000);
    expect(mail!.recipients).toEqual(['bob@example.net', 'hidden-bcc@example.org']);

    clock.advance(59_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.received).toHaveLength(0);

    clock.advance(1_000);
    const [got] = await sink.waitFor(1);
    expect(got!.mailFrom).toBe('alice@example.com');
    expect(got!.recipients).toEqual(['bob@example.net', 'hidden-bcc@example.org']);
    // Byte-identical except the one bare LF, which SMTP requires to be CRLF.
    expect(got!.raw.toString('latin1')).toBe(raw.replace('bare\nLF', 'bare\r\nLF'));
    await until(async () => (await relay.api.get(all, mail!.id))?.state === 'sent', 'state sent');
  });

  it('never delivers a mail discarded before its release, and says too late after', async () => {
    const clock = new ManualClock();
    const { port, relay } = await setup(clock);
    await send({ port, subject: 'Wrong attachment' });
    const [mail] = (await relay.api.list(all, { view: 'active' })).items;
    const result = await relay.api.discard(all, mail!.id, admin);
    expect(result).toEqual({ outcome: 'done', id: mail!.id, state: 'discarded' });
    const again = await relay.api.discard(all, mail!.id, admin);
    expect(again.outcome).toBe('too_late');
    clock.advance(120_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(sink.received).toHaveLength(0);
    const detail = await relay.api.get(all, mail!.id);
    expect(detail?.state).toBe('discarded');
    expect(detail?.actionBy).toBe('admin');
  });

  it('sends at once on Send now, and a later Discard says too late', async () => {
    const clock = new ManualClock();
    const { port, relay } = await setup(clock);
    await send({ port, subject: 'Go now' });
    const [mail] = (await relay.api.list(all, { view: 'active' })).items;
    expect((await relay.api.sendNow(all, mail!.id, admin)).outcome).toBe('done');
    await sink.waitFor(1);
    const late = await relay.api.discard(all, mail!.id, admin);
    expect(late.outcome).toBe('too_late');
    if (late.outcome === 'too_late') expect(['queued', 'sending', 'sent']).toContain(late.state);
  });

  it('never reports a discard as done for a mail that was delivered (the race, many times)', async () => {
    const clock = new ManualClock();
    const { port, relay } = await setup(clock);
    const n = 40;
    for (let i = 0; i < n; i++) await send({ port, subject: `race ${i}` });
    const ids = (await relay.api.list(all, { view: 'active', limit: 500 })).items.map((m) => m.id);
    expect(ids).toHaveLength(n);
    // The release and the discards run at the same moment.
    clock.advance(60_000);
    const results = await Promise.all(ids.map((id) => relay.api.discard(all, id, admin)));
    await until(async () => (await relay.api.list(all, { view: 'active' })).total === 0, 'all finished');
    const discarded = new Set(results.filter((r) => r.outcome === 'done').map((r) => r.id));
    const deliveredSubjects = new Set(sink.received.map((m) => /Subject: (.*)\r\n/.exec(m.raw.toString())![1]));
    for (const id of ids) {
      const mail = await relay.api.get(all, id);
      if (discarded.has(id)) {
        expect(mail!.state).toBe('discarded');
        expect(deliveredSubjects.has(mail!.subject)).toBe(false);
      } else {
        expect(mail!.state).toBe('sent');
        expect(deliveredSubjects.has(mail!.subject)).toBe(true);
      }
    }
    expect(sink.received.length + discarded.size).toBe(n);
  });

  it('resumes a hold after a restart without losing or shortening it', async () => {
    const clock = new ManualClock();
    const first = await setup(clock);
    await send({ port: first.port, subject: 'Across a restart' });
    clock.advance(30_000);
    await first.stop();
    started = started.filter((s) => s !== first);

    const second = await startRelay(database.db, { clock, upstream: sink.url() });
    started.push(second);
    clock.advance(29_000);
    await new Promise((r) => setTimeout(r, 400));
    expect(sink.received).toHaveLength(0);
    clock.advance(1_000);
    const [got] = await sink.waitFor(1);
    expect(got!.raw.toString()).toContain('Subject: Across a restart');
  });
});
