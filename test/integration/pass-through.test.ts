import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { CredentialStore } from '../../src/lib/server/auth/credentials.js';
import { LoginUnavailableError, webLogin } from '../../src/lib/server/auth/login.js';
import { upstreamCredentials, users } from '../../src/lib/server/db/schema.js';
import { deriveKey } from '../../src/lib/server/secret.js';
import { findUser } from '../../src/lib/server/users.js';
import { send, startRelay, until, type StartedRelay } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';
import { tlsFixture } from '../helpers/tls-fixture.js';

/** Issue 5: AUTH_MODE=upstream, the seed's pass-through login. */

const f = tlsFixture();

const SECRET_KEY = 'k'.repeat(40);
const CAROL = { user: 'carol@example.com', pass: 'provider password 1' };
const DAVE = { user: 'dave@example.com', pass: 'provider password 2' };
const OUTSIDE = '127.0.0.2';

async function setup(clock: ManualClock, upstream?: URL) {
  f.sink = await new Sink({ tls: f.cert, accounts: { [CAROL.user]: CAROL.pass, [DAVE.user]: DAVE.pass } }).start();
  const s = await startRelay(f.database.db, {
    clock,
    upstream: upstream ?? f.sink.url(`ca=${encodeURIComponent(f.ca.caFile)}`),
    env: { AUTH_MODE: 'upstream', SECRET_KEY, DATA_DIR: f.database.dataDir, RELAY_NETWORKS: '127.0.0.1/32', TLS_CERT: f.cert.certFile, TLS_KEY: f.cert.keyFile },
  });
  f.started.push(s);
  return s;
}

const mailer = (s: StartedRelay, login: { user: string; pass: string }, subject: string) =>
  send({ port: s.port, localAddress: OUTSIDE, tls: { mode: 'starttls', ca: f.ca.cert }, auth: login, from: login.user, subject });

async function storedLogin(userId: number) {
  const [row] = await f.database.db.select().from(upstreamCredentials).where(eq(upstreamCredentials.userId, userId));
  return row;
}

describe('AUTH_MODE=upstream', () => {
  it('accepts a login the upstream accepts, creates the account, and delivers with that login', async () => {
    const clock = new ManualClock();
    const s = await setup(clock);
    expect((await mailer(s, CAROL, 'pass-through 1')).response).toMatch(/^250 /);
    const carol = await findUser(f.database.db, CAROL.user);
    expect(carol).toBeDefined();
    const [row] = await f.database.db.select({ hash: users.passwordHash }).from(users).where(eq(users.id, carol!.id));
    expect(row!.hash).toBeNull();
    // The upstream saw the check inside TLS, and nothing was sent yet.
    expect(f.sink.commands).toEqual([{ command: 'AUTH', secure: true, user: CAROL.user }]);

    // Kept encrypted while the mail waits: neither the password nor its base64 is in the row.
    const sealed = (await until(() => storedLogin(carol!.id), 'stored login')).sealed;
    expect(sealed.includes(Buffer.from(CAROL.pass))).toBe(false);
    expect(sealed.toString('latin1')).not.toContain(Buffer.from(CAROL.pass).toString('base64'));
    expect(new CredentialStore(Buffer.from(SECRET_KEY)).open(carol!.id, sealed)).toEqual(CAROL);
    expect(new CredentialStore(Buffer.from('x'.repeat(40))).open(carol!.id, sealed)).toBeUndefined();
    expect(new CredentialStore(Buffer.from(SECRET_KEY)).open(carol!.id + 1, sealed)).toBeUndefined();
    expect(deriveKey(Buffer.from(SECRET_KEY), 'upstream-credentials').length).toBe(32);

    clock.advance(60_000);
    const [got] = await f.sink.waitFor(1);
    expect(got!.user).toBe(CAROL.user);
    expect(got!.secure).toBe(true);
    // Nothing of Carol's waits any more: her login is gone.
    await until(async () => (await storedLogin(carol!.id)) === undefined, 'login deleted');
  });

  it('refuses a login the upstream refuses with 535, creates nothing, and throttles like a local login', async () => {
    const s = await setup(new ManualClock());
    const wrong = { user: 'erin@example.com', pass: 'not her password' };
    await expect(mailer(s, wrong, 'nope')).rejects.toMatchObject({ responseCode: 535 });
    expect(await findUser(f.database.db, wrong.user)).toBeUndefined();
    for (let i = 0; i < 4; i++) await expect(mailer(s, wrong, 'nope')).rejects.toMatchObject({ responseCode: 535 });
    // Blocked now: even the upstream is not asked again.
    const asked = f.sink.commands.length;
    await expect(mailer(s, wrong, 'nope')).rejects.toMatchObject({ responseCode: 454 });
    expect(f.sink.commands.length).toBe(asked);
  });

  it('answers 454 4.7.0, never 535, while the upstream cannot be asked, and counts no failure', async () => {
    const clock = new ManualClock();
    const s = await setup(clock, new URL(`smtp://127.0.0.1:1?ca=${encodeURIComponent(f.ca.caFile)}`));
    for (let i = 0; i < 6; i++) {
      const err = await mailer(s, DAVE, 'upstream down').then(
        () => undefined,
        (e: { responseCode?: number; response?: string }) => e,
      );
      expect(err?.responseCode).toBe(454);
      expect(err?.response).toMatch(/^454 4\.7\.0 /);
    }
    expect(s.relay.throttle.retryAfter([`user:${DAVE.user}`])).toBe(0);
    // A provider answering 454 itself is "down" too.
    await s.stop();
    f.started = [];
    await f.sink.close();
    const s2 = await setup(clock);
    f.sink.authReply = { code: 454, message: 'Temporary authentication failure' };
    await expect(mailer(s2, DAVE, 'provider 454')).rejects.toMatchObject({ responseCode: 454 });
  });

  it('keeps the login while any mail of the user waits, and deletes it with the last one', async () => {
    const clock = new ManualClock();
    const s = await setup(clock);
    await mailer(s, DAVE, 'first');
    await mailer(s, DAVE, 'second');
    const dave = (await findUser(f.database.db, DAVE.user))!;
    await until(() => storedLogin(dave.id), 'stored login');
    const [first, second] = (await s.relay.api.list({ kind: 'user', userId: dave.id }, { view: 'active' })).items;
    expect((await s.relay.api.discard({ kind: 'all' }, first!.id, { by: 'admin' })).outcome).toBe('done');
    await new Promise((r) => setTimeout(r, 300));
    expect(await storedLogin(dave.id)).toBeDefined();
    expect((await s.relay.api.sendNow({ kind: 'all' }, second!.id, { by: 'admin' })).outcome).toBe('done');
    const [got] = await f.sink.waitFor(1);
    expect(got!.user).toBe(DAVE.user);
    await until(async () => (await storedLogin(dave.id)) === undefined, 'login deleted');
  });

  it('logs in to the web with the same upstream login, and says "unavailable" rather than "wrong" when it is down', async () => {
    const s = await setup(new ManualClock());
    expect((await webLogin({ relay: s.relay }, CAROL.user, CAROL.pass))?.email).toBe(CAROL.user);
    expect(await webLogin({ relay: s.relay }, CAROL.user, 'wrong password')).toBeUndefined();
    // The web login stores no provider password.
    const carol = (await findUser(f.database.db, CAROL.user))!;
    expect(await storedLogin(carol.id)).toBeUndefined();
    f.sink.authReply = { code: 421, message: 'Service not available' };
    await expect(webLogin({ relay: s.relay }, CAROL.user, CAROL.pass)).rejects.toBeInstanceOf(LoginUnavailableError);
  });
});
