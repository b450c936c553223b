import { describe, expect, it } from 'vitest';
import { MailSummarizer } from '../../src/lib/relay/summary.js';
import { inNetworks, normalizeIp, parseNetworkList } from '../../src/lib/relay/networks.js';

/** Feeds a message in pieces of `step` bytes, the way it comes off an SMTP socket. */
async function summarize(message: string, step: number) {
  const s = new MailSummarizer();
  const bytes = Buffer.from(message);
  for (let i = 0; i < bytes.length; i += step) {
    if (!s.write(bytes.subarray(i, i + step))) await new Promise((r) => s.once('drain', r));
  }
  await new Promise<void>((resolve) => s.end(() => resolve()));
  return s.result();
}

const base64Body = (bytes: number) => (Buffer.alloc(bytes, 7).toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n';

describe('MailSummarizer', () => {
  it('reads a single-part mail the same in one piece and in small pieces', async () => {
    const mail = ['From: A <a@example.com>', 'To: b@example.org', 'Subject: =?UTF-8?B?5pel5pys?=', '', 'x'.repeat(30_000), ''].join('\r\n');
    for (const step of [mail.length, 4096, 7]) {
      const r = await summarize(mail, step);
      expect(r.subject).toBe('日本');
      expect(r.summary.from).toEqual([{ name: 'A', address: 'a@example.com' }]);
      expect(r.summary.attachments).toEqual([]);
      expect(r.headers.toString()).toContain('Subject:');
      expect(r.headers.toString()).not.toContain('xxx');
    }
  });

  it('sizes a single-part attachment from the bytes after its headers', async () => {
    const body = base64Body(60_000);
    const mail = ['Subject: scan', 'Content-Type: application/pdf', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="scan.pdf"', '', body].join('\r\n');
    for (const step of [mail.length, 1000]) {
      const [a] = (await summarize(mail, step)).summary.attachments;
      expect(a!.name).toBe('scan.pdf');
      expect(Math.abs(a!.size - 60_000)).toBeLessThan(1000);
    }
  });

  it('still walks every part of a multipart mail fed in small pieces', async () => {
    const mail = [
      'Subject: two files',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'hello',
      '--b',
      'Content-Type: image/png',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="a.png"',
      '',
      base64Body(9000),
      '--b',
      'Content-Type: application/zip',
      'Content-Disposition: attachment; filename="b.zip"',
      '',
      'z'.repeat(500),
      '--b--',
      '',
    ].join('\r\n');
    const r = await summarize(mail, 333);
    expect(r.summary.attachments.map((a) => a.name)).toEqual(['a.png', 'b.zip']);
    expect(Math.abs(r.summary.attachments[0]!.size - 9000)).toBeLessThan(300);
  });
});

describe('networks', () => {
  it('answers the same from its memory as on the first ask', () => {
    const nets = parseNetworkList('10.0.0.0/8, 2001:db8::/32');
    for (let round = 0; round < 2; round++) {
      expect(inNetworks('10.1.2.3', nets)).toBe(true);
      expect(inNetworks('::ffff:10.1.2.3', nets)).toBe(true);
      expect(inNetworks('11.1.2.3', nets)).toBe(false);
      expect(inNetworks('2001:DB8::1', nets)).toBe(true);
      expect(inNetworks('not an ip', nets)).toBe(false);
      expect(normalizeIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
      expect(normalizeIp('garbage')).toBeUndefined();
    }
    // A new list (settings changed) is asked afresh.
    expect(inNetworks('11.1.2.3', parseNetworkList('11.0.0.0/8'))).toBe(true);
    expect(inNetworks('10.1.2.3', [])).toBe(false);
  });
});
