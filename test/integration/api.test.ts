import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { addUser, type User } from '../../src/lib/server/users.js';
import { createSession, deleteSession, readSession } from '../../src/lib/server/auth/sessions.js';
import { setIpView } from '../../src/lib/server/web-settings.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { rawMail, send, until } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';

let database: TestDatabase;
let sink: Sink;
let t: TestApp;
let clock: ManualClock;
let alice: User;
let bob: User;
let admin: User;
const PASSWORD = 'correct horse battery';

async function sendAs(user: User | null, subject: string, extra: { localAddress?: string; body?: string } = {}) {
  const from = user?.email ?? 'nobody@example.com';
  await send({
    port: t.started.port,
    from,
    to: ['carol@example.net', 'dave@example.org'],
    raw: rawMail({ from, to: ['carol@example.net', 'dave@example.org'], subject, body: extra.body }),
    auth: user ? { user: user.email, pass: PASSWORD } : undefined,
    localAddress: extra.localAddress,
  });
}

async function idOf(subject: string): Promise<string> {
  const all = await (await t.caller(admin)).mail.list({ view: 'active', limit: 500 });
  const m = all.items.find((i) => i.subject === subject);
  if (!m) throw new Error(`no mail ${subject}`);
  return m.id;
}

async function rejection(p: Promise<unknown>): Promise<TRPCError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TRPCError) return err;
    throw err;
  }
  throw new Error('expected the call to be refused');
}

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await new Sink().start();
  clock = new ManualClock(Date.now());
  t = await startTestApp(database, { upstream: sink.url(), clock });
  alice = await addUser(database.db, 'alice@example.com', PASSWORD);
  bob = await addUser(database.db, 'bob@example.com', PASSWORD);
  admin = await addUser(database.db, 'admin@example.com', PASSWORD, true);
});
afterAll(async () => {
  await t?.stop();
  await sink?.close();
  await database?.drop();
});

describe('mail procedures', () => {
  it('lists a user only their own mail, and an admin all of it with the owner', async () => {
    await sendAs(alice, 'alice one');
    await sendAs(bob, 'bob one');
    const mine = await (await t.caller(alice)).mail.list({ view: 'active' });
    expect(mine.items.map((m) => m.subject)).toEqual(['alice one']);
    expect(mine.total).toBe(1);
    const all = await (await t.caller(admin)).mail.list({ view: 'active' });
    // Both were received at the same (stopped) clock time: compare without the order.
    expect(all.items.map((m) => [m.subject, m.owner?.email]).sort()).toEqual([
      ['alice one', 'alice@example.com'],
      ['bob one', 'bob@example.com'],
    ]);
  });

  it("answers another user's mail id with the same NOT_FOUND as an id that does not exist", async () => {
    await sendAs(bob, 'bob private');
    const id = await idOf('bob private');
    const a = await t.caller(alice);
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const call of [(x: string) => a.mail.get({ id: x }), (x: string) => a.mail.discard({ id: x }), (x: string) => a.mail.sendNow({ id: x })]) {
      const foreign = await rejection(call(id));
      const absent = await rejection(call(missing));
      expect(foreign.code).toBe('NOT_FOUND');
      expect([foreign.code, foreign.message]).toEqual([absent.code, absent.message]);
    }
    const still = await (await t.caller(bob)).mail.get({ id });
    expect(still.state).toBe('held');
  });

  it("bulk actions touch only the caller's own held mail, even when given other ids", async () => {
    await sendAs(alice, 'alice bulk');
    await sendAs(bob, 'bob bulk');
    const bobsId = await idOf('bob bulk');
    const a = await t.caller(alice);
    const discarded = await a.mail.discardAll({ ids: [bobsId] });
    expect(discarded.count).toBe(0);
    const sent = await a.mail.sendAll({ ids: [bobsId] });
    expect(sent.count).toBe(0);
    const all = await a.mail.discardAll();
    expect(all.count).toBe(2); // "alice one" and "alice bulk"
    const b = await t.caller(bob);
    expect((await b.mail.get({ id: bobsId })).state).toBe('held');
    expect((await b.mail.status()).held).toBe(3);
    const released = await b.mail.sendAll();
    expect(released.count).toBe(3);
    await sink.waitFor(3);
    expect(sink.received.every((r) => r.mailFrom === 'bob@example.com')).toBe(true);
  });

  it('says too late, with the state and the time, when a discard comes after Send now', async () => {
    await sendAs(alice, 'go now');
    const id = await idOf('go now');
    const a = await t.caller(alice);
    expect(await a.mail.sendNow({ id })).toMatchObject({ outcome: 'done', state: 'queued' });
    await until(async () => (await a.mail.get({ id })).state === 'sent', 'sent');
    const late = await a.mail.discard({ id });
    expect(late).toMatchObject({ outcome: 'too_late', state: 'sent' });
    expect(late.outcome === 'too_late' && typeof late.at === 'number').toBe(true);
  });

  it('shows one mail with all recipients, the headers and the body as text', async () => {
    await sendAs(alice, 'with body', { body: '<b>Hello</b> Carol,\r\nthe numbers.\r\n' });
    const id = await idOf('with body');
    const m = await (await t.caller(alice)).mail.get({ id });
    expect(m.recipientStates.map((r) => r.address)).toEqual(['carol@example.net', 'dave@example.org']);
    expect(m.headers).toContain('Subject: with body');
    expect(m.preview?.text).toBe('<b>Hello</b> Carol,\nthe numbers.\n');
  });

  it('keeps a history of discarded mail with who discarded it and from where', async () => {
    await sendAs(alice, 'regret');
    const id = await idOf('regret');
    const a = await t.caller(alice, '127.0.0.9');
    expect((await a.mail.discard({ id })).outcome).toBe('done');
    const history = await a.mail.list({ view: 'history' });
    const entry = history.items.find((m) => m.id === id);
    expect(entry).toMatchObject({ state: 'discarded', actionBy: 'page', actionIp: '127.0.0.9', actionUser: 'alice@example.com' });
    expect(history.items.every((m) => m.owner?.id === alice.id)).toBe(true);
  });
});

describe('paging', () => {
  it('walks a long list page by page with the cursor, each mail once', async () => {
    const c = await t.caller(admin);
    const total = (await c.mail.list({ view: 'active', limit: 1 })).total;
    for (let i = 0; i < 5; i++) await sendAs(alice, `page ${i}`);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await c.mail.list({ view: 'active', limit: 2, cursor });
      seen.push(...page.items.map((m) => m.id));
      cursor = page.next ?? undefined;
      pages++;
    } while (cursor);
    expect(seen).toHaveLength(total + 5);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBe(Math.ceil((total + 5) / 2));
    await c.mail.discardAll();
  });
});

describe('the changes subscription', () => {
  it("delivers a mail held over SMTP to its owner, and nothing of another user's mail", async () => {
    const aliceEvents = await (await t.caller(alice)).mail.changes();
    const iterator = aliceEvents[Symbol.asyncIterator]();
    const first = iterator.next();
    await sendAs(bob, 'not for alice');
    await sendAs(alice, 'live for alice');
    const { value } = await first;
    expect(value).toMatchObject({ type: 'MailHeld', state: 'held', item: { subject: 'live for alice', owner: { email: 'alice@example.com' } } });
    await iterator.return?.();
  });

  it('ends when the server shuts down', async () => {
    const events = await (await t.caller(admin)).mail.changes();
    const iterator = events[Symbol.asyncIterator]();
    const next = iterator.next();
    const other = new AbortController();
    // A separate app whose shutdown we can pull without stopping the shared one.
    const ctx = { ...t.app, shutdown: other.signal };
    const { makeContext } = await import('../../src/lib/server/trpc/init.js');
    const { createCaller } = await import('../../src/lib/server/trpc/caller.js');
    const ending = (await createCaller(await makeContext(ctx, admin, '127.0.0.1')).mail.changes())[Symbol.asyncIterator]().next();
    other.abort();
    expect(await ending).toMatchObject({ done: true });
    await sendAs(alice, 'still live');
    expect((await next).value).toMatchObject({ type: 'MailHeld' });
  });
});

describe('the IP view', () => {
  it('lets nobody in without a login while it is off', async () => {
    const err = await rejection((await t.caller(null, '127.0.0.1')).mail.list({ view: 'active' }));
    expect(err.code).toBe('UNAUTHORIZED');
  });

  it('shows a visitor from the relay networks only the mail sent from their own address', async () => {
    await setIpView(database.db, true);
    try {
      await sendAs(null, 'from 127.0.0.3', { localAddress: '127.0.0.3' });
      await sendAs(alice, 'alice from 127.0.0.1');
      const visitor = await t.caller(null, '127.0.0.3');
      const list = await visitor.mail.list({ view: 'active' });
      expect(list.items.map((m) => m.subject)).toEqual(['from 127.0.0.3']);
      expect(list.items[0]!.owner).toBeNull();
      const alicesId = await idOf('alice from 127.0.0.1');
      expect((await rejection(visitor.mail.discard({ id: alicesId }))).code).toBe('NOT_FOUND');
      expect((await visitor.mail.discard({ id: list.items[0]!.id })).outcome).toBe('done');
      const outsider = await rejection((await t.caller(null, '203.0.113.7')).mail.list({ view: 'active' }));
      expect(outsider.code).toBe('UNAUTHORIZED');
    } finally {
      await setIpView(database.db, false);
    }
  });
});

describe('admin procedures', () => {
  it('refuse a user with FORBIDDEN and a visitor with UNAUTHORIZED', async () => {
    const a = await t.caller(alice);
    const calls = [() => a.settings.get(), () => a.settings.update({ holdSeconds: 60 }), () => a.exclusions.list(), () => a.exclusions.add({ kind: 'sender', value: 'x@example.com' }), () => a.users.list(), () => a.users.remove({ id: bob.id })];
    for (const call of calls) expect((await rejection(call())).code).toBe('FORBIDDEN');
    expect((await rejection((await t.caller(null, '203.0.113.7')).settings.get())).code).toBe('UNAUTHORIZED');
  });

  it('validate the hold time, which applies to mail received from then on', async () => {
    const c = await t.caller(admin);
    for (const holdSeconds of [29, 601, 45.5]) expect((await rejection(c.settings.update({ holdSeconds }))).code).toBe('BAD_REQUEST');
    await sendAs(alice, 'before the change');
    await c.settings.update({ holdSeconds: 45 });
    await sendAs(alice, 'after the change');
    const items = (await c.mail.list({ view: 'active', limit: 500 })).items;
    expect(items.find((m) => m.subject === 'before the change')?.holdSeconds).toBe(60);
    expect(items.find((m) => m.subject === 'after the change')?.holdSeconds).toBe(45);
    expect((await c.settings.get()).holdSeconds).toBe(45);
    await c.settings.update({ holdSeconds: 60 });
  });

  it('add exclusions after validating them, and remove them', async () => {
    const c = await t.caller(admin);
    expect((await rejection(c.exclusions.add({ kind: 'source_ip', value: '10.0.0.0/33' }))).code).toBe('BAD_REQUEST');
    expect((await rejection(c.exclusions.add({ kind: 'sender', value: 'not an address' }))).code).toBe('BAD_REQUEST');
    const added = await c.exclusions.add({ kind: 'recipient', value: '@Partner.Example' });
    expect(added).toMatchObject({ kind: 'recipient', value: 'partner.example' });
    expect((await c.exclusions.list()).map((x) => x.value)).toContain('partner.example');
    await c.exclusions.remove({ id: added.id });
    expect(await c.exclusions.list()).toEqual([]);
    expect((await rejection(c.exclusions.remove({ id: added.id }))).code).toBe('NOT_FOUND');
  });

  it('manage users: add, set a password (ending their sessions), make admin, remove; never themselves', async () => {
    const c = await t.caller(admin);
    expect((await rejection(c.users.add({ email: 'erin@example.com', password: 'short', isAdmin: false }))).code).toBe('BAD_REQUEST');
    const erin = await c.users.add({ email: 'Erin@Example.com', password: PASSWORD, isAdmin: false });
    expect(erin.email).toBe('erin@example.com');
    const session = await createSession(database.db, erin.id, { ip: '127.0.0.1', userAgent: 'test' });
    await c.users.setPassword({ id: erin.id, password: 'another good password' });
    expect(await readSession(database.db, session.token)).toBeNull();
    await c.users.setAdmin({ id: erin.id, isAdmin: true });
    expect((await c.users.list()).find((u) => u.id === erin.id)?.isAdmin).toBe(true);
    expect((await rejection(c.users.remove({ id: admin.id }))).code).toBe('BAD_REQUEST');
    expect((await rejection(c.users.setAdmin({ id: admin.id, isAdmin: false }))).code).toBe('BAD_REQUEST');
    await c.users.remove({ id: erin.id });
    expect((await c.users.list()).some((u) => u.id === erin.id)).toBe(false);
  });
});

describe('sessions', () => {
  it('store only a hash of the token, expire, and end on logout', async () => {
    const now = Date.now();
    const s = await createSession(database.db, alice.id, { ip: '127.0.0.1', userAgent: 'test' }, now);
    expect(await readSession(database.db, s.token, now + 1000)).toEqual({ id: alice.id, email: alice.email, isAdmin: false });
    expect(await readSession(database.db, s.token, s.expiresAt.getTime() + 1)).toBeNull();
    expect(await readSession(database.db, `${s.token}x`, now)).toBeNull();
    const { sessions } = await import('../../src/lib/server/db/schema.js');
    const rows = await database.db.select().from(sessions);
    expect(rows.some((r) => r.idHash === s.token)).toBe(false);
    await deleteSession(database.db, s.token);
    expect(await readSession(database.db, s.token, now + 1000)).toBeNull();
  });
});
