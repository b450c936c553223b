import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearAlert, listAlerts } from '../../src/lib/relay/alerts.js';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { send, startRelay, until, type StartedRelay } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';
import { TestCa, type Issued } from '../helpers/tls.js';

/** Issue 5: TLS towards the upstream; a TLS failure defers with an alert and never falls back to clear. */

const RELAY_LOGIN = { user: 'relay@example.com', pass: 'relay-secret-pw' };
let database: TestDatabase;
let ca: TestCa;
let good: Issued;
let sink: Sink | undefined;
let started: StartedRelay[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  ca = await new TestCa().init();
  good = await ca.issue();
});
afterAll(async () => {
  await database.drop();
  ca.remove();
});
afterEach(async () => {
  for (const s of started.splice(0)) await s.stop();
  await sink?.close();
  sink = undefined;
});

async function through(upstream: URL, clock: ManualClock) {
  const s = await startRelay(database.db, { clock, upstream, env: { DATA_DIR: database.dataDir, RELAY_NETWORKS: '127.0.0.1/32' } });
  started.push(s);
  return s;
}

async function stateOf(s: StartedRelay, subject: string) {
  for (const view of ['active', 'history'] as const) {
    const found = (await s.relay.api.list({ kind: 'all' }, { view, limit: 500 })).items.find((m) => m.subject === subject);
    if (found) return found;
  }
  return undefined;
}

const auth = `${encodeURIComponent(RELAY_LOGIN.user)}:${RELAY_LOGIN.pass}@`;

describe('TLS towards the upstream', () => {
  it('delivers over STARTTLS (required by default), logging in only inside TLS', async () => {
    sink = await new Sink({ tls: good, auth: RELAY_LOGIN }).start();
    const clock = new ManualClock();
    const s = await through(sink.url(`ca=${encodeURIComponent(ca.caFile)}`, auth), clock);
    await send({ port: s.port, subject: 'up starttls' });
    clock.advance(60_000);
    const [got] = await sink.waitFor(1);
    expect(got!.secure).toBe(true);
    expect(got!.user).toBe(RELAY_LOGIN.user);
    expect(sink.commands.every((c) => c.secure)).toBe(true);
    await until(async () => (await stateOf(s, 'up starttls'))?.state === 'sent', 'sent');
  });

  it('delivers over implicit TLS (smtps://)', async () => {
    sink = await new Sink({ tls: good, secure: true, auth: RELAY_LOGIN }).start();
    const clock = new ManualClock();
    const s = await through(sink.url(`ca=${encodeURIComponent(ca.caFile)}`, auth, 'smtps'), clock);
    await send({ port: s.port, subject: 'up smtps' });
    clock.advance(60_000);
    const [got] = await sink.waitFor(1);
    expect(got!.secure).toBe(true);
    await until(async () => (await stateOf(s, 'up smtps'))?.state === 'sent', 'sent');
  });

  it('defers with an admin alert, sending nothing, when the upstream certificate is not trusted', async () => {
    const untrusted = await ca.issue({ selfSigned: true });
    sink = await new Sink({ tls: untrusted, auth: RELAY_LOGIN }).start();
    const clock = new ManualClock();
    const s = await through(sink.url(`ca=${encodeURIComponent(ca.caFile)}`, auth), clock);
    await send({ port: s.port, subject: 'bad cert' });
    clock.advance(60_000);
    const mail = await until(async () => {
      const m = await stateOf(s, 'bad cert');
      return m?.state === 'deferred' ? m : undefined;
    }, 'deferred');
    expect(mail.lastReply).toMatch(/certificate/i);
    const alerts = await listAlerts(database.db);
    expect(alerts.find((a) => a.kind === 'upstream_tls')?.message).toMatch(/certificate/i);
    expect(sink.commands).toEqual([]);
    expect(sink.received).toEqual([]);
  });

  it('defers with an alert, and never logs in in clear, when the upstream offers no STARTTLS', async () => {
    await clearAlert(database.db, 'upstream_tls');
    sink = await new Sink({ auth: RELAY_LOGIN }).start();
    const clock = new ManualClock();
    const s = await through(sink.url('', auth), clock);
    await send({ port: s.port, subject: 'no starttls' });
    clock.advance(60_000);
    await until(async () => (await stateOf(s, 'no starttls'))?.state === 'deferred', 'deferred');
    expect((await listAlerts(database.db)).some((a) => a.kind === 'upstream_tls')).toBe(true);
    expect(sink.connections).toBeGreaterThan(0);
    expect(sink.commands).toEqual([]);
    expect(sink.received).toEqual([]);
  });
});
