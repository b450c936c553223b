import { describe, expect, it } from 'vitest';
import { clearAlert, listAlerts } from '../../src/lib/relay/alerts.js';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { send, startRelay, until, type StartedRelay } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';
import { tlsFixture } from '../helpers/tls-fixture.js';

/** Issue 5: TLS towards the upstream; a TLS failure defers with an alert and never falls back to clear. */

const f = tlsFixture();

const RELAY_LOGIN = { user: 'relay@example.com', pass: 'relay-secret-pw' };

async function through(upstream: URL, clock: ManualClock) {
  const s = await startRelay(f.database.db, { clock, upstream, env: { DATA_DIR: f.database.dataDir, RELAY_NETWORKS: '127.0.0.1/32' } });
  f.started.push(s);
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
    f.sink = await new Sink({ tls: f.cert, auth: RELAY_LOGIN }).start();
    const clock = new ManualClock();
    const s = await through(f.sink.url(`ca=${encodeURIComponent(f.ca.caFile)}`, auth), clock);
    await send({ port: s.port, subject: 'up starttls' });
    clock.advance(60_000);
    const [got] = await f.sink.waitFor(1);
    expect(got!.secure).toBe(true);
    expect(got!.user).toBe(RELAY_LOGIN.user);
    expect(f.sink.commands.every((c) => c.secure)).toBe(true);
    await until(async () => (await stateOf(s, 'up starttls'))?.state === 'sent', 'sent');
  });

  it('delivers over implicit TLS (smtps://)', async () => {
    f.sink = await new Sink({ tls: f.cert, secure: true, auth: RELAY_LOGIN }).start();
    const clock = new ManualClock();
    const s = await through(f.sink.url(`ca=${encodeURIComponent(f.ca.caFile)}`, auth, 'smtps'), clock);
    await send({ port: s.port, subject: 'up smtps' });
    clock.advance(60_000);
    const [got] = await f.sink.waitFor(1);
    expect(got!.secure).toBe(true);
    await until(async () => (await stateOf(s, 'up smtps'))?.state === 'sent', 'sent');
  });

  it('defers with an admin alert, sending nothing, when the upstream certificate is not trusted', async () => {
    const untrusted = await f.ca.issue({ selfSigned: true });
    f.sink = await new Sink({ tls: untrusted, auth: RELAY_LOGIN }).start();
    const clock = new ManualClock();
    const s = await through(f.sink.url(`ca=${encodeURIComponent(f.ca.caFile)}`, auth), clock);
    await send({ port: s.port, subject: 'bad cert' });
    clock.advance(60_000);
    const mail = await until(async () => {
      const m = await stateOf(s, 'bad cert');
      return m?.state === 'deferred' ? m : undefined;
    }, 'deferred');
    expect(mail.lastReply).toMatch(/certificate/i);
    const alerts = await listAlerts(f.database.db);
    expect(alerts.find((a) => a.kind === 'upstream_tls')?.message).toMatch(/certificate/i);
    expect(f.sink.commands).toEqual([]);
    expect(f.sink.received).toEqual([]);
  });

  it('defers with an alert, and never logs in in clear, when the upstream offers no STARTTLS', async () => {
    await clearAlert(f.database.db, 'upstream_tls');
    f.sink = await new Sink({ auth: RELAY_LOGIN }).start();
    const clock = new ManualClock();
    const s = await through(f.sink.url('', auth), clock);
    await send({ port: s.port, subject: 'no starttls' });
    clock.advance(60_000);
    await until(async () => (await stateOf(s, 'no starttls'))?.state === 'deferred', 'deferred');
    expect((await listAlerts(f.database.db)).some((a) => a.kind === 'upstream_tls')).toBe(true);
    expect(f.sink.connections).toBeGreaterThan(0);
    expect(f.sink.commands).toEqual([]);
    expect(f.sink.received).toEqual([]);
  });
});
