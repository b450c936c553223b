import nodemailer from 'nodemailer';
import { upstreamOptions, type UpstreamTimeouts } from '../../relay/upstream.js';

/**
 * AUTH_MODE=upstream: is this the login of an account at the upstream mail server? Checked live:
 * connect to UPSTREAM_URL with its TLS rules (implicit TLS, or STARTTLS required unless the URL
 * loosens it), AUTH with the given login, QUIT. Nothing is sent.
 *
 * Three answers, because "the password is wrong" and "we could not ask" must never be confused:
 * a mailer told 535 asks its user for a new password, one told 454 simply tries again later.
 */
export type UpstreamVerdict = 'accepted' | 'refused' | 'unavailable';

export interface UpstreamCheck {
  verdict: UpstreamVerdict;
  /** The upstream's reply or the error, for the log. Never contains the password. */
  detail: string;
}

export const LOGIN_TIMEOUTS: UpstreamTimeouts = { connectionMs: 10_000, greetingMs: 10_000, socketMs: 20_000 };

interface NodemailerError {
  code?: string;
  responseCode?: number;
  response?: string;
  message?: string;
}

/**
 * A 5xx answer to AUTH refuses the login, except 530 and 538, which mean that the upstream
 * wants TLS first (our configuration, not the user's password). Everything else (4xx,
 * timeouts, refused connections, TLS errors) is "could not ask".
 */
export function verdictOf(err: NodemailerError): UpstreamVerdict {
  const code = err.responseCode;
  if (err.code === 'EAUTH' && code !== undefined && code >= 500 && code !== 530 && code !== 538) return 'refused';
  return 'unavailable';
}

export async function checkUpstreamLogin(url: URL, user: string, pass: string, opts: { timeouts?: UpstreamTimeouts; heloName?: string } = {}): Promise<UpstreamCheck> {
  if (!user || !pass) return { verdict: 'refused', detail: 'empty login or password' };
  const transport = nodemailer.createTransport({
    ...upstreamOptions(url, opts.timeouts ?? LOGIN_TIMEOUTS, opts.heloName),
    auth: { user, pass },
  } as never);
  try {
    await transport.verify();
    return { verdict: 'accepted', detail: 'accepted' };
  } catch (e) {
    const err = e as NodemailerError;
    return { verdict: verdictOf(err), detail: (err.response || err.message || err.code || 'error').replace(/\s+/g, ' ').slice(0, 300) };
  } finally {
    transport.close();
  }
}
