import type { RequestHandler } from '@sveltejs/kit';
import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import { getApp } from '$lib/server/app';
import { checkCrossSite } from '$lib/server/auth/csrf';
import { createContext } from '$lib/server/trpc/init';
import { appRouter } from '$lib/server/trpc/router';

const handler: RequestHandler = async (event) => {
  const app = await getApp();
  const verdict = checkCrossSite({
    method: event.request.method,
    contentType: event.request.headers.get('content-type'),
    origin: event.request.headers.get('origin'),
    secFetchSite: event.request.headers.get('sec-fetch-site'),
    selfOrigin: event.url.origin,
    configuredOrigin: app.config.web.origin,
  });
  if (!verdict.ok) {
    return new Response(JSON.stringify({ error: { message: verdict.reason, code: 'FORBIDDEN' } }), {
      status: 403,
      headers: { 'content-type': 'application/json' },
    });
  }
  return fetchRequestHandler({
    endpoint: '/api/trpc',
    req: event.request,
    router: appRouter,
    createContext: () => createContext(event),
    responseMeta: () => ({ headers: { 'cache-control': 'no-store' } }),
    onError: ({ error, path }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR') app.log.error({ err: error.cause ?? error, path }, 'api error');
    },
  });
};

export const GET = handler;
export const POST = handler;
