import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveKey } from '../../src/lib/server/secret.js';
import { ActionTokens, TOKEN_PURPOSE } from '../../src/lib/server/push/tokens.js';

const secret = Buffer.from('a test secret that is long enough for the server');
const key = deriveKey(secret, TOKEN_PURPOSE);
const now = Date.UTC(2026, 0, 5, 9, 0, 0);
const mail = randomUUID();

function reencode(token: string, change: (claims: Record<string, unknown>) => void): string {
  const [prefix, body, sig] = token.split('.');
  const claims = JSON.parse(Buffer.from(body!, 'base64url').toString());
  change(claims);
  return `${prefix}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
}

describe('push action tokens', () => {
  const tokens = new ActionTokens(key, () => now);

  it('verifies a token it issued, with its mail, action, user and expiry', () => {
    const token = tokens.issue(mail, 'discard', 7, now + 60_000);
    const v = tokens.verify(token);
    expect(v).toMatchObject({ ok: true, claims: { mailId: mail, action: 'discard', userId: 7, expiresAt: now + 60_000 } });
  });

  it('gives every token its own id, so spending one spends no other', () => {
    const a = tokens.verify(tokens.issue(mail, 'discard', 7, now + 1000));
    const b = tokens.verify(tokens.issue(mail, 'discard', 7, now + 1000));
    expect(a.ok && b.ok && a.claims.jti !== b.claims.jti).toBe(true);
  });

  it('refuses a token whose signature was changed', () => {
    const token = tokens.issue(mail, 'discard', 7, now + 60_000);
    const flipped = token.slice(0, -2) + (token.endsWith('A') ? 'B' : 'A') + token.slice(-1);
    expect(tokens.verify(flipped)).toEqual({ ok: false, reason: 'signature' });
  });

  it('refuses a token moved to another mail', () => {
    const token = reencode(tokens.issue(mail, 'discard', 7, now + 60_000), (c) => (c.m = randomUUID()));
    expect(tokens.verify(token)).toEqual({ ok: false, reason: 'signature' });
  });

  it('refuses a token turned into another action', () => {
    const token = reencode(tokens.issue(mail, 'discard', 7, now + 60_000), (c) => (c.a = 'send'));
    expect(tokens.verify(token)).toEqual({ ok: false, reason: 'signature' });
  });

  it('refuses a token given a later expiry or another user', () => {
    expect(tokens.verify(reencode(tokens.issue(mail, 'send', 7, now + 60_000), (c) => (c.e = now + 3_600_000))).ok).toBe(false);
    expect(tokens.verify(reencode(tokens.issue(mail, 'send', 7, now + 60_000), (c) => (c.u = 1))).ok).toBe(false);
  });

  it('refuses a token at and after the due time', () => {
    const token = tokens.issue(mail, 'discard', 7, now);
    expect(tokens.verify(token)).toEqual({ ok: false, reason: 'expired' });
    expect(new ActionTokens(key, () => now - 1).verify(token).ok).toBe(true);
  });

  it('refuses a token signed with a key for any other purpose (a session, say)', () => {
    const other = new ActionTokens(deriveKey(secret, 'session'), () => now);
    expect(other.verify(tokens.issue(mail, 'discard', 7, now + 60_000))).toEqual({ ok: false, reason: 'signature' });
  });

  it('refuses garbage without throwing', () => {
    for (const t of ['', 'v1', 'v1..', 'v2.a.b', 'v1.!!!.abc', `v1.${'x'.repeat(2000)}.y`]) expect(tokens.verify(t).ok).toBe(false);
    expect(tokens.verify(123 as unknown as string).ok).toBe(false);
  });
});
