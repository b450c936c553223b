import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { fingerprintOf } from '../../src/lib/relay/tls.js';
import { addUser } from '../../src/lib/server/users.js';
import { send, startRelay, until, type StartedRelay } from '../helpers/relay.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { tlsFixture } from '../helpers/tls-fixture.js';

/** Issue 5: STARTTLS and implicit TLS towards the mailers, AUTH only encrypted from outside. */

const f = tlsFixture();

const run = promisify(execFile);
const OUTSIDE = '127.0.0.2';
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  await addUser(f.database.db, 'alice@example.com', PASSWORD);
});

async function relay(env: Record<string, string> = {}, extra: { tlsWatchMs?: number } = {}) {
  const s = await startRelay(f.database.db, {
    clock: new ManualClock(),
    env: { RELAY_NETWORKS: '127.0.0.1/32', TLS_CERT: f.cert.certFile, TLS_KEY: f.cert.keyFile, SMTPS_PORT: '4650', DATA_DIR: f.database.dataDir, ...env },
    ...extra,
  });
  f.started.push(s);
  return s;
}

async function heldFrom(s: StartedRelay, subject: string) {
  const page = await s.relay.api.list({ kind: 'all' }, { view: 'active', limit: 500 });
  return page.items.find((m) => m.subject === subject);
}

async function swaks(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('swaks', ['--timeout', '10', ...args], { timeout: 20_000 });
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('TLS towards the mailers', () => {
  it('takes a mail over STARTTLS with AUTH from outside the relay networks (nodemailer)', async () => {
    const s = await relay();
    const res = await send({ port: s.port, localAddress: OUTSIDE, tls: { mode: 'starttls', ca: f.ca.cert }, auth: { user: 'alice@example.com', pass: PASSWORD }, subject: 'over starttls' });
    expect(res.response).toMatch(/^250 /);
    const mail = await heldFrom(s, 'over starttls');
    expect(mail?.state).toBe('held');
    expect(mail?.clientIp).toBe(OUTSIDE);
  });

  it('takes a mail over implicit TLS on SMTPS_PORT (nodemailer)', async () => {
    const s = await relay();
    expect(s.smtpsPort).toBeGreaterThan(0);
    const res = await send({ port: s.smtpsPort!, localAddress: OUTSIDE, tls: { mode: 'implicit', ca: f.ca.cert }, auth: { user: 'alice@example.com', pass: PASSWORD }, subject: 'over smtps' });
    expect(res.response).toMatch(/^250 /);
    expect((await heldFrom(s, 'over smtps'))?.state).toBe('held');
  });

  it('takes a mail from swaks over STARTTLS and over implicit TLS, verifying the certificate', async () => {
    const s = await relay();
    const common = ['--server', '127.0.0.1', '--local-interface', OUTSIDE, '--from', 'alice@example.com', '--to', 'bob@example.net', '--auth', 'PLAIN', '--auth-user', 'alice@example.com', '--auth-password', PASSWORD, '--tls-verify', '--tls-ca-path', f.ca.caFile];
    const starttls = await swaks([...common, '--port', String(s.port), '--tls', '--header', 'Subject: swaks starttls']);
    expect(starttls.out).toMatch(/<~\s+250 .*Held as/);
    expect(starttls.code).toBe(0);
    const implicit = await swaks([...common, '--port', String(s.smtpsPort), '--tls-on-connect', '--header', 'Subject: swaks smtps']);
    expect(implicit.out).toMatch(/<~\s+250 .*Held as/);
    expect(implicit.code).toBe(0);
    await until(async () => (await heldFrom(s, 'swaks starttls')) && (await heldFrom(s, 'swaks smtps')), 'both swaks mails held');
  });

  it('refuses AUTH before TLS from outside the relay networks with 538 5.7.11, and relaying with 530 5.7.0', async () => {
    const s = await relay();
    const before = (await s.relay.api.list({ kind: 'all' }, { view: 'active' })).total;
    const c = await RawSmtp.connect({ port: s.port, localAddress: OUTSIDE });
    expect((await c.reply())[0]).toMatch(/^220 /);
    const ehlo = await c.command('EHLO outside.example');
    expect(ehlo.join('\n')).toContain('STARTTLS');
    expect(ehlo.join('\n')).not.toMatch(/AUTH/);
    const plain = Buffer.from(`\0alice@example.com\0${PASSWORD}`).toString('base64');
    expect((await c.command(`AUTH PLAIN ${plain}`))[0]).toMatch(/^538 5\.7\.11 /);
    expect((await c.command('AUTH LOGIN'))[0]).toMatch(/^538 5\.7\.11 /);
    expect((await c.command('MAIL FROM:<alice@example.com>'))[0]).toMatch(/^530 5\.7\.0 /);
    c.close();

    const viaSwaks = await swaks(['--server', '127.0.0.1', '--port', String(s.port), '--local-interface', OUTSIDE, '--from', 'alice@example.com', '--to', 'bob@example.net', '--auth', 'PLAIN', '--auth-user', 'alice@example.com', '--auth-password', PASSWORD]);
    expect(viaSwaks.code).not.toBe(0);
    expect(viaSwaks.out).toMatch(/did not advertise authentication|538/i);
    expect((await s.relay.api.list({ kind: 'all' }, { view: 'active' })).total).toBe(before);
  });

  it('offers AUTH in cleartext to a client inside the relay networks', async () => {
    const s = await relay();
    const c = await RawSmtp.connect({ port: s.port });
    await c.reply();
    expect((await c.command('EHLO inside.example')).join('\n')).toMatch(/AUTH PLAIN LOGIN/);
    const plain = Buffer.from(`\0alice@example.com\0${PASSWORD}`).toString('base64');
    expect((await c.command(`AUTH PLAIN ${plain}`))[0]).toMatch(/^235 /);
    c.close();
  });

  it('offers AUTH after STARTTLS and runs none of the plaintext commands pipelined behind STARTTLS', async () => {
    const s = await relay();
    const c = await RawSmtp.connect({ port: s.port, localAddress: OUTSIDE });
    await c.reply();
    await c.command('EHLO outside.example');
    c.write('STARTTLS\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n');
    expect((await c.reply())[0]).toMatch(/^220 /);
    const secure = await c.startTls({ ca: f.ca.cert, servername: 'localhost' });
    expect(['TLSv1.2', 'TLSv1.3']).toContain(secure.getProtocol());
    // The first thing inside TLS is the answer to our own EHLO: nothing injected ran.
    const ehlo = await c.command('EHLO outside.example');
    expect(ehlo[0]).toMatch(/^250-/);
    expect(ehlo.join('\n')).toMatch(/AUTH PLAIN LOGIN/);
    expect((await c.command('RCPT TO:<bob@example.net>'))[0]).toMatch(/^503 /);
    const plain = Buffer.from(`\0alice@example.com\0${PASSWORD}`).toString('base64');
    expect((await c.command(`AUTH PLAIN ${plain}`))[0]).toMatch(/^235 /);
    expect(c.unread).toBe('');
    c.close();
  });

  it('speaks TLS 1.2 and newer only, and asks no client certificate', async () => {
    const s = await relay();
    const old = RawSmtp.connect({ port: s.smtpsPort!, tls: { ca: f.ca.cert, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' } });
    await expect(old).rejects.toMatchObject({ code: expect.stringMatching(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/) });
    const c = await RawSmtp.connect({ port: s.smtpsPort!, tls: { ca: f.ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' } });
    expect((c.socket as import('node:tls').TLSSocket).getProtocol()).toBe('TLSv1.2');
    expect((await c.reply())[0]).toMatch(/^220 /);
    c.close();
  });

  it('takes a renewed certificate file into use without a restart', async () => {
    const first = await f.ca.issue();
    const certFile = `${f.ca.dir}/live.pem`;
    const keyFile = `${f.ca.dir}/live.key`;
    writeFileSync(certFile, first.cert);
    writeFileSync(keyFile, first.key);
    const s = await relay({ TLS_CERT: certFile, TLS_KEY: keyFile }, { tlsWatchMs: 50 });
    const seen = async () => {
      const c = await RawSmtp.connect({ port: s.smtpsPort!, tls: { ca: f.ca.cert, servername: 'localhost' } });
      const fp = (c.socket as import('node:tls').TLSSocket).getPeerX509Certificate()!.fingerprint256;
      c.close();
      return fp;
    };
    expect(await seen()).toBe(fingerprintOf(first.cert));

    const renewed = await f.ca.issue();
    // The key first: for a moment the pair does not match, and the old one must stay in use.
    writeFileSync(keyFile, renewed.key);
    await new Promise((r) => setTimeout(r, 200));
    expect(await seen()).toBe(fingerprintOf(first.cert));
    writeFileSync(certFile, renewed.cert);
    await until(async () => (await seen()) === fingerprintOf(renewed.cert), 'the renewed certificate');
    expect(s.relay.tls.info?.fingerprint).toBe(fingerprintOf(renewed.cert));
    // STARTTLS on the submission port uses it too.
    const c = await RawSmtp.connect({ port: s.port });
    await c.reply();
    await c.command('EHLO x.example');
    expect((await c.command('STARTTLS'))[0]).toMatch(/^220 /);
    const secure = await c.startTls({ ca: f.ca.cert, servername: 'localhost' });
    expect(secure.getPeerX509Certificate()!.fingerprint256).toBe(fingerprintOf(renewed.cert));
    c.close();
  });
});
