import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../src/lib/server/trpc/router.js';
import { createPostgresDatabase } from '../helpers/db.js';
import { rawMail, send } from '../helpers/relay.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { Sink } from '../helpers/sink.js';

/**
 * The API over real HTTP against the built server, once on embedded PGlite and once on
 * PostgreSQL: login by the form, isolation between two users for every mail procedure, cross-site
 * requests refused, and the live subscription (SSE) telling of a mail held over SMTP.
 */
const ADMIN = { email: 'admin@example.com', password: 'http-admin-password' };
const PASSWORD = 'a user password';

for (const db of ['pglite', 'postgres'] as const) {
  describe(`the API over HTTP (${db})`, () => {
    let server: RunningServer;
    let sink: Sink;
    let dropDb = async () => {};

    async function login(email: string, password: string): Promise<{ status: number; cookie: string | null }> {
      const res = await fetch(`${server.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { origin: server.url, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email, password }).toString(),
      });
      const cookie = res.headers.get('set-cookie');
      return { status: res.status, cookie: cookie ? cookie.split(';')[0]! : null };
    }

    function client(cookie: string | null, origin: string | null = server.url) {
      return createTRPCClient<AppRouter>({
        links: [
          httpBatchLink({
            url: `${server.url}/api/trpc`,
            headers: () => ({ ...(cookie ? { cookie } : {}), ...(origin ? { origin } : {}) }),
          }),
        ],
      });
    }

    async function sendAs(email: string, subject: string) {
      await send({ port: server.smtpPort, from: email, to: ['x@example.net'], raw: rawMail({ from: email, to: ['x@example.net'], subject }), auth: { user: email, pass: email === ADMIN.email ? ADMIN.password : PASSWORD } });
    }

    async function code(p: Promise<unknown>): Promise<string | undefined> {
      try {
        await p;
        return 'resolved';
      } catch (err) {
        return err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : String(err);
      }
    }

    let alice: string;
    let bob: string;

    beforeAll(async () => {
      const env: Record<string, string> = {};
      if (db === 'postgres') {
        const empty = await createPostgresDatabase('mailhold_http');
        env.DATABASE_URL = empty.url;
        dropDb = empty.drop;
      }
      sink = await new Sink().start();
      server = await startServer({ env: { ...env, UPSTREAM_URL: sink.url().href, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, HOLD_SECONDS: '300' } });
      const admin = await login(ADMIN.email, ADMIN.password);
      expect(admin.status).toBe(303);
      const api = client(admin.cookie);
      await api.users.add.mutate({ email: 'alice@example.com', password: PASSWORD, isAdmin: false });
      await api.users.add.mutate({ email: 'bob@example.com', password: PASSWORD, isAdmin: false });
      alice = (await login('alice@example.com', PASSWORD)).cookie!;
      bob = (await login('bob@example.com', PASSWORD)).cookie!;
    });
    afterAll(async () => {
      await server?.stop();
      await sink?.close();
      await dropDb();
    });

    it('sets an HttpOnly, SameSite=Lax session cookie, and logout ends the session', async () => {
      const res = await fetch(`${server.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { origin: server.url, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email: 'alice@example.com', password: PASSWORD }).toString(),
      });
      const setCookie = res.headers.get('set-cookie') ?? '';
      expect(setCookie).toMatch(/^mailhold_session=[\w-]{40,};/);
      expect(setCookie).toContain('HttpOnly');
      expect(setCookie).toContain('SameSite=Lax');
      expect(setCookie).not.toContain('Secure'); // plain http here
      const cookie = setCookie.split(';')[0]!;
      expect((await client(cookie).mail.status.query()).held).toBeGreaterThanOrEqual(0);
      const out = await fetch(`${server.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: server.url, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
      expect(out.status).toBe(303);
      expect(await code(client(cookie).mail.status.query())).toBe('UNAUTHORIZED');
    });

    it('keeps two users apart in list, discard, send now and the bulk actions', async () => {
      await sendAs('alice@example.com', 'alice http');
      await sendAs('bob@example.com', 'bob http');
      const a = client(alice);
      const b = client(bob);
      const aliceList = await a.mail.list.query({ view: 'active' });
      const bobList = await b.mail.list.query({ view: 'active' });
      expect(aliceList.items.map((m) => m.subject)).toEqual(['alice http']);
      expect(bobList.items.map((m) => m.subject)).toEqual(['bob http']);
      const bobsId = bobList.items[0]!.id;
      expect(await code(a.mail.get.query({ id: bobsId }))).toBe('NOT_FOUND');
      expect(await code(a.mail.discard.mutate({ id: bobsId }))).toBe('NOT_FOUND');
      expect(await code(a.mail.sendNow.mutate({ id: bobsId }))).toBe('NOT_FOUND');
      expect((await a.mail.discardAll.mutate({ ids: [bobsId] })).count).toBe(0);
      expect((await a.mail.sendAll.mutate({ ids: [bobsId] })).count).toBe(0);
      expect((await a.mail.discardAll.mutate()).ids).toEqual([aliceList.items[0]!.id]);
      expect((await b.mail.get.query({ id: bobsId })).state).toBe('held');
      expect((await b.mail.sendAll.mutate()).ids).toEqual([bobsId]);
      await sink.waitFor(1);
      expect(sink.received.map((r) => r.mailFrom)).toEqual(['bob@example.com']);
      expect(await code(a.settings.get.query())).toBe('FORBIDDEN');
    });

    it('refuses cross-site and non-JSON mutations, and changes nothing', async () => {
      await sendAs('alice@example.com', 'csrf target');
      const before = (await client(alice).mail.status.query()).held;
      expect(before).toBe(1);
      const evil = await fetch(`${server.url}/api/trpc/mail.discardAll`, { method: 'POST', headers: { cookie: alice, origin: 'https://evil.example', 'content-type': 'application/json' }, body: '{}' });
      expect(evil.status).toBe(403);
      const form = await fetch(`${server.url}/api/trpc/mail.discardAll`, { method: 'POST', headers: { cookie: alice, origin: server.url, 'content-type': 'text/plain' }, body: '{}' });
      expect(form.status).toBe(403);
      const viaGet = await fetch(`${server.url}/api/trpc/mail.discardAll?input=%7B%7D`, { headers: { cookie: alice } });
      expect(viaGet.status).toBe(405);
      expect(await code(client(alice, 'http://evil.example').mail.discardAll.mutate())).toBe('FORBIDDEN');
      const crossLogin = await fetch(`${server.url}/login`, { method: 'POST', redirect: 'manual', headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=alice%40example.com&password=x' });
      expect(crossLogin.status).toBe(403);
      expect((await client(alice).mail.status.query()).held).toBe(before);
    });

    it('streams a mail held over SMTP to its owner over SSE, and not to another user', async () => {
      const open = (cookie: string) => fetch(`${server.url}/api/trpc/mail.changes`, { headers: { cookie, accept: 'text/event-stream' } });
      const [aliceStream, bobStream] = await Promise.all([open(alice), open(bob)]);
      expect(aliceStream.headers.get('content-type')).toContain('text/event-stream');
      const read = async (res: Response, until: RegExp, ms: number) => {
        const reader = res.body!.getReader();
        let text = '';
        const deadline = Date.now() + ms;
        while (!until.test(text) && Date.now() < deadline) {
          const chunk = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), deadline - Date.now()))]);
          if (!chunk || chunk.done) break;
          text += new TextDecoder().decode(chunk.value);
        }
        await reader.cancel();
        return text;
      };
      const aliceText = read(aliceStream, /live over sse/, 5000);
      const bobText = read(bobStream, /live over sse/, 1500);
      await new Promise((r) => setTimeout(r, 200));
      await sendAs('alice@example.com', 'live over sse');
      expect(await aliceText).toMatch(/"type":"MailHeld".*"subject":"live over sse"/);
      expect(await bobText).not.toContain('live over sse');
    });

    it('ends a live stream when its session ends: logout, or a new password set by the admin', async () => {
      const open = (cookie: string) => fetch(`${server.url}/api/trpc/mail.changes`, { headers: { cookie, accept: 'text/event-stream' } });
      /** Whether the server ends the stream within `ms` (false: still open when the time is up). */
      const endsWithin = async (res: Response, ms: number) => {
        const reader = res.body!.getReader();
        const deadline = Date.now() + ms;
        for (;;) {
          const left = deadline - Date.now();
          const chunk = left > 0 ? await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), left))]) : null;
          if (!chunk) {
            await reader.cancel();
            return false;
          }
          if (chunk.done) return true;
        }
      };
      const admin = client((await login(ADMIN.email, ADMIN.password)).cookie);
      await admin.users.add.mutate({ email: 'carol@example.com', password: PASSWORD, isAdmin: false });
      const carolId = (await admin.users.list.query()).find((u) => u.email === 'carol@example.com')!.id;

      // A stream whose session lives on stays open.
      const kept = (await login('carol@example.com', PASSWORD)).cookie!;
      expect(await endsWithin(await open(kept), 1000)).toBe(false);

      const leaving = (await login('carol@example.com', PASSWORD)).cookie!;
      const stream = await open(leaving);
      const logout = await fetch(`${server.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: leaving, origin: server.url } });
      expect(logout.status).toBe(303);
      expect(await endsWithin(stream, 3000)).toBe(true);

      const reset = await open(kept);
      await admin.users.setPassword.mutate({ id: carolId, password: 'a brand new password' });
      expect(await endsWithin(reset, 3000)).toBe(true);
      // And it cannot be opened again with the old session: the stream says so and ends.
      const again = (await open(kept)).body!.getReader();
      let said = '';
      for (let chunk = await again.read(); !chunk.done; chunk = await again.read()) said += new TextDecoder().decode(chunk.value);
      expect(said).toMatch(/UNAUTHORIZED/);
    });

    it('throttles failed logins per account, whichever the password', async () => {
      for (let i = 0; i < 5; i++) expect((await login('bob@example.com', `wrong ${i}`)).status).toBe(400);
      const blocked = await login('bob@example.com', PASSWORD);
      expect(blocked.status).toBe(429);
      expect(blocked.cookie).toBeNull();
    });
  });
}
