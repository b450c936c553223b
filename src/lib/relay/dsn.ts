import { randomUUID } from 'node:crypto';
import MimeNode from 'nodemailer/lib/mime-node';
import type { MailSummary } from '../server/db/schema.js';
import type { ContentRows, NewMail } from './state.js';
import { contentRows } from './store.js';
import { sanitizeText } from './header-text.js';

/**
 * Error mails (RFC 3464 delivery status notifications) that mailhold writes itself: when a
 * recipient finally fails, and when a mail was refused as too big. A report is a multipart/report
 * with a human-readable part in Japanese and English, the machine-readable message/delivery-status,
 * and the original headers (never the body). It goes out with `MAIL FROM:<>`, so it can never
 * cause another error mail, and it carries `Auto-Submitted: auto-replied`.
 */

export interface FailedRecipient {
  address: string;
  /** The upstream's reply, or our own reason. */
  reply: string;
}

export interface ReportInput {
  reportingMta: string;
  /** The envelope sender of the original mail: the report's only recipient. */
  to: string;
  originalId: string;
  originalSubject: string;
  arrivalDate: Date;
  failed: FailedRecipient[];
  /** The root header block of the original mail. */
  originalHeaders: Buffer;
  reason: 'failed' | 'too_big';
  now: Date;
}

const STATUS = /\b([245]\.\d{1,3}\.\d{1,3})\b/;

/** The RFC 3463 status for a reply: its own enhanced code if it has one, else derived from the code. */
export function statusOf(reply: string): string {
  const m = STATUS.exec(reply);
  if (m && !m[1]!.startsWith('2')) return m[1]!;
  if (/retry window over/.test(reply)) return '4.4.7';
  const code = /^\s*([45])\d\d\b/.exec(reply);
  return code ? `${code[1]}.0.0` : '5.0.0';
}

function oneLine(text: string, max = 900): string {
  const t = sanitizeText(text.replace(/[\r\n]+/g, ' '));
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}

export async function buildReport(input: ReportInput): Promise<Buffer> {
  const subject = input.reason === 'too_big' ? 'メールが大きすぎて送信できませんでした / Message too big, not sent' : '配信できませんでした / Undelivered Mail Returned to Sender';
  const list = input.failed.map((f) => `  <${f.address}>: ${oneLine(f.reply, 400)}`).join('\n');
  const why =
    input.reason === 'too_big'
      ? ['送信したメールはサイズの上限を超えているため、受け付けられず、送信されませんでした。', 'The mail you sent is bigger than the size limit; it was not accepted and not sent.']
      : ['送信したメールは、次の宛先に配信できませんでした。', 'The mail you sent could not be delivered to the following recipients.'];
  const text = [
    why[0],
    `件名: ${oneLine(input.originalSubject, 300)}`,
    '',
    list,
    '',
    '----',
    why[1],
    `Subject: ${oneLine(input.originalSubject, 300)}`,
    '',
    list,
    '',
    `mailhold id: ${input.originalId}`,
    '',
  ].join('\r\n');

  const perMessage = [`Reporting-MTA: dns; ${input.reportingMta}`, `X-Mailhold-Id: ${input.originalId}`, `Arrival-Date: ${input.arrivalDate.toUTCString().replace('GMT', '+0000')}`];
  const perRecipient = input.failed.map((f) =>
    [
      `Final-Recipient: rfc822; ${oneLine(f.address, 320)}`,
      'Action: failed',
      `Status: ${input.reason === 'too_big' ? '5.3.4' : statusOf(f.reply)}`,
      `Diagnostic-Code: smtp; ${oneLine(f.reply)}`,
      `Last-Attempt-Date: ${input.now.toUTCString().replace('GMT', '+0000')}`,
    ].join('\r\n'),
  );
  const status = [perMessage.join('\r\n'), ...perRecipient].join('\r\n\r\n') + '\r\n';

  const root = new MimeNode('multipart/report; report-type=delivery-status');
  root.setHeader({
    From: `Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    To: input.to,
    Subject: subject,
    'Auto-Submitted': 'auto-replied',
    Date: input.now.toUTCString().replace('GMT', '+0000'),
    'Message-ID': `<${randomUUID()}@${input.reportingMta}>`,
  });
  root.createChild('text/plain; charset=utf-8').setContent(text);
  root.createChild('message/delivery-status').setContent(status);
  root.createChild('text/rfc822-headers').setContent(input.originalHeaders.toString('latin1'));
  return root.build();
}

/** A report as a new mail with its content: queued at once, never held, never answered with another report. */
export function noticeMail(input: ReportInput, raw: Buffer, ownerId: number | null): { mail: NewMail; content: ContentRows } {
  const contentId = randomUUID();
  const summary: MailSummary = {
    from: [{ name: 'Mail Delivery System', address: `MAILER-DAEMON@${input.reportingMta}` }],
    to: [{ name: '', address: input.to }],
    cc: [],
    messageId: '',
    date: input.now.toUTCString(),
    attachments: [],
  };
  const headEnd = raw.indexOf('\r\n\r\n');
  const mail: NewMail = {
    id: randomUUID(),
    kind: 'notice',
    ownerId,
    authUser: null,
    clientIp: '::1',
    helo: '',
    mailFrom: '',
    recipients: [input.to],
    smtpUtf8: /[^\x00-\x7f]/.test(input.to),
    body8bit: false,
    size: raw.length,
    contentId,
    headers: raw.subarray(0, headEnd === -1 ? Math.min(raw.length, 4096) : headEnd + 2),
    subject: input.reason === 'too_big' ? 'Message too big, not sent' : 'Undelivered Mail Returned to Sender',
    summary,
    bounceAllowed: false,
    receivedAt: input.now.getTime(),
    holdSeconds: 0,
    excludedBy: null,
    noticeFor: /^[0-9a-f-]{36}$/i.test(input.originalId) ? input.originalId : null,
  };
  return { mail, content: contentRows(contentId, raw) };
}
