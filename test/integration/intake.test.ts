import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { openDatabase } from '../../src/lib/server/db/client.js';
import { rows } from '../../src/lib/server/db/client.js';
import { addUser } from '../../src/lib/server/users.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../helpers/db.js';
import { rawMail, send, startRelay, type StartedRelay } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

let database: TestDatabase;
let started: StartedRelay[] = [];
let sink: Sink;

beforeAll(async () => {
  database = await createTestDatabase();
  await addUser(database.db, 'alice@example.com', 'correct horse', false);
  sink = await new Sink().start();
});
afterAll(async () => {
  await sink.close();
  await database.drop();
});
afterEach(async () => {
  for (const s of started.splice(0)) await s.stop();
});

async function relay(env: Record<string, string> = {}) {
  const s = await startRelay(database.db, { clock: new ManualClock(), upstream: sink.url(), env });
  started.push(s);
  return s;
}

async function count(table: string): Promise<number> {
  const [row] = await rows<{ n: number }>(database.db, sql.raw(`select count(*)::int as n from ${table}`));
  return row!.n;
}

/** A raw SMTP dialogue: sends each line, returns every reply line. */
async function dialogue(port: number, lines: string[], localAddress?: string): Promise<string[]> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  const replies: string[] = [];
  let buffer = '';
  let wake: () => void = () => {};
  socket.on('data', (d) => {
    buffer += d.toString();
    let i;
    while ((i = buffer.indexOf('\r\n')) !== -1) {
      replies.push(buffer.slice(0, i));
      buffer = buffer.slice(i + 2);
      wake();
    }
  });
  const next = async (): Promise<void> => {
    // Wait for a complete reply (a line whose 4th char is a space).
    const start = replies.length;
    for (;;) {
      const done = replies.slice(start).some((l) => l[3] === ' ');
      if (done) return;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 2000);
      });
      if (socket.destroyed) return;
    }
  };
  await next();
  for (const line of lines) {
    socket.write(`${line}\r\n`);
    await next();
  }
  socket.destroy();
  return replies;
}

describe('who may relay', () => {
  it('refuses a stranger with 530 5.7.0 at MAIL FROM and stores nothing', async () => {
    const { port } = await relay({ RELAY_NETWORKS: '127.0.0.1/32' });
    const before = await count('mails');
    const replies = await dialogue(port, ['EHLO stranger', 'MAIL FROM:<x@evil.example>', 'QUIT'], '127.0.0.2');
    expect(replies.find((l) => l.startsWith('530'))).toMatch(/^530 5\.7\.0 /);
    // AUTH is not offered in cleartext outside RELAY_NETWORKS (RFC 4954).
    expect(replies.some((l) => /^250[- ]AUTH/.test(l))).toBe(false);
    await expect(send({ port, localAddress: '127.0.0.2' })).rejects.toThrow(/530/);
    expect(await count('mails')).toBe(before);
  });

  it('offers AUTH PLAIN LOGIN to the relay network and accepts a user with either', async () => {
    const { port, relay: r } = await relay({ RELAY_NETWORKS: '127.0.0.1/32' });
    const replies = await dialogue(port, ['EHLO office', 'QUIT']);
    expect(replies).toContain('250-AUTH PLAIN LOGIN');
    expect(replies.some((l) => /SIZE 104857600/.test(l))).toBe(true);
    const plain = Buffer.from('\0alice@example.com\0correct horse').toString('base64');
    const ok = await dialogue(port, ['EHLO office', `AUTH PLAIN ${plain}`, 'QUIT']);
    expect(ok.some((l) => l.startsWith('235'))).toBe(true);
    const bad = await dialogue(port, ['EHLO office', `AUTH PLAIN ${Buffer.from('\0alice@example.com\0wrong').toString('base64')}`, 'QUIT']);
    expect(bad.some((l) => l.startsWith('535'))).toBe(true);
    const login = await dialogue(port, ['EHLO office', 'AUTH LOGIN', Buffer.from('alice@example.com').toString('base64'), Buffer.from('correct horse').toString('base64'), 'QUIT']);
    expect(login.some((l) => l.startsWith('235'))).toBe(true);
    const res = await send({ port, auth: { user: 'alice@example.com', pass: 'correct horse' }, subject: 'authenticated' });
    expect(res.response).toMatch(/^250/);
    const mine = await r.api.list({ kind: 'all' }, { view: 'active' });
    const m = mine.items.find((i) => i.subject === 'authenticated');
    expect(m?.authUser).toBe('alice@example.com');
    expect(m?.owner?.email).toBe('alice@example.com');
  });

  it('gives mail from the relay network without AUTH to the user of the envelope sender, else to nobody', async () => {
    const { port, relay: r } = await relay();
    await send({ port, from: 'Alice@Example.com', subject: 'owned by alice' });
    await send({ port, from: 'scanner@example.com', subject: 'owned by nobody' });
    const items = (await r.api.list({ kind: 'all' }, { view: 'active' })).items;
    expect(items.find((i) => i.subject === 'owned by alice')?.owner?.email).toBe('alice@example.com');
    expect(items.find((i) => i.subject === 'owned by nobody')?.owner).toBeNull();
  });

  it('throttles repeated wrong passwords', async () => {
    const { port } = await relay();
    const wrong = Buffer.from('\0alice@example.com\0nope').toString('base64');
    const replies = await dialogue(port, ['EHLO x', ...Array.from({ length: 6 }, () => `AUTH PLAIN ${wrong}`), 'QUIT']);
    expect(replies.some((l) => l.startsWith('454'))).toBe(true);
  });
});

describe('size', () => {
  it('answers 552 5.3.4 at MAIL FROM for a declared SIZE over the limit', async () => {
    const { port } = await relay({ MAX_MESSAGE_BYTES: '10000' });
    const replies = await dialogue(port, ['EHLO office', 'MAIL FROM:<alice@example.com> SIZE=20000', 'QUIT']);
    expect(replies.find((l) => l.startsWith('552'))).toMatch(/^552 5\.3\.4 /);
  });

  it('answers 552 5.3.4 at the end of DATA, stores nothing of it, and writes an error mail to the authenticated sender', async () => {
    const { port, relay: r } = await relay({ MAX_MESSAGE_BYTES: '10000' });
    const before = await count('mail_recipients where mail_id in (select id from mails where kind = \'mail\')');
    const chunksBefore = await count('content_chunks');
    const big = rawMail({ subject: 'Too big', body: 'x'.repeat(20_000) + '\r\n' });
    await expect(send({ port, raw: big, auth: { user: 'alice@example.com', pass: 'correct horse' } })).rejects.toThrow(/552/);
    expect(await count('mail_recipients where mail_id in (select id from mails where kind = \'mail\')')).toBe(before);
    const listed = [...(await r.api.list({ kind: 'all' }, { view: 'active' })).items, ...(await r.api.list({ kind: 'all' }, { view: 'history' })).items];
    const notices = listed.filter((i) => i.kind === 'notice');
    expect(notices).toHaveLength(1);
    expect(notices[0]!.recipients).toEqual(['alice@example.com']);
    expect(notices[0]!.mailFrom).toBe('');
    // Nothing of the refused mail is stored; at most the notice's own content.
    expect(await count('content_chunks')).toBeLessThanOrEqual(chunksBefore + 1);
  });
});

describe('what the list shows', () => {
  it('decodes an ISO-2022-JP subject, names, and attachments, and never stores a control character', async () => {
    const { port, relay: r } = await relay();
    const jis = Buffer.from('GyRCJWEhPCVrJE4lRiU5JUgbKEI=', 'base64'); // メールのテスト in ISO-2022-JP
    const subject = `=?ISO-2022-JP?B?${jis.toString('base64')}?=`;
    const raw = [
      'From: =?UTF-8?B?5bGx55Sw?= <alice@example.com>',
      'To: Bob <bob@example.net>, carol@example.org',
      'Cc: =?ISO-8859-1?Q?J=F6rg?= <jorg@example.de>',
      `Subject: ${subject} =?x-unknown?Q?ab=00c?= tab\there`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'body',
      '--b1',
      'Content-Type: application/pdf; name="=?UTF-8?B?6KaL56mN5pu4LnBkZg==?="',
      'Content-Disposition: attachment; filename="=?UTF-8?B?6KaL56mN5pu4LnBkZg==?="',
      'Content-Transfer-Encoding: base64',
      '',
      ...Array.from({ length: 100 }, () => 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0'),
      '--b1--',
      '',
    ].join('\r\n');
    await send({ port, raw, to: ['bob@example.net', 'carol@example.org', 'jorg@example.de'] });
    const [m] = (await r.api.list({ kind: 'all' }, { view: 'active' })).items.filter((i) => i.subject.startsWith('メール'));
    expect(m).toBeDefined();
    expect(m!.subject.startsWith('メールのテスト')).toBe(true);
    expect(m!.subject).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(m!.summary.from).toEqual([{ name: '山田', address: 'alice@example.com' }]);
    expect(m!.summary.to.map((a) => a.address)).toEqual(['bob@example.net', 'carol@example.org']);
    expect(m!.summary.cc).toEqual([{ name: 'Jörg', address: 'jorg@example.de' }]);
    expect(m!.summary.attachments).toHaveLength(1);
    expect(m!.summary.attachments[0]!.name).toBe('見積書.pdf');
    expect(m!.summary.attachments[0]!.type).toBe('application/pdf');
    // 100 lines of 76 base64 characters carry 5,700 bytes.
    expect(Math.abs(m!.summary.attachments[0]!.size - 5700)).toBeLessThan(200);
  });
});

describe('storage failure', () => {
  it('answers 4xx, never 250 or 5xx, when the database is down, and works again once it is back', async () => {
    if (dbKind === 'postgres') {
      const proxy = await new TcpProxy('127.0.0.1', 5432).start();
      const url = new URL(database.url!);
      url.host = `127.0.0.1:${proxy.port}`;
      const viaProxy = await openDatabase({ url: url.href, dataDir: database.dataDir, poolSize: 2 });
      const s = await startRelay(viaProxy.db, { clock: new ManualClock(), upstream: sink.url() });
      started.push(s);
      expect((await send({ port: s.port, subject: 'before the cut' })).response).toMatch(/^250/);
      proxy.cut();
      const err = (await send({ port: s.port, subject: 'during the cut' }).catch((e: unknown) => e)) as { responseCode?: number };
      expect(err.responseCode).toBeGreaterThanOrEqual(400);
      expect(err.responseCode).toBeLessThan(500);
      proxy.restore();
      expect((await send({ port: s.port, subject: 'after the cut' })).response).toMatch(/^250/);
      await s.stop();
      started = [];
      await viaProxy.close();
      await proxy.close();
    } else {
      // The embedded database closed under the relay: every write fails.
      const own = await createTestDatabase();
      const s = await startRelay(own.db, { clock: new ManualClock(), upstream: sink.url() });
      expect((await send({ port: s.port, subject: 'before' })).response).toMatch(/^250/);
      await own.close();
      const err = (await send({ port: s.port, subject: 'after close' }).catch((e: unknown) => e)) as { responseCode?: number };
      expect(err.responseCode).toBeGreaterThanOrEqual(400);
      expect(err.responseCode).toBeLessThan(500);
      await s.stop().catch(() => {});
      await own.drop();
    }
  });
});
