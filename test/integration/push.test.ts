import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { mails, pushSubscriptions, spentTokens } from '../../src/lib/server/db/schema.js';
import { loadVapidKeys } from '../../src/lib/server/push/vapid.js';
import { PushService } from '../../src/lib/server/push/service.js';
import { TOKEN_PURPOSE } from '../../src/lib/server/push/tokens.js';
import { deriveKey } from '../../src/lib/server/secret.js';
import { addUser, type User } from '../../src/lib/server/users.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { PushServiceDouble } from '../helpers/push-service.js';
import { log, send, startRelay, until, type StartedRelay } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';

let database: TestDatabase;
let alice: User;
let n = 0;
const cleanup: Array<() => Promise<void>> = [];

beforeAll(async () => {
  database = await createTestDatabase();
  alice = await addUser(database.db, 'alice@example.com', 'correct horse battery');
});
afterAll(async () => {
  await database.drop();
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await database.db.delete(pushSubscriptions);
  // Mail left held by one test must not be delivered to the next test's sink.
  await database.db.delete(mails);
});

interface Setup {
  clock: ManualClock;
  relay: StartedRelay;
  sink: Sink;
  double: PushServiceDouble;
  push: PushService;
}

async function setup(o: { allowLoopback?: boolean; timeoutMs?: number } = {}): Promise<Setup> {
  const clock = new ManualClock(Date.now());
  const sink = await new Sink().start();
  cleanup.push(() => sink.close());
  const relay = await startRelay(database.db, { clock, upstream: sink.url() });
  cleanup.push(() => relay.stop());
  const double = await new PushServiceDouble().start();
  cleanup.push(() => double.close());
  const push = await PushService.create({
    db: database.db,
    api: relay.relay.api,
    log,
    clock,
    tokenKey: deriveKey(Buffer.from('integration test secret, 32 chars or more'), TOKEN_PURPOSE),
    subject: 'mailto:postmaster@example.com',
    allowLoopback: o.allowLoopback ?? true,
    ca: double.cert,
    timeoutMs: o.timeoutMs ?? 2000,
    retry: { firstMs: 1000 },
  });
  push.start(relay.relay.bus);
  cleanup.push(() => push.stop(200));
  double.vapidKey = push.publicKey;
  return { clock, relay, sink, double, push };
}

async function subscribe(s: Setup, user = alice) {
  const sub = s.double.subscribe();
  const id = await s.push.subscriptions.save(user.id, { ...sub, label: `phone ${++n}` });
  return { ...sub, id };
}

/** Sends a mail from alice (the owner, by envelope sender from an allowlisted network). */
async function hold(s: Setup, subject = 'Wrong attachment', to = ['bob@example.net']) {
  await send({ port: s.relay.port, from: 'alice@example.com', to, subject });
  const items = (await s.relay.relay.api.list({ kind: 'all' }, { view: 'active' })).items;
  return items.find((m) => m.subject === subject)!;
}

/** Waits for the double to have received `count` pushes, and returns them. */
async function pushes(s: Setup, count: number, what: string) {
  await until(() => s.double.received.length === count, what);
  return s.double.received;
}

const mine = () => ({ kind: 'user', userId: alice.id }) as const;

describe('push on a held mail', () => {
  it('pushes the held mail to the owner, encrypted, with TTL = time left, urgency high and a topic per mail', async () => {
    const s = await setup();
    const phone = await subscribe(s);
    const laptop = await subscribe(s);
    const mail = await hold(s, 'Quarterly numbers', ['bob@example.net', 'carol@example.org', 'dan@example.com', 'erin@example.com', 'frank@example.com']);
    await until(() => s.double.received.length === 2, 'two pushes');
    expect(s.double.errors).toEqual([]);
    expect(new Set(s.double.received.map((r) => r.subscription))).toEqual(new Set([phone, laptop].map((p) => p.endpoint.split('/').pop())));
    for (const r of s.double.received) {
      expect(r.ttl).toBe(60);
      expect(r.urgency).toBe('high');
      expect(r.topic).toBe(mail.id.replaceAll('-', ''));
      expect(r.jwt.aud).toBe(s.double.origin);
      expect(r.jwt.sub).toBe('mailto:postmaster@example.com');
      expect(r.bytes).toBeLessThan(3000);
      expect(r.message).toMatchObject({
        v: 1,
        kind: 'held',
        id: mail.id,
        subject: 'Quarterly numbers',
        to: ['bob@example.net', 'carol@example.org', 'dan@example.com'],
        more: 2,
        dueAt: mail.dueAt,
        url: `/mail/${mail.id}`,
      });
      expect(typeof r.message.tokens.discard).toBe('string');
      expect(typeof r.message.tokens.send).toBe('string');
    }
    await s.push.idle();
    const devices = await s.push.subscriptions.devices(alice.id);
    expect(devices.map((d) => d.lastSuccessAt)).not.toContain(null);
  });

  it('discards from the notification button: the upstream never gets the mail, and a "Discarded" push replaces the first', async () => {
    const s = await setup();
    await subscribe(s);
    const mail = await hold(s);
    const [pushed] = await pushes(s, 1, 'the held push');
    const result = await s.push.act(pushed!.message.tokens.discard, '203.0.113.9');
    expect(result).toMatchObject({ status: 200, key: 'discarded', mailId: mail.id });
    const [, left] = await pushes(s, 2, 'the replacing push');
    expect(left!.topic).toBe(pushed!.topic);
    expect(left!.message).toMatchObject({ kind: 'left', id: mail.id, outcome: 'discarded' });
    s.clock.advance(120_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(s.sink.received).toHaveLength(0);
    const detail = await s.relay.relay.api.get(mine(), mail.id);
    expect(detail).toMatchObject({ state: 'discarded', actionBy: 'push', actionIp: '203.0.113.9' });
  });

  it('sends at once from the Send now button, and pushes "Sent" when it has gone', async () => {
    const s = await setup();
    await subscribe(s);
    const mail = await hold(s);
    const [pushed] = await pushes(s, 1, 'the held push');
    expect(await s.push.act(pushed!.message.tokens.send, '203.0.113.9')).toMatchObject({ status: 200, key: 'sentNow' });
    await s.sink.waitFor(1);
    const [, left] = await pushes(s, 2, 'the replacing push');
    expect(left!.message).toMatchObject({ kind: 'left', id: mail.id, outcome: 'sent' });
    expect(left!.urgency).toBe('normal');
  });

  it('pushes nothing for a mail of another user, and nothing when the owner has no device', async () => {
    const s = await setup();
    const bob = await addUser(database.db, `bob${++n}@example.com`, 'another good password');
    await subscribe(s, bob);
    await hold(s, 'Only alice');
    await new Promise((r) => setTimeout(r, 300));
    expect(s.double.received).toHaveLength(0);
  });
});

describe('push action tokens against the database', () => {
  it('acts once: a replay changes nothing and says so', async () => {
    const s = await setup();
    await subscribe(s);
    const mail = await hold(s);
    const [pushed] = await pushes(s, 1, 'the held push');
    expect((await s.push.act(pushed!.message.tokens.discard, '203.0.113.9')).key).toBe('discarded');
    expect(await s.push.act(pushed!.message.tokens.discard, '203.0.113.9')).toMatchObject({ status: 409, key: 'used' });
    expect((await s.relay.relay.api.get(mine(), mail.id))?.state).toBe('discarded');
    const spent = await database.db.select().from(spentTokens);
    expect(spent.length).toBeGreaterThan(0);
  });

  it('acts only on its own mail', async () => {
    const s = await setup();
    await subscribe(s);
    const first = await hold(s, 'First');
    await until(() => s.double.received.length === 1, 'first push');
    const second = await hold(s, 'Second');
    await until(() => s.double.received.length === 2, 'second push');
    const token = s.double.received.find((r) => r.message.id === first.id)!.message.tokens.discard;
    expect((await s.push.act(token, '203.0.113.9')).mailId).toBe(first.id);
    expect((await s.relay.relay.api.get(mine(), second.id))?.state).toBe('held');
  });

  it('says too late after the mail was released, and does not discard it', async () => {
    const s = await setup();
    await subscribe(s);
    const mail = await hold(s);
    const [pushed] = await pushes(s, 1, 'the held push');
    await s.relay.relay.api.sendNow(mine(), mail.id, { by: 'page', userId: alice.id });
    await s.sink.waitFor(1);
    expect(await s.push.act(pushed!.message.tokens.discard, '203.0.113.9')).toMatchObject({ status: 409, key: 'tooLateSent' });
    expect(await s.push.act(pushed!.message.tokens.send, '203.0.113.9')).toMatchObject({ status: 409 });
  });

  it('expires at the due time', async () => {
    const s = await setup();
    await subscribe(s);
    const mail = await hold(s);
    const [pushed] = await pushes(s, 1, 'the held push');
    s.clock.advance(60_000);
    expect(await s.push.act(pushed!.message.tokens.discard, '203.0.113.9')).toMatchObject({ status: 410, key: 'expired' });
    await s.sink.waitFor(1);
    await until(async () => (await s.relay.relay.api.get(mine(), mail.id))?.state === 'sent', 'sent');
  });

  it('refuses a tampered token', async () => {
    const s = await setup();
    await subscribe(s);
    const mail = await hold(s);
    const [pushed] = await pushes(s, 1, 'the held push');
    const token: string = pushed!.message.tokens.discard;
    expect(await s.push.act(`${token.slice(0, -3)}AAA`, '203.0.113.9')).toMatchObject({ status: 403, key: 'invalid' });
    expect((await s.relay.relay.api.get(mine(), mail.id))?.state).toBe('held');
  });
});

describe('push service answers', () => {
  it('deletes a subscription answered 404 or 410', async () => {
    const s = await setup();
    const gone404 = await subscribe(s);
    const gone410 = await subscribe(s);
    s.double.answers = [404, 410];
    await hold(s);
    await until(async () => (await s.push.subscriptions.forUser(alice.id)).length === 0, 'subscriptions deleted');
    expect(s.double.received).toHaveLength(2);
    expect([gone404.id, gone410.id]).toHaveLength(2);
  });

  it('retries after 429 (Retry-After) and 5xx, with the TTL shrinking to the time left', async () => {
    const s = await setup();
    await subscribe(s);
    s.double.answers = [{ status: 429, retryAfter: 5 }, 503];
    await hold(s);
    await until(() => s.double.received.length === 1, 'first try');
    await s.push.idle();
    s.clock.advance(5_000);
    await until(() => s.double.received.length === 2, 'retry after Retry-After');
    expect(s.double.received[1]!.ttl).toBe(55);
    await s.push.idle();
    s.clock.advance(2_000);
    await until(() => s.double.received.length === 3, 'retry after 503');
    expect(s.double.received[2]!.ttl).toBe(53);
    await until(async () => (await s.push.subscriptions.devices(alice.id))[0]?.failures === 0, 'success recorded');
  });

  it('stops retrying the held push once the mail has left', async () => {
    const s = await setup();
    await subscribe(s);
    s.double.otherwise = 500;
    const mail = await hold(s);
    await until(() => s.double.received.length === 1, 'first try');
    await s.push.idle();
    await s.relay.relay.api.discard(mine(), mail.id, { by: 'page' });
    s.clock.advance(30_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.double.received).toHaveLength(1);
  });

  it('never lets a hanging push service delay the release', async () => {
    const s = await setup({ timeoutMs: 30_000 });
    await subscribe(s);
    s.double.otherwise = 'hang';
    const started = Date.now();
    await hold(s);
    await until(() => s.double.received.length === 1, 'the push arrived (and hangs)');
    s.clock.advance(60_000);
    await s.sink.waitFor(1, 5000);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('endpoints checked at send time', () => {
  it('sends nothing to a loopback endpoint without the test option, even one stored behind the check', async () => {
    const s = await setup({ allowLoopback: false });
    const sub = s.double.subscribe();
    await expect(s.push.subscriptions.save(alice.id, sub)).rejects.toThrow(/must not point at a loopback/);
    await database.db.insert(pushSubscriptions).values({ userId: alice.id, endpoint: sub.endpoint, p256dh: sub.keys.p256dh, auth: sub.keys.auth });
    await hold(s);
    await until(async () => (await s.push.subscriptions.devices(alice.id))[0]?.failures === 1, 'the refusal counted');
    expect(s.double.received).toHaveLength(0);
  });

  it('refuses subscriptions with keys that are not P-256 points and 16-byte secrets', async () => {
    const s = await setup();
    const sub = s.double.subscribe();
    await expect(s.push.subscriptions.save(alice.id, { ...sub, keys: { ...sub.keys, auth: 'AAAA' } })).rejects.toThrow(/auth/);
    await expect(s.push.subscriptions.save(alice.id, { ...sub, keys: { ...sub.keys, p256dh: Buffer.alloc(65, 1).toString('base64url') } })).rejects.toThrow(/p256dh/);
  });

  it('moves an endpoint to whoever subscribed on the device last', async () => {
    const s = await setup();
    const bob = await addUser(database.db, `bob${++n}@example.com`, 'another good password');
    const sub = s.double.subscribe();
    await s.push.subscriptions.save(alice.id, sub);
    await s.push.subscriptions.save(bob.id, sub);
    expect(await s.push.subscriptions.forUser(alice.id)).toHaveLength(0);
    const rows = await database.db.select().from(pushSubscriptions).where(eq(pushSubscriptions.endpoint, sub.endpoint));
    expect(rows.map((r) => r.userId)).toEqual([bob.id]);
  });
});

describe('VAPID keys', () => {
  it('are made once and kept', async () => {
    const a = await loadVapidKeys(database.db);
    const b = await loadVapidKeys(database.db);
    expect(b).toEqual(a);
    expect(Buffer.from(a.publicKey, 'base64url')).toHaveLength(65);
  });
});
