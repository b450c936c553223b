import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { upstreamCredentials } from '../../src/lib/server/db/schema.js';
import { findUser } from '../../src/lib/server/users.js';
import { send, startRelay, until, type StartedRelay } from '../helpers/relay.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { Sink } from '../helpers/sink.js';
import { tlsFixture } from '../helpers/tls-fixture.js';

/** Issue 5: IPv6 and IPv4 on one dual-stack listener (SMTP_HOST=::), IPv6 networks and exclusions. */

const f = tlsFixture();

const FRANK = { user: 'frank@example.com', pass: 'provider password 3' };

async function dualStack(env: Record<string, string>, upstream?: URL, clock = new ManualClock()) {
  const s = await startRelay(f.database.db, {
    clock,
    upstream,
    env: { SMTP_HOST: '::', DATA_DIR: f.database.dataDir, TLS_CERT: f.cert.certFile, TLS_KEY: f.cert.keyFile, SMTPS_PORT: '4650', ...env },
  });
  f.started.push(s);
  return s;
}

async function find(s: StartedRelay, subject: string) {
  for (const view of ['active', 'history'] as const) {
    const found = (await s.relay.api.list({ kind: 'all' }, { view, limit: 500 })).items.find((m) => m.subject === subject);
    if (found) return found;
  }
  return undefined;
}

describe('IPv6', () => {
  it('listens on :: for IPv6 and IPv4 alike, and records each client address in one spelling', async () => {
    const s = await dualStack({ RELAY_NETWORKS: '127.0.0.1/32, ::1/128' });
    expect(s.relay.smtpAddress?.address).toBe('::');
    await send({ port: s.port, host: '::1', subject: 'from v6' });
    await send({ port: s.port, host: '127.0.0.1', subject: 'from v4' });
    expect((await find(s, 'from v6'))?.clientIp).toBe('::1');
    // An IPv4 client on a dual-stack socket arrives as ::ffff:127.0.0.1; it is stored as IPv4.
    expect((await find(s, 'from v4'))?.clientIp).toBe('127.0.0.1');
    const tls = await RawSmtp.connect({ port: s.smtpsPort!, host: '::1', tls: { ca: f.ca.cert, servername: 'localhost' } });
    expect((await tls.reply())[0]).toMatch(/^220 /);
    tls.close();
  });

  it('lets an IPv6 relay network relay and keeps an IPv4 client outside it', async () => {
    const s = await dualStack({ RELAY_NETWORKS: '::1/128' });
    expect((await send({ port: s.port, host: '::1', subject: 'v6 inside' })).response).toMatch(/^250 /);
    const v4 = await RawSmtp.connect({ port: s.port, host: '127.0.0.1' });
    await v4.reply();
    expect((await v4.command('EHLO v4.example')).join('\n')).not.toMatch(/AUTH/);
    expect((await v4.command('AUTH LOGIN'))[0]).toMatch(/^538 5\.7\.11 /);
    expect((await v4.command('MAIL FROM:<a@example.com>'))[0]).toMatch(/^530 5\.7\.0 /);
    v4.close();
  });

  it('matches an IPv6 source-IP exclusion', async () => {
    const s = await dualStack({ RELAY_NETWORKS: '::1/128' });
    await s.relay.policy.addExclusion('source_ip', '0:0:0:0:0:0:0:1/128');
    try {
      await send({ port: s.port, host: '::1', subject: 'v6 excluded' });
      const mail = await find(s, 'v6 excluded');
      expect(mail?.excludedBy).toBe('source_ip');
    } finally {
      for (const e of await s.relay.policy.listExclusions()) await s.relay.policy.removeExclusion(e.id);
    }
  });

  it('runs the whole pass-through flow over ::1: STARTTLS, upstream login check, delivery with that login over IPv6', async () => {
    f.sink = await new Sink({ host: '::1', tls: f.cert, accounts: { [FRANK.user]: FRANK.pass } }).start();
    const clock = new ManualClock();
    const upstream = f.sink.url(`ca=${encodeURIComponent(f.ca.caFile)}`);
    expect(upstream.hostname).toBe('[::1]');
    const s = await dualStack({ RELAY_NETWORKS: '127.0.0.1/32', AUTH_MODE: 'upstream', SECRET_KEY: 's'.repeat(40) }, upstream, clock);
    const res = await send({ port: s.port, host: '::1', tls: { mode: 'starttls', ca: f.ca.cert }, auth: FRANK, from: FRANK.user, subject: 'v6 pass-through' });
    expect(res.response).toMatch(/^250 /);
    expect(f.sink.commands[0]).toEqual({ command: 'AUTH', secure: true, user: FRANK.user });
    const mail = await find(s, 'v6 pass-through');
    expect(mail?.clientIp).toBe('::1');
    const frank = (await findUser(f.database.db, FRANK.user))!;
    const stored = () => f.database.db.select().from(upstreamCredentials).where(eq(upstreamCredentials.userId, frank.id));
    await until(async () => (await stored()).length === 1, 'stored login');
    clock.advance(60_000);
    const [got] = await f.sink.waitFor(1);
    expect(got!.user).toBe(FRANK.user);
    expect(got!.secure).toBe(true);
    await until(async () => (await stored()).length === 0, 'login deleted');
  });
});
