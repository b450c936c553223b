import type { RequestHandler } from '@sveltejs/kit';
import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import { getApp } from '$lib/server/app';
import { createContext } from '$lib/server/trpc/init';
import { appRouter } from '$lib/server/trpc/router';

/** tRPC over HTTP (queries GET, mutations JSON POST) and SSE (subscriptions). Cross-site checks run in the hook. */
const handler: RequestHandler = async (event) => {
  const app = await getApp();
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
