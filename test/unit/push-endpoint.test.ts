import { describe, expect, it } from 'vitest';
import { checkEndpoint, guardedLookup } from '../../src/lib/server/push/endpoint.js';
import { classify } from '../../src/lib/server/push/sender.js';
import { WebPushError } from 'web-push';

describe('push endpoints', () => {
  it('accepts the https endpoints of the real push services', () => {
    for (const e of [
      'https://fcm.googleapis.com/fcm/send/abc:def',
      'https://updates.push.services.mozilla.com/wpush/v2/gAAAA',
      'https://web.push.apple.com/QGmN0',
      'https://8.8.8.8/push/1',
    ]) {
      expect(() => checkEndpoint(e)).not.toThrow();
    }
  });

  it.each([
    ['plain http', 'http://fcm.googleapis.com/fcm/send/x'],
    ['another scheme', 'ftp://example.com/x'],
    ['not a URL', 'fcm.googleapis.com/x'],
    ['credentials in the URL', 'https://user:pw@example.com/x'],
    ['loopback v4', 'https://127.0.0.1/x'],
    ['loopback v6', 'https://[::1]/x'],
    ['localhost', 'https://localhost:8443/x'],
    ['private 10/8', 'https://10.1.2.3/x'],
    ['private 192.168/16', 'https://192.168.0.10/x'],
    ['private 172.16/12', 'https://172.20.0.1/x'],
    ['link-local (cloud metadata)', 'https://169.254.169.254/latest'],
    ['IPv6 unique local', 'https://[fd00::1]/x'],
    ['IPv6 link-local', 'https://[fe80::1]/x'],
    ['IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/x'],
    ['unspecified', 'https://0.0.0.0/x'],
    ['carrier-grade NAT', 'https://100.64.0.1/x'],
    ['a bare host name', 'https://intranet/x'],
    ['a .local name', 'https://printer.local/x'],
    ['a decimal IP', 'https://2130706433/x'],
  ])('refuses %s', (_what, endpoint) => {
    expect(() => checkEndpoint(endpoint)).toThrow();
  });

  it('lets loopback through only with the explicit test option, and never a private network', () => {
    expect(() => checkEndpoint('https://127.0.0.1:4443/x', { allowLoopback: true })).not.toThrow();
    expect(() => checkEndpoint('https://localhost:4443/x', { allowLoopback: true })).not.toThrow();
    expect(() => checkEndpoint('https://10.0.0.1/x', { allowLoopback: true })).toThrow();
  });

  it('refuses, at connect time, a name that resolves to a loopback address', async () => {
    const lookup = guardedLookup({});
    const err = await new Promise<NodeJS.ErrnoException | null>((r) => lookup('localhost', {}, (e) => r(e)));
    expect(err?.code).toBe('EPUSHADDRESS');
    const ok = await new Promise<unknown>((r) => guardedLookup({ allowLoopback: true })('localhost', {}, (e, address) => r(e ?? address)));
    expect(ok).toMatch(/^(127\.0\.0\.1|::1)$/);
  });
});

describe('push service answers', () => {
  const answer = (status: number, headers: Record<string, string> = {}) => classify(new WebPushError('x', status, headers, 'body', 'https://p.example/1'));

  it('deletes on 404 and 410', () => {
    expect(answer(404).kind).toBe('gone');
    expect(answer(410).kind).toBe('gone');
  });

  it('retries on 429 (honouring Retry-After), 5xx and a network error', () => {
    expect(answer(429, { 'retry-after': '7' })).toMatchObject({ kind: 'retry', afterMs: 7000 });
    expect(answer(503).kind).toBe('retry');
    expect(classify(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).kind).toBe('retry');
  });

  it('does not retry a push the service refuses for good (other 4xx)', () => {
    expect(answer(400).kind).toBe('refused');
    expect(answer(413).kind).toBe('refused');
  });
});
