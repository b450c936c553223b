import { json, text, type Handle, type ServerInit } from '@sveltejs/kit';
import { getApp } from '$lib/server/app';
import { checkCrossSite, visitorUsesHttps } from '$lib/server/auth/csrf';
import { loadSession } from '$lib/server/auth/sessions';
import { pickLocale } from '$lib/i18n';

/** A refusal in tRPC's own error shape (one per call of a batch), so its client reports FORBIDDEN. */
function forbiddenForTrpc(url: URL, message: string): Response {
  const error = { error: { message, code: -32003, data: { code: 'FORBIDDEN', httpStatus: 403 } } };
  const calls = url.pathname.slice('/api/trpc/'.length).split(',').length;
  return json(url.searchParams.get('batch') === '1' ? Array.from({ length: calls }, () => error) : error, { status: 403 });
}

/** The relay starts with the web server, once, before the first request is answered. */
export const init: ServerInit = async () => {
  await getApp();
};

/**
 * Every request: refuse cross-site changes, find who is asking (session cookie) and in which
 * language, and add the security headers that the CSP (svelte.config.js) does not cover.
 */
export const handle: Handle = async ({ event, resolve }) => {
  const app = await getApp();
  const headers = event.request.headers;
  const verdict = checkCrossSite({
    method: event.request.method,
    path: event.url.pathname,
    contentType: headers.get('content-type'),
    origin: headers.get('origin'),
    secFetchSite: headers.get('sec-fetch-site'),
    host: headers.get('host'),
    configuredOrigin: app.config.web.origin,
  });
  if (!verdict.ok) {
    app.log.warn({ path: event.url.pathname, reason: verdict.reason }, 'cross-site request refused');
    return event.url.pathname.startsWith('/api/trpc') ? forbiddenForTrpc(event.url, verdict.reason) : text(verdict.reason, { status: 403 });
  }
  await loadSession(event, app.database.db, visitorUsesHttps(headers, app.config.web.origin));
  event.locals.locale = pickLocale(event.cookies.get('lang'), headers.get('accept-language'));
  const response = await resolve(event, {
    transformPageChunk: ({ html }) => html.replace('%lang%', event.locals.locale),
  });
  response.headers.set('x-content-type-options', 'nosniff');
  response.headers.set('referrer-policy', 'same-origin');
  response.headers.set('x-frame-options', 'DENY');
  return response;
};
