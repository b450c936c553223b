/**
 * Cross-site request checks, for every request that may change something. SvelteKit's own check
 * covers only form posts and compares against an origin it must be told (ORIGIN; adapter-node
 * assumes https without it), so mailhold does the whole check itself, in the `handle` hook:
 *
 * - a browser's Origin header (or, without one, Sec-Fetch-Site) must name this site: the host the
 *   request was sent to, or ORIGIN when mailhold runs behind a proxy;
 * - the API (`/api/`) takes only application/json: a cross-site page cannot send that without a
 *   CORS preflight, which is never granted;
 * - a form post without Origin is refused (every browser sends one); an API call without Origin
 *   and Sec-Fetch-Site comes from a program, not from a page a visitor was lured to.
 */
export interface CsrfInput {
  method: string;
  path: string;
  contentType: string | null;
  origin: string | null;
  secFetchSite: string | null;
  /** The Host header of the request. */
  host: string | null;
  /** ORIGIN from the configuration, if any. */
  configuredOrigin?: string;
}

export type CsrfVerdict = { ok: true } | { ok: false; reason: string };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return null;
  }
}

export function checkCrossSite(r: CsrfInput): CsrfVerdict {
  if (SAFE_METHODS.has(r.method.toUpperCase())) return { ok: true };
  const api = r.path === '/api' || r.path.startsWith('/api/');
  const type = (r.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (api && type !== 'application/json') return { ok: false, reason: 'the API takes only application/json' };
  if (r.origin !== null) {
    const from = r.origin === 'null' ? null : hostOf(r.origin);
    const allowed = [r.host?.toLowerCase(), r.configuredOrigin ? hostOf(r.configuredOrigin) : null].filter(Boolean);
    if (!from || !allowed.includes(from)) return { ok: false, reason: `cross-site request from ${r.origin} refused` };
    return { ok: true };
  }
  if (r.secFetchSite !== null) {
    if (r.secFetchSite === 'same-origin' || r.secFetchSite === 'none') return { ok: true };
    return { ok: false, reason: `cross-site request (${r.secFetchSite}) refused` };
  }
  if (api) return { ok: true };
  return { ok: false, reason: 'a form post without an Origin header is refused' };
}

/**
 * Whether the visitor reached us over https (for the Secure cookie flag): ORIGIN says so when
 * set; else the scheme the browser names in Origin or Referer. adapter-node cannot know it
 * behind a proxy and assumes https, which would make the cookie unusable over plain http.
 */
export function visitorUsesHttps(headers: Headers, configuredOrigin?: string): boolean {
  const source = configuredOrigin ?? headers.get('origin') ?? headers.get('referer') ?? '';
  return source.toLowerCase().startsWith('https:');
}
