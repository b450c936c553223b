import { readFileSync } from 'node:fs';

/**
 * UPSTREAM_URL to nodemailer transport options.
 *   smtps://user:pass@host:465          implicit TLS
 *   smtp://user:pass@host:587           STARTTLS required (the default: our password never goes in clear)
 *   smtp://host:25?tls=opportunistic    STARTTLS when offered
 *   smtp://host:25?tls=none             never TLS (a trusted local server only)
 *   ...?ca=/path/to/ca.pem              trust a private CA as well
 * Certificates are always verified.
 */
export interface UpstreamTimeouts {
  connectionMs: number;
  greetingMs: number;
  socketMs: number;
}

export const DEFAULT_TIMEOUTS: UpstreamTimeouts = { connectionMs: 10_000, greetingMs: 15_000, socketMs: 60_000 };

export type TlsMode = 'implicit' | 'required' | 'opportunistic' | 'none';

export interface UpstreamOptions {
  host: string;
  port: number;
  secure: boolean;
  requireTLS: boolean;
  ignoreTLS: boolean;
  auth?: { user: string; pass: string };
  tls: { rejectUnauthorized: true; minVersion: 'TLSv1.2'; ca?: Buffer; servername?: string };
  connectionTimeout: number;
  greetingTimeout: number;
  socketTimeout: number;
  dnsTimeout: number;
  name?: string;
}

export function tlsModeOf(url: URL): TlsMode {
  if (url.protocol === 'smtps:') return 'implicit';
  const mode = url.searchParams.get('tls') ?? 'required';
  if (mode === 'required' || mode === 'opportunistic' || mode === 'none') return mode;
  throw new Error(`[delivery] UPSTREAM_URL: tls=${mode} is not one of required, opportunistic, none`);
}

export function upstreamOptions(url: URL, timeouts: UpstreamTimeouts = DEFAULT_TIMEOUTS, heloName?: string): UpstreamOptions {
  const mode = tlsModeOf(url);
  const ca = url.searchParams.get('ca');
  const user = decodeURIComponent(url.username);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(url.port) || (mode === 'implicit' ? 465 : 587),
    secure: mode === 'implicit',
    requireTLS: mode === 'required',
    ignoreTLS: mode === 'none',
    auth: user ? { user, pass: decodeURIComponent(url.password) } : undefined,
    tls: { rejectUnauthorized: true, minVersion: 'TLSv1.2', ...(ca ? { ca: readFileSync(ca) } : {}) },
    connectionTimeout: timeouts.connectionMs,
    greetingTimeout: timeouts.greetingMs,
    socketTimeout: timeouts.socketMs,
    dnsTimeout: timeouts.connectionMs,
    ...(heloName ? { name: heloName } : {}),
  };
}
