/**
 * Cross-site request checks for the API. SvelteKit's built-in check covers only form posts
 * (urlencoded, multipart, text/plain); a tRPC mutation is a JSON POST, so it is checked here:
 *
 * - the content type must be application/json: a cross-site page cannot send that without a CORS
 *   preflight, which we never grant;
 * - a browser's Origin header (or, without one, Sec-Fetch-Site) must name this site: the
 *   request's own origin, or ORIGIN when mailhold runs behind a proxy.
 *
 * A request with neither header comes from a program, not a browser page, and no cookie of a
 * visitor rides along with it unasked.
 */
export interface CsrfInput {
  method: string;
  contentType: string | null;
  origin: string | null;
  secFetchSite: string | null;
  /** The origin of the URL the request came to. */
  selfOrigin: string;
  /** ORIGIN from the configuration, if any. */
  configuredOrigin?: string;
}

export type CsrfVerdict = { ok: true } | { ok: false; reason: string };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function checkCrossSite(r: CsrfInput): CsrfVerdict {
  if (SAFE_METHODS.has(r.method.toUpperCase())) return { ok: true };
  const type = (r.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') return { ok: false, reason: 'a mutation must be sent as application/json' };
  const allowed = new Set([r.selfOrigin, r.configuredOrigin].filter(Boolean).map((o) => new URL(o!).origin));
  if (r.origin !== null) {
    if (r.origin === 'null' || !allowed.has(r.origin)) return { ok: false, reason: `cross-site request from ${r.origin} refused` };
    return { ok: true };
  }
  if (r.secFetchSite !== null && r.secFetchSite !== 'same-origin' && r.secFetchSite !== 'none') {
    return { ok: false, reason: `cross-site request (${r.secFetchSite}) refused` };
  }
  return { ok: true };
}
