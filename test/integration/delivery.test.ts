import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { listAlerts } from '../../src/lib/relay/alerts.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { rawMail, send, startRelay, until, type StartedRelay } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';

let database: TestDatabase;
let sink: Sink;
let started: StartedRelay | undefined;
const all = { kind: 'all' } as const;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});
afterEach(async () => {
  await started?.stop();
  started = undefined;
  await sink?.close();
});

async function setup(clock: ManualClock, opts: { sinkAuth?: { user: string; pass: string }; auth?: string } = {}) {
  sink = await new Sink({ auth: opts.sinkAuth }).start();
  started = await startRelay(database.db, { clock, upstream: sink.url('tls=none', opts.auth ?? '') });
  return started;
}

async function stateOf(id: string) {
  return (await started!.relay.api.get(all, id))?.state;
}

async function only(subject: string) {
  const list = [...(await started!.relay.api.list(all, { view: 'active', limit: 500 })).items, ...(await started!.relay.api.list(all, { view: 'history', limit: 500 })).items];
  return list.filter((m) => m.subject === subject);
}

/** Sends a mail, releases it at once (Send now) and returns its id. */
async function sendNow(port: number, o: { subject: string; from?: string; to?: string[]; raw?: string }) {
  await send({ port, from: o.from, to: o.to, raw: o.raw ?? rawMail({ from: o.from, to: o.to, subject: o.subject }) });
  const [m] = await only(o.subject);
  await started!.relay.api.sendNow(all, m!.id, { by: 'admin' });
  return m!.id;
}

function notices() {
  return sink.received.filter((m) => m.mailFrom === '');
}

describe('delivery', () => {
  it('retries a 4xx and delivers when the upstream recovers', async () => {
    const clock = new ManualClock();
    const { port } = await setup(clock);
    sink.rcpt = () => ({ code: 451, message: '4.3.0 Try again later' });
    const id = await sendNow(port, { subject: 'greylisted' });
    await until(async () => (await stateOf(id)) === 'deferred', 'deferred');
    const deferred = await started!.relay.api.get(all, id);
    expect(deferred!.lastReply).toMatch(/451/);
    expect(deferred!.dueAt - clock.now()).toBe(15_000);
    sink.rcpt = () => 'accept';
    clock.advance(15_000);
    await sink.waitFor(1);
    await until(async () => (await stateOf(id)) === 'sent', 'sent');
    expect(notices()).toHaveLength(0);
  });

  it('fails after the retry window with exactly one well-formed error mail to the sender', async () => {
    const clock = new ManualClock();
    const { port } = await setup(clock);
    sink.rcpt = (a) => (a.startsWith('postmaster') || a === 'alice@example.com' ? 'accept' : { code: 452, message: '4.2.2 Mailbox full' });
    const id = await sendNow(port, { subject: 'never gets through', from: 'alice@example.com', to: ['bob@example.net'] });
    // Step the clock through every retry up to the end of the 600 s window.
    for (let attempt = 1; attempt <= 10; attempt++) {
      const m = await until(async () => {
        const mail = await started!.relay.api.get(all, id);
        return mail && mail.attempts === attempt && ['deferred', 'failed'].includes(mail.state) ? mail : undefined;
      }, `attempt ${attempt} done`);
      if (m.state === 'failed') break;
      clock.set(m.dueAt);
    }
    const failed = await started!.relay.api.get(all, id);
    expect(failed!.state).toBe('failed');
    expect(failed!.attempts).toBe(7);
    expect(failed!.recipientStates[0]!.reply).toMatch(/retry window over.*452/);
    const [dsn] = await sink.waitFor(1).then(() => notices());
    expect(notices()).toHaveLength(1);
    expect(dsn!.recipients).toEqual(['alice@example.com']);
    const text = dsn!.raw.toString();
    expect(text).toMatch(/Content-Type: multipart\/report; report-type=delivery-status/);
    expect(text).toMatch(/Auto-Submitted: auto-replied/);
    expect(text).toMatch(/Content-Type: message\/delivery-status/);
    expect(text).toMatch(/Final-Recipient: rfc822; bob@example.net/);
    expect(text).toMatch(/Action: failed/);
    expect(text).toMatch(/Status: 4\.2\.2/);
    expect(text).toMatch(/Content-Type: text\/rfc822-headers/);
    expect(text).toMatch(/Subject: never gets through/);
    // The failed mail's content is gone.
    expect(await started!.relay.api.rawStart(all, id, 100)).toBeUndefined();
  });

  it('fails a 5xx recipient at once with an error mail, and delivers to the others', async () => {
    const clock = new ManualClock();
    const { port } = await setup(clock);
    sink.rcpt = (a) => (a === 'nobody@example.net' ? { code: 550, message: '5.1.1 No such user' } : 'accept');
    const id = await sendNow(port, { subject: 'one bad address', from: 'alice@example.com', to: ['bob@example.net', 'nobody@example.net'] });
    await sink.waitFor(2);
    await until(async () => (await stateOf(id)) === 'sent', 'sent');
    const m = await started!.relay.api.get(all, id);
    expect(m!.recipientStates.map((r) => [r.address, r.state])).toEqual([
      ['bob@example.net', 'sent'],
      ['nobody@example.net', 'failed'],
    ]);
    const delivered = sink.received.find((r) => r.mailFrom === 'alice@example.com');
    expect(delivered!.recipients).toEqual(['bob@example.net']);
    expect(notices()).toHaveLength(1);
    expect(notices()[0]!.raw.toString()).toMatch(/Status: 5\.1\.1/);
  });

  it('writes no error mail for a <> sender, an Auto-Submitted mail or a report', async () => {
    const clock = new ManualClock();
    const { port } = await setup(clock);
    sink.rcpt = (a) => (a === 'alice@example.com' ? 'accept' : { code: 550, message: '5.1.1 No such user' });
    const ids = [
      await sendNow(port, { subject: 'from null sender', from: '', raw: rawMail({ subject: 'from null sender' }) }),
      await sendNow(port, { subject: 'auto', from: 'alice@example.com', raw: rawMail({ subject: 'auto', headers: ['Auto-Submitted: auto-generated'] }) }),
      await sendNow(port, {
        subject: 'a report',
        from: 'alice@example.com',
        raw: rawMail({ subject: 'a report' }).replace('Content-Type: text/plain; charset=utf-8', 'Content-Type: multipart/report; report-type=delivery-status; boundary=x'),
      }),
    ];
    for (const id of ids) await until(async () => (await stateOf(id)) === 'failed', 'failed');
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.received).toHaveLength(0);
  });

  it('does not let a silent upstream stall the worker: the attempt times out and is retried', async () => {
    const clock = new ManualClock();
    const { port } = await setup(clock);
    sink.data = 'stall';
    const t0 = Date.now();
    const id = await sendNow(port, { subject: 'stalled' });
    await until(async () => (await stateOf(id)) === 'deferred', 'deferred', 15_000);
    expect(Date.now() - t0).toBeLessThan(8000);
    sink.data = 'accept';
    clock.advance(15_000);
    await until(async () => (await stateOf(id)) === 'sent', 'sent after the stall');
  });

  it('retries when the upstream drops the connection after DATA', async () => {
    const clock = new ManualClock();
    const { port } = await setup(clock);
    sink.data = 'drop';
    const id = await sendNow(port, { subject: 'dropped' });
    await until(async () => (await stateOf(id)) === 'deferred', 'deferred');
    sink.data = 'accept';
    clock.advance(15_000);
    await until(async () => (await stateOf(id)) === 'sent', 'sent after the drop');
    expect(sink.received).toHaveLength(1);
  });

  it('treats a 535 to our own credentials as temporary and raises an alert', async () => {
    const clock = new ManualClock();
    const { port } = await setup(clock, { sinkAuth: { user: 'relay', pass: 'right' }, auth: 'relay:wrong@' });
    const id = await sendNow(port, { subject: 'bad upstream password' });
    await until(async () => (await stateOf(id)) === 'deferred', 'deferred');
    const alerts = await listAlerts(database.db);
    expect(alerts.map((a) => a.kind)).toContain('upstream_auth');
    expect(notices()).toHaveLength(0);
  });
});

describe('the upstream size limit', () => {
  it('fails a mail over the SIZE the upstream announces at once, with an error mail, without retrying', async () => {
    const clock = new ManualClock();
    sink = await new Sink({ size: 4000 }).start();
    started = await startRelay(database.db, { clock, upstream: sink.url() });
    await sendNow(started.port, { subject: 'too big upstream', raw: rawMail({ subject: 'too big upstream', body: 'x'.repeat(20_000) }) });
    const failed = await until(async () => {
      const [now] = await only('too big upstream');
      return now?.state === 'failed' ? now : undefined;
    }, 'failed');
    expect(failed.lastReply).toMatch(/^552 5\.3\.4 .*larger than allowed 4000/);
    // Failed at the first attempt: no retry was scheduled, and the mail itself never went out.
    expect(failed.attempts).toBe(1);
    expect(sink.received.filter((r) => r.mailFrom !== '')).toEqual([]);
    const [report] = await until(() => (notices().length ? notices() : undefined), 'the error mail');
    expect(report!.raw.toString()).toMatch(/Status: 5\.3\.4/);
  });
});

describe('sessions to the upstream', () => {
  it('opens no more than UPSTREAM_CONNECTIONS at once, and still delivers everything due together', async () => {
    const clock = new ManualClock();
    sink = await new Sink().start();
    started = await startRelay(database.db, { clock, env: { UPSTREAM_CONNECTIONS: '3' }, upstream: sink.url() });
    const n = 30;
    await Promise.all(Array.from({ length: n }, (_, i) => send({ port: started!.port, raw: rawMail({ subject: `burst ${i}` }) })));
    clock.advance(60_000);
    void started.relay.worker!.poll();
    await sink.waitFor(n, 30_000);
    expect(new Set(sink.received.map((m) => /Subject: (.*)\r\n/.exec(m.raw.toString())![1])).size).toBe(n);
    expect(sink.mostOpen).toBeGreaterThan(1);
    expect(sink.mostOpen).toBeLessThanOrEqual(3);
  });
});

describe('the built-in outbox', () => {
  it('keeps delivered mail, with its content, when no upstream is set', async () => {
    const clock = new ManualClock();
    started = await startRelay(database.db, { clock });
    sink = await new Sink().start();
    await send({ port: started.port, subject: 'into the outbox' });
    const [m] = await only('into the outbox');
    clock.advance(60_000);
    await until(async () => (await stateOf(m!.id)) === 'sent', 'sent');
    const entries = await started.relay.api.outbox();
    const entry = entries.find((e) => e.mailId === m!.id);
    expect(entry?.recipients).toEqual(['bob@example.net']);
    expect((await started.relay.api.outboxMessage(entry!.id))!.toString()).toContain('Subject: into the outbox');
  });
});
