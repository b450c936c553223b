import type { Handle, ServerInit } from '@sveltejs/kit';
import { getApp } from '$lib/server/app';
import { loadSession } from '$lib/server/auth/sessions';
import { pickLocale } from '$lib/i18n';

/** The relay starts with the web server, once, before the first request is answered. */
export const init: ServerInit = async () => {
  await getApp();
};

/** Who is asking (session cookie) and in which language; security headers on every answer. */
export const handle: Handle = async ({ event, resolve }) => {
  const app = await getApp();
  await loadSession(event, app.database.db);
  event.locals.locale = pickLocale(event.cookies.get('lang'), event.request.headers.get('accept-language'));
  const response = await resolve(event, {
    transformPageChunk: ({ html }) => html.replace('%lang%', event.locals.locale),
  });
  response.headers.set('x-content-type-options', 'nosniff');
  response.headers.set('referrer-policy', 'same-origin');
  response.headers.set('x-frame-options', 'DENY');
  return response;
};
