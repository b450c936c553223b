import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startRelay } from '../helpers/relay.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/** Issue 5: without TLS_CERT/TLS_KEY, a self-signed certificate made once and kept. */

const run = promisify(execFile);
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

async function opensslFingerprint(file: string): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-in', file, '-noout', '-fingerprint', '-sha256']);
  return stdout.trim().replace(/^.*Fingerprint=/i, '');
}

describe('the self-signed certificate', () => {
  it('is generated at the first start into the data directory, logged with its fingerprint, and kept', async () => {
    const file = path.join(database.dataDir, 'tls', 'selfsigned.pem');
    expect(existsSync(file)).toBe(false);
    const { log, lines } = capturingLogger();
    const first = await startRelay(database.db, { clock: new ManualClock(), log, env: { DATA_DIR: database.dataDir, SMTP_NAME: 'mail.example.test' } });
    try {
      expect(existsSync(file)).toBe(true);
      expect(statSync(file).mode & 0o077).toBe(0);
      const fingerprint = first.relay.tls.info!.fingerprint;
      expect(fingerprint).toBe(await opensslFingerprint(file));
      expect(first.relay.tls.info!.selfSigned).toBe(true);
      const logged = lines.find((l) => typeof l.msg === 'string' && l.msg.includes('TLS certificate loaded'));
      expect(logged?.fingerprint).toBe(fingerprint);
      expect(String(logged?.msg)).toContain(fingerprint);

      // What a mailer sees over STARTTLS is exactly that certificate.
      const c = await RawSmtp.connect({ port: first.port });
      await c.reply();
      await c.command('EHLO client.example');
      expect((await c.command('STARTTLS'))[0]).toMatch(/^220 /);
      const secure = await c.startTls({ rejectUnauthorized: false, servername: 'mail.example.test' });
      const peer = secure.getPeerX509Certificate()!;
      expect(peer.fingerprint256).toBe(fingerprint);
      expect(peer.subjectAltName).toContain('DNS:mail.example.test');
      c.close();
    } finally {
      await first.stop();
    }

    const pem = readFileSync(file);
    const second = await startRelay(database.db, { clock: new ManualClock(), env: { DATA_DIR: database.dataDir, SMTP_NAME: 'mail.example.test' } });
    try {
      expect(readFileSync(file).equals(pem)).toBe(true);
      expect(second.relay.tls.info!.fingerprint).toBe(await opensslFingerprint(file));
    } finally {
      await second.stop();
    }
  });

  it('stops the start with a message naming TLS_CERT when the configured files do not match', async () => {
    const dir = database.dataDir;
    const certFile = path.join(dir, 'not-a-cert.pem');
    writeFileSync(certFile, 'nothing here');
    await expect(startRelay(database.db, { env: { DATA_DIR: dir, TLS_CERT: certFile, TLS_KEY: certFile } })).rejects.toThrow(/\[smtp\] TLS_CERT/);
  });
});
