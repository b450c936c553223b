import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import type { CDPSession, Page, Worker } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mails } from '../../src/lib/server/db/schema.js';
import { SubscriptionStore } from '../../src/lib/server/push/subscriptions.js';
import { loadVapidKeys } from '../../src/lib/server/push/vapid.js';
import { findUser } from '../../src/lib/server/users.js';
import { launchBrowser, type LaunchedBrowser as Browser } from '../helpers/browser.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { PushServiceDouble } from '../helpers/push-service.js';
import { send, until } from '../helpers/relay.js';
import { startServer, type ServerProcess } from '../helpers/server.js';
import { Sink } from '../helpers/sink.js';

/**
 * The phone, end to end: the built server with PostgreSQL (so the test can add the device's
 * subscription from outside), the push-service double, an upstream sink, and Chromium running the
 * real service worker.
 */
const ADMIN = 'admin@example.com';
const HOLD = 30;

let database: TestDatabase;
let sink: Sink;
let double: PushServiceDouble;
let server: ServerProcess;
let browser: Browser;
let page: Page;
let cdp: CDPSession;
let sw: Worker;

beforeAll(async () => {
  database = await createTestDatabase('postgres');
  sink = await new Sink().start();
  double = await new PushServiceDouble().start();
  const ca = path.join(database.dataDir, 'push-double.pem');
  writeFileSync(ca, double.cert);
  server = await startServer({
    env: {
      DATABASE_URL: database.url!,
      UPSTREAM_URL: sink.url('tls=none').href,
      ADMIN_EMAIL: ADMIN,
      ADMIN_PASSWORD: 'correct horse battery',
      HOLD_SECONDS: String(HOLD),
      VAPID_SUBJECT: 'mailto:postmaster@example.com',
      PUSH_ALLOW_LOOPBACK: '1',
      NODE_EXTRA_CA_CERTS: ca,
    },
  });
  browser = await launchBrowser();
  await browser.context.grantPermissions(['notifications'], { origin: server.url });
  page = await browser.context.newPage();
  const worker = browser.context.waitForEvent('serviceworker');
  await page.goto(`${server.url}/account`);
  sw = await worker;
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  cdp = await browser.context.newCDPSession(page);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (server) rmSync(server.dataDir, { recursive: true, force: true });
  await double?.close();
  await sink?.close();
  await database?.drop();
});

describe('the installable app', () => {
  it('has a valid manifest and service worker, and Chromium finds it installable', async () => {
    await page.reload();
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    const manifest = (await cdp.send('Page.getAppManifest')) as { errors: unknown[]; url: string };
    expect(manifest.errors).toEqual([]);
    expect(manifest.url).toBe(`${server.url}/manifest.webmanifest`);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    expect(installabilityErrors).toEqual([]);
    expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toBe(`${server.url}/service-worker.js`);
  });
});

/** What the service worker shows for a mail (its notifications carry the mail id as tag). */
function notifications(id: string) {
  return sw.evaluate(async (tag) => {
    const reg = (self as unknown as { registration: ServiceWorkerRegistration }).registration;
    const list = await reg.getNotifications({ tag });
    return list.map((n) => ({ title: n.title, body: n.body, actions: ((n as unknown as { actions?: Array<{ action: string }> }).actions ?? []).map((a) => a.action) }));
  }, id);
}

async function registrationId(): Promise<string> {
  const found = new Promise<string>((resolve) => {
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
      const r = e.registrations.find((x) => !x.isDeleted && x.scopeURL === `${server.url}/`);
      if (r) resolve(r.registrationId);
    });
  });
  await cdp.send('ServiceWorker.enable');
  return found;
}

describe('a held mail on the phone', () => {
  it('SMTP → held → push to the device → Discard on the notification → the upstream never gets it; a replay is refused', async () => {
    const admin = (await findUser(database.db, ADMIN))!;
    double.vapidKey = (await loadVapidKeys(database.db)).publicKey;
    await new SubscriptionStore(database.db, { allowLoopback: true }).save(admin.id, { ...double.subscribe(), label: 'e2e phone' });

    await send({ port: server.smtpPort, from: ADMIN, to: ['bob@example.net', 'carol@example.org'], subject: 'Wrong attachment' });
    await until(() => double.received.length === 1, 'the push at the push service', 15_000);
    expect(double.errors).toEqual([]);
    const [held] = double.received;
    const id: string = held!.message.id;
    expect(held!.ttl).toBeGreaterThan(HOLD - 5);
    expect(held!.ttl).toBeLessThanOrEqual(HOLD);
    expect(held!.urgency).toBe('high');
    expect(held!.topic).toBe(id.replaceAll('-', ''));
    expect(held!.message).toMatchObject({ kind: 'held', subject: 'Wrong attachment', to: ['bob@example.net', 'carol@example.org'] });

    // The push service hands the (decrypted) message to the browser's service worker. DevTools
    // delivery now and then does not reach a worker that is just starting, so it is repeated (the
    // notification's tag makes a repeat replace the first).
    const swLog: string[] = [];
    sw.on('console', (m) => swLog.push(m.text()));
    const registration = await registrationId();
    for (let attempt = 1; ; attempt++) {
      await cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId: registration, data: JSON.stringify(held!.message) });
      const shown = await until(async () => (await notifications(id)).length > 0, 'the notification', 3000).catch(() => false);
      if (shown) break;
      if (attempt === 3) throw new Error(`no notification after 3 push deliveries; service worker said: ${swLog.join(' | ')}`);
    }
    const [shown] = await notifications(id);
    expect(shown!.title).toBe('Held: Wrong attachment');
    expect(shown!.body).toContain('bob@example.net, carol@example.org');
    expect(shown!.actions).toEqual(['discard', 'send']);

    // A tap on Discard, as the notification would report it to the service worker.
    await sw.evaluate(async (tag) => {
      const reg = (self as unknown as { registration: ServiceWorkerRegistration }).registration;
      const [notification] = await reg.getNotifications({ tag });
      const Click = (self as unknown as { NotificationEvent: new (type: string, init: { notification: Notification; action: string }) => Event }).NotificationEvent;
      self.dispatchEvent(new Click('notificationclick', { notification: notification!, action: 'discard' }));
    }, id);

    await until(async () => {
      const [row] = await database.db.select({ state: mails.state, by: mails.actionBy }).from(mails).where(eq(mails.id, id));
      return row?.state === 'discarded' && row.by === 'push';
    }, 'the mail discarded by push');
    await until(async () => (await notifications(id)).some((n) => n.title === 'Discarded — it will not be sent'), 'the result notification');
    await until(() => double.received.some((r) => r.message.kind === 'left' && r.message.outcome === 'discarded' && r.topic === held!.topic), 'the replacing push');

    // The same button again (a replay) changes nothing and says so, in the browser's language.
    const post = (lang: string) =>
      fetch(`${server.url}/api/push/action`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'accept-language': lang, origin: server.url },
        body: JSON.stringify({ token: held!.message.tokens.discard }),
      });
    const again = await post('en-US,en;q=0.9');
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ outcome: 'used', text: 'This button was used already; nothing changed' });
    const ja = await post('ja,en;q=0.5');
    expect((await ja.json()).text).toBe('このボタンは使用済みです。何も変わっていません');
    expect((await fetch(`${server.url}/api/push/action?token=${held!.message.tokens.send}`)).status).toBe(405);
    const bogus = await fetch(`${server.url}/api/push/action`, { method: 'POST', headers: { 'content-type': 'application/json', origin: server.url }, body: '{"token":"v1.e30.AAAA"}' });
    expect(bogus.status).toBe(403);

    // A mail sent after it is delivered when its hold ends; the discarded one, due earlier, never.
    await send({ port: server.smtpPort, from: ADMIN, to: ['bob@example.net'], subject: 'The right attachment' });
    const [delivered] = await sink.waitFor(1, (HOLD + 15) * 1000);
    expect(delivered!.raw.toString()).toContain('Subject: The right attachment');
    expect(sink.received).toHaveLength(1);
  });

  it('opens the app shell offline and says it is offline', async () => {
    await server.stop();
    await page.goto(`${server.url}/mail`);
    await expect.poll(() => page.textContent('h1')).toContain('You are offline');
  });
});
