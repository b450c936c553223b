import { describe, expect, it } from 'vitest';
import { generateSelfSigned, fingerprintOf, checkPair } from '../../src/lib/relay/tls.js';
import { tlsModeOf, upstreamOptions } from '../../src/lib/relay/upstream.js';
import { CredentialStore } from '../../src/lib/server/auth/credentials.js';
import { verdictOf } from '../../src/lib/server/auth/upstream-login.js';

describe('what an upstream answer to a login check means', () => {
  const cases: Array<[string, Parameters<typeof verdictOf>[0], ReturnType<typeof verdictOf>]> = [
    ['535 to AUTH is a wrong password', { code: 'EAUTH', responseCode: 535 }, 'refused'],
    ['534 to AUTH (mechanism too weak, app password needed) is refused', { code: 'EAUTH', responseCode: 534 }, 'refused'],
    ['454 to AUTH is a provider in trouble', { code: 'EAUTH', responseCode: 454 }, 'unavailable'],
    ['530 to AUTH means TLS first: our configuration, not the password', { code: 'EAUTH', responseCode: 530 }, 'unavailable'],
    ['538 to AUTH means TLS first as well', { code: 'EAUTH', responseCode: 538 }, 'unavailable'],
    ['a refused connection is unavailable', { code: 'ESOCKET', message: 'connect ECONNREFUSED' }, 'unavailable'],
    ['a TLS failure is unavailable', { code: 'ETLS', message: 'self-signed certificate' }, 'unavailable'],
    ['a timeout is unavailable', { code: 'ETIMEDOUT' }, 'unavailable'],
    ['an AUTH error without a reply code is unavailable', { code: 'EAUTH', message: 'Missing credentials' }, 'unavailable'],
  ];
  it.each(cases)('%s', (_name, err, verdict) => expect(verdictOf(err)).toBe(verdict));
});

describe('sealed upstream logins', () => {
  const store = new CredentialStore(Buffer.from('a server secret of some length'));

  it('open with the same key and user only', () => {
    const sealed = store.seal(7, { user: 'Carol@Example.com', pass: 'pässwörd' });
    expect(store.open(7, sealed)).toEqual({ user: 'Carol@Example.com', pass: 'pässwörd' });
    expect(store.open(8, sealed)).toBeUndefined();
    expect(new CredentialStore(Buffer.from('another secret')).open(7, sealed)).toBeUndefined();
  });

  it('never seal the same login to the same bytes, and reject a tampered row', () => {
    const a = store.seal(1, { user: 'u', pass: 'p' });
    const b = store.seal(1, { user: 'u', pass: 'p' });
    expect(a.equals(b)).toBe(false);
    const tampered = Buffer.from(a);
    tampered[tampered.length - 1]! ^= 1;
    expect(store.open(1, tampered)).toBeUndefined();
    expect(store.open(1, Buffer.alloc(10))).toBeUndefined();
  });
});

describe('UPSTREAM_URL TLS modes', () => {
  it('reads smtps as implicit TLS, smtp as STARTTLS required, and the two loosened modes', () => {
    expect(tlsModeOf(new URL('smtps://h'))).toBe('implicit');
    expect(tlsModeOf(new URL('smtp://h'))).toBe('required');
    expect(tlsModeOf(new URL('smtp://h?tls=opportunistic'))).toBe('opportunistic');
    expect(tlsModeOf(new URL('smtp://h?tls=none'))).toBe('none');
    expect(() => tlsModeOf(new URL('smtp://h?tls=maybe'))).toThrow(/\[delivery\] UPSTREAM_URL/);
  });

  it('always verifies certificates, TLS 1.2 and newer, and takes an IPv6 literal host', () => {
    const o = upstreamOptions(new URL('smtp://u%40x:p@[2001:db8::1]:587'));
    expect(o).toMatchObject({ host: '2001:db8::1', port: 587, secure: false, requireTLS: true, ignoreTLS: false, auth: { user: 'u@x', pass: 'p' } });
    expect(o.tls).toMatchObject({ rejectUnauthorized: true, minVersion: 'TLSv1.2' });
  });
});

describe('the generated certificate', () => {
  it('is a matching pair for the host name, and its fingerprint is SHA-256 in colon hex', async () => {
    const pair = await generateSelfSigned('mail.example.test');
    expect(() => checkPair(pair)).not.toThrow();
    const { X509Certificate } = await import('node:crypto');
    const x = new X509Certificate(pair.cert);
    expect(fingerprintOf(pair.cert)).toBe(x.fingerprint256);
    expect(x.subjectAltName).toContain('DNS:mail.example.test');
    expect(x.subjectAltName).toContain('DNS:localhost');
    const other = await generateSelfSigned('other.example.test');
    expect(() => checkPair({ key: other.key, cert: pair.cert })).toThrow();
  });
});
