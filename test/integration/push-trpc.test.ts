import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/lib/server/app.js';
import { PushService } from '../../src/lib/server/push/service.js';
import { appRouter } from '../../src/lib/server/trpc/router.js';
import type { Context } from '../../src/lib/server/trpc/init.js';
import { addUser, type User } from '../../src/lib/server/users.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { PushServiceDouble } from '../helpers/push-service.js';
import { log, startRelay, type StartedRelay } from '../helpers/relay.js';

let database: TestDatabase;
let relay: StartedRelay;
let double: PushServiceDouble;
let app: App;
let alice: User;
let bob: User;

async function appWith(allowLoopback: boolean): Promise<App> {
  const push = await PushService.create({ db: database.db, api: relay.relay.api, log, tokenKey: Buffer.alloc(32, 1), subject: 'mailto:ops@example.com', allowLoopback });
  return { push } as unknown as App;
}

const caller = (user: User | null, a = app) => appRouter.createCaller({ app: a, user, ip: '203.0.113.5', scope: user ? { kind: 'user', userId: user.id } : null } satisfies Context);

beforeAll(async () => {
  database = await createTestDatabase();
  relay = await startRelay(database.db);
  double = await new PushServiceDouble().start();
  app = await appWith(true);
  alice = await addUser(database.db, 'alice@example.com', 'correct horse battery');
  bob = await addUser(database.db, 'bob@example.com', 'correct horse battery');
});
afterAll(async () => {
  await double.close();
  await relay.stop();
  await database.drop();
});

describe('tRPC push', () => {
  it('gives anyone the public key, the same every time', async () => {
    const { publicKey } = await caller(null).push.publicKey();
    expect(Buffer.from(publicKey, 'base64url')).toHaveLength(65);
    expect((await caller(alice, await appWith(true)).push.publicKey()).publicKey).toBe(publicKey);
  });

  it('subscribes, lists and unsubscribes the devices of the logged-in user only', async () => {
    const phone = double.subscribe();
    const laptop = double.subscribe();
    await caller(alice).push.subscribe({ ...phone, label: 'Phone' });
    await caller(alice).push.subscribe({ ...laptop, label: 'Laptop' });
    const devices = await caller(alice).push.devices();
    expect(devices.map((d) => d.label)).toEqual(['Phone', 'Laptop']);
    expect(devices[0]!.service).toBe(`127.0.0.1:${double.port}`);
    expect(JSON.stringify(devices)).not.toContain(phone.endpoint);
    expect(await caller(bob).push.devices()).toEqual([]);

    expect(await caller(bob).push.removeDevice({ id: devices[0]!.id })).toEqual({ removed: false });
    expect(await caller(alice).push.removeDevice({ id: devices[0]!.id })).toEqual({ removed: true });
    expect(await caller(bob).push.unsubscribe({ endpoint: laptop.endpoint })).toEqual({ removed: false });
    expect(await caller(alice).push.unsubscribe({ endpoint: laptop.endpoint })).toEqual({ removed: true });
    expect(await caller(alice).push.devices()).toEqual([]);
  });

  it('needs a login to subscribe', async () => {
    await expect(caller(null).push.subscribe(double.subscribe())).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(caller(null).push.devices()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('refuses endpoints that are not https or that point inside, as a bad request', async () => {
    const strict = await appWith(false);
    const sub = double.subscribe();
    await expect(caller(alice, strict).push.subscribe(sub)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(caller(alice).push.subscribe({ ...sub, endpoint: sub.endpoint.replace('https:', 'http:') })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(caller(alice).push.subscribe({ ...sub, endpoint: 'https://192.168.1.1/push/x' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});
