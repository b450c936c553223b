import { describe, expect, it } from 'vitest';
import { checkCrossSite, visitorUsesHttps, type CsrfInput } from '../../src/lib/server/auth/csrf.js';
import { pickLocale, translator } from '../../src/lib/i18n/index.js';
import { en } from '../../src/lib/i18n/en.js';
import { ja } from '../../src/lib/i18n/ja.js';
import { reveal } from '../../src/lib/ui/reveal.js';
import { textPreview } from '../../src/lib/server/preview.js';
import { actionMessage } from '../../src/lib/ui/results.js';
import { formatTime } from '../../src/lib/i18n/index.js';

const post = (o: Partial<CsrfInput>): CsrfInput => ({
  method: 'POST',
  path: '/api/trpc/mail.discardAll',
  contentType: 'application/json',
  origin: 'http://mailhold.lan:3000',
  secFetchSite: 'same-origin',
  host: 'mailhold.lan:3000',
  ...o,
});

describe('the cross-site check', () => {
  const cases: Array<[string, Partial<CsrfInput>, boolean]> = [
    ['lets a same-site JSON mutation through', {}, true],
    ['lets a GET through whatever its origin', { method: 'GET', origin: 'https://evil.example', contentType: null }, true],
    ['refuses a mutation from another site', { origin: 'https://evil.example' }, false],
    ['refuses the same host name on another port', { origin: 'http://mailhold.lan:4000' }, false],
    ['refuses an opaque origin (sandboxed frame, file:)', { origin: 'null' }, false],
    ['refuses an API call as a form post, which needs no preflight', { contentType: 'application/x-www-form-urlencoded' }, false],
    ['refuses an API call as text/plain', { contentType: 'text/plain' }, false],
    ['accepts JSON with a charset', { contentType: 'application/json; charset=utf-8' }, true],
    ['accepts the origin named by ORIGIN behind a proxy', { origin: 'https://mail.example.com', host: '10.0.0.5:3000', configuredOrigin: 'https://mail.example.com' }, true],
    ['refuses Sec-Fetch-Site cross-site when Origin is missing', { origin: null, secFetchSite: 'cross-site' }, false],
    ['lets a program without Origin or Sec-Fetch-Site call the API', { origin: null, secFetchSite: null }, true],
    ['refuses a form post without Origin', { path: '/login', contentType: 'application/x-www-form-urlencoded', origin: null, secFetchSite: null }, false],
    ['lets a same-site form post through', { path: '/login', contentType: 'application/x-www-form-urlencoded' }, true],
    ['refuses a cross-site form post', { path: '/logout', contentType: 'application/x-www-form-urlencoded', origin: 'https://evil.example' }, false],
  ];
  for (const [name, input, ok] of cases) {
    it(name, () => expect(checkCrossSite(post(input)).ok).toBe(ok));
  }

  it('takes the scheme for the Secure cookie from ORIGIN, else from what the browser names', () => {
    expect(visitorUsesHttps(new Headers({ origin: 'https://m.example' }))).toBe(true);
    expect(visitorUsesHttps(new Headers({ origin: 'http://192.168.1.2:3000' }))).toBe(false);
    expect(visitorUsesHttps(new Headers({ referer: 'https://m.example/mail' }))).toBe(true);
    expect(visitorUsesHttps(new Headers({ origin: 'http://x' }), 'https://m.example')).toBe(true);
    expect(visitorUsesHttps(new Headers())).toBe(false);
  });
});

describe('the language', () => {
  it('comes from the cookie first', () => expect(pickLocale('ja', 'en-US,en;q=0.9')).toBe('ja'));
  it('else from Accept-Language by quality', () => expect(pickLocale(undefined, 'fr;q=1, en;q=0.5, ja-JP;q=0.8')).toBe('ja'));
  it('ignores an unknown cookie value', () => expect(pickLocale('xx', 'ja')).toBe('ja'));
  it('falls back to English', () => expect(pickLocale(undefined, 'de-DE, fr;q=0.9')).toBe('en'));
  it('has every English word in Japanese, none empty, no placeholder lost', () => {
    expect(Object.keys(ja).sort()).toEqual(Object.keys(en).sort());
    for (const key of Object.keys(en) as Array<keyof typeof en>) {
      expect(ja[key], key).not.toBe('');
      expect((ja[key].match(/\{\w+\}/g) ?? []).sort(), key).toEqual((en[key].match(/\{\w+\}/g) ?? []).sort());
    }
  });
  it('fills in the placeholders', () => expect(translator('en')('confirm.discardAll', { count: 3 })).toBe('Discard 3 held mail(s)? They will never be sent.'));
});

describe('hidden characters in attacker-controlled text', () => {
  it('shows a right-to-left override in a file name instead of obeying it', () => {
    expect(reveal('invoice\u202Efdp.exe')).toEqual([{ text: 'invoice' }, { code: 'U+202E', name: 'RLO' }, { text: 'fdp.exe' }]);
  });
  it('shows zero-width characters and the BOM', () => {
    expect(reveal('pay\u200Bpal\uFEFF')).toEqual([{ text: 'pay' }, { code: 'U+200B', name: 'ZWSP' }, { text: 'pal' }, { code: 'U+FEFF', name: 'BOM' }]);
  });
  it('shows tag characters outside the BMP', () => {
    expect(reveal('a\u{E0041}')).toEqual([{ text: 'a' }, { code: 'U+E0041', name: 'TAG' }]);
  });
  it('leaves ordinary Japanese, Arabic and markup-like text alone', () => {
    for (const s of ['見積書の送付について', 'مرحبا', '<img src=x onerror=alert(1)>']) expect(reveal(s)).toEqual([{ text: s }]);
  });
});

describe('the body preview', () => {
  const mail = (headers: string[], body: string) => Buffer.from([...headers, '', body].join('\r\n'), 'latin1');

  it('decodes quoted-printable UTF-8', async () => {
    const p = await textPreview(mail(['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable'], 'caf=C3=A9 =\r\nand more\r\n'), true);
    expect(p).toMatchObject({ text: 'café and more\n', truncated: false });
  });
  it('decodes base64 ISO-2022-JP', async () => {
    const jis = Buffer.from('GyRCJDMkcyRLJEEkTxsoQg==', 'base64'); // こんにちは
    const p = await textPreview(mail(['Content-Type: text/plain; charset=ISO-2022-JP', 'Content-Transfer-Encoding: base64'], jis.toString('base64')), true);
    expect(p?.text).toBe('こんにちは');
  });
  it('takes the text/plain part of a multipart/alternative, never the HTML', async () => {
    const raw = mail(
      ['Content-Type: multipart/alternative; boundary="b"'],
      ['--b', 'Content-Type: text/html', '', '<p>html</p>', '--b', 'Content-Type: text/plain', '', 'plain text', '--b--', ''].join('\r\n'),
    );
    expect((await textPreview(raw, true))?.text).toBe('plain text');
  });
  it('drops control characters but keeps line breaks', async () => {
    const p = await textPreview(mail(['Content-Type: text/plain'], 'a\x1b[31mb\x07\r\nc'), true);
    expect(p?.text).toBe('a[31mb\nc');
  });
  it('says when only the beginning was read', async () => {
    const p = await textPreview(mail(['Content-Type: text/plain'], 'the start of a long'), false);
    expect(p?.truncated).toBe(true);
  });
});

describe('the sentence after an action', () => {
  const t = translator('en');
  it('says what was done', () => {
    expect(actionMessage(t, 'discard', { outcome: 'done', id: 'x', state: 'discarded' }, 'Numbers')).toEqual({ text: 'Discarded: Numbers', ok: true });
  });
  it('says too late, and when it was sent', () => {
    const at = Date.UTC(2026, 0, 5, 10, 42, 17);
    expect(actionMessage(t, 'discard', { outcome: 'too_late', id: 'x', state: 'sent', at }, 'Numbers')).toEqual({ text: `Too late — it was already sent at ${formatTime(at)}.`, ok: false });
  });
  it('says it is on its way for a mail being sent', () => {
    expect(actionMessage(t, 'discard', { outcome: 'too_late', id: 'x', state: 'sending', at: null }, 'N').text).toBe('Too late — it is already on its way (since –).');
  });
  it('says so in Japanese', () => {
    expect(actionMessage(translator('ja'), 'discard', { outcome: 'done', id: 'x', state: 'discarded' }, '見積書').text).toBe('破棄しました：見積書');
  });
});
