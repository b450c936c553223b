/**
 * The one place that decides what an upstream's answer means for a recipient.
 *
 * Rules, in order:
 * - An upstream that refuses our own credentials (530/534/535 to AUTH, or an EAUTH error) is a
 *   problem of our configuration, not of the mail: defer, and alert the administrator.
 * - A TLS failure towards the upstream is deferred with an alert: we never fall back to plaintext.
 * - A reply code of 500 or more fails the recipient now, and so does a message over the size limit
 *   the upstream announced.
 * - Everything else defers: 4xx replies, timeouts, refused or dropped connections, DNS errors.
 *   No reply code stays deferrable: the test is `>= 500`, never `< 400`.
 */
export interface UpstreamError {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  message?: string;
}

export type Verdict =
  | { action: 'defer'; reply: string; alert?: 'upstream_auth' | 'upstream_tls' }
  | { action: 'fail'; reply: string };

const TLS_FAILURE = /certificate|self[- ]signed|unable to verify|\bTLS\b|\bSSL\b/i;

export function replyText(err: UpstreamError): string {
  const text = (err.response || err.message || err.code || 'unknown error').replace(/\s+/g, ' ').trim();
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}

export function classify(err: UpstreamError): Verdict {
  const reply = replyText(err);
  const isAuthCommand = err.command === 'AUTH PLAIN' || err.command === 'AUTH LOGIN' || err.command?.startsWith('AUTH') === true;
  if (err.code === 'EAUTH' || (isAuthCommand && err.responseCode !== undefined)) {
    return { action: 'defer', reply, alert: 'upstream_auth' };
  }
  if (err.code === 'ETLS' || (err.responseCode === undefined && TLS_FAILURE.test(err.message ?? ''))) {
    return { action: 'defer', reply, alert: 'upstream_tls' };
  }
  if (err.responseCode !== undefined && err.responseCode >= 500) return { action: 'fail', reply };
  // The upstream announced a size limit (EHLO SIZE) that the message is over: the client does not
  // even try, and no retry will change that. Answered as the upstream would have, 552 5.3.4.
  if (err.code === 'EMESSAGE' && err.responseCode === undefined && /larger than allowed/i.test(err.message ?? '')) {
    return { action: 'fail', reply: `552 5.3.4 ${reply}` };
  }
  return { action: 'defer', reply };
}
