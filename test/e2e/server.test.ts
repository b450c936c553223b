import net from 'node:net';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { send } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';
import { memoryOf, startServer, type ServerProcess } from '../helpers/server.js';

let sink: Sink;
beforeAll(async () => {
  sink = await new Sink().start();
});
afterAll(async () => {
  await sink.close();
});

/** Opens an SMTP session and returns the first reply line. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) {
        s.destroy();
        resolve(buf.split('\r\n')[0]!);
      }
    });
    s.on('error', reject);
  });
}

describe('the built server', () => {
  let server: ServerProcess;
  afterAll(async () => {
    await server?.stop();
  });

  it('starts with defaults on an empty data directory, accepts a mail and answers on the web', async () => {
    server = await startServer({ env: { UPSTREAM_URL: sink.url().href, ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: 'admin-password' } });
    expect(server.output()).toMatch(/"msg":"admin created from ADMIN_EMAIL"/);
    const res = await send({ port: server.smtpPort, subject: 'through the built server' });
    expect(res.response).toMatch(/^250 2\.6\.0 Held as [0-9a-f-]{36}/);
    const health = await (await fetch(`${server.url}/healthz`)).json();
    expect(health).toMatchObject({ ok: true, smtp: server.smtpPort, db: 'pglite' });
  });

  it('refuses a second start on the same data directory with a clear message', async () => {
    const second = await startServer({ dataDir: server.dataDir, waitReady: false });
    const code = await second.exited;
    expect(code).toBe(1);
    expect(second.output()).toMatch(/DATA_DIR .* is in use by another mailhold/);
  });

  it('on SIGTERM answers new connections 421, finishes the mail being received, and keeps it', async () => {
    // A client in the middle of DATA.
    const slow = net.connect(server.smtpPort, '127.0.0.1');
    const replies: string[] = [];
    slow.on('data', (d) => replies.push(...d.toString().split('\r\n').filter(Boolean)));
    const step = async (line: string, code: string) => {
      slow.write(`${line}\r\n`);
      const deadline = Date.now() + 5000;
      while (!replies.some((r) => r.startsWith(code)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    };
    await new Promise((r) => setTimeout(r, 300));
    await step('EHLO slow', '250');
    await step('MAIL FROM:<alice@example.com>', '250 2.1.0');
    await step('RCPT TO:<bob@example.net>', '250 2.1.5');
    await step('DATA', '354');
    slow.write('Subject: finished during shutdown\r\n\r\nhalf of it...\r\n');

    server.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(await greeting(server.smtpPort)).toMatch(/^421 /);

    slow.write('...and the rest\r\n.\r\n');
    const deadline = Date.now() + 5000;
    while (!replies.some((r) => r.startsWith('250 2.6.0')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(replies.find((r) => r.startsWith('250 2.6.0'))).toMatch(/Held as/);
    slow.destroy();
    expect(await server.exited).toBe(0);
    expect(server.output()).toMatch(/"msg":"mailhold stopped"/);

    // The next start finds both mails held.
    server = await startServer({ dataDir: server.dataDir, env: { UPSTREAM_URL: sink.url().href } });
    expect(sink.received).toHaveLength(0);
  });

  it('stops the start when a setting is wrong, naming it', async () => {
    const bad = await startServer({ env: { HOLD_SECONDS: '5', UPSTREAM_URL: 'http://example.com' }, waitReady: false });
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/\[hold\] HOLD_SECONDS: must be at least 30 seconds/);
    expect(bad.output()).toMatch(/\[delivery\] UPSTREAM_URL: scheme must be smtp: or smtps:/);
  });
});

describe.each(['pglite', 'postgres'] as const)('a 100 MiB mail through the built server on %s', (kind) => {
  it('is accepted and delivered byte-identical while the server grows by less than 64 MiB', async () => {
    const db = kind === 'postgres' ? await createTestDatabase('postgres') : undefined;
    const big = await startServer({
      env: { UPSTREAM_URL: sink.url().href, HOLD_SECONDS: '30', MAX_MESSAGE_BYTES: String(200 * 1024 * 1024), ...(db ? { DATABASE_URL: db.url! } : {}) },
    });
    sink.keep = 'hash';
    try {
      const pid = big.child.pid!;
      await new Promise((r) => setTimeout(r, 500));
      const before = memoryOf(pid);
      let peak = before.rss;
      const sampler = setInterval(() => (peak = Math.max(peak, memoryOf(pid).rss)), 20);
      const hash = createHash('sha256');
      const line = Buffer.from(`${'x'.repeat(76)}\r\n`);
      const block = Buffer.concat(Array.from({ length: 1024 }, () => line));
      const head = Buffer.from('From: alice@example.com\r\nTo: bob@example.net\r\nSubject: big\r\n\r\n');
      function* gen() {
        hash.update(head);
        yield head;
        for (let sent = 0; sent < 100 * 1024 * 1024; sent += block.length) {
          hash.update(block);
          yield block;
        }
      }
      const t0 = Date.now();
      const res = await send({ port: big.smtpPort, raw: Readable.from(gen(), { objectMode: false }) as never });
      const seconds = (Date.now() - t0) / 1000;
      expect(res.response).toMatch(/^250 /);
      // Delivered when the (shortest) hold ends.
      await sink.waitFor(sink.received.length + 1, 180_000);
      clearInterval(sampler);
      const growth = (peak - before.rss) / 1024 / 1024;
      const got = sink.received.at(-1)!;
      expect(got.sha256).toBe(hash.digest('hex'));
      console.log(`100 MiB through the built server on ${kind}: accepted in ${seconds.toFixed(1)} s (${(100 / seconds).toFixed(0)} MiB/s), RSS growth ${growth.toFixed(0)} MiB`);
      expect(growth).toBeLessThan(64);
    } finally {
      sink.keep = 'raw';
      await big.stop();
      await db?.drop();
    }
  }, 300_000);
});
