import type { RequestEvent } from '@sveltejs/kit';
import { getApp } from '../app.js';
import { clientIp, createCallerFactory, makeContext } from './init.js';
import { appRouter } from './router.js';

const factory = createCallerFactory(appRouter);

/** The API called in-process (page loads, tests), with the same context as over HTTP. */
export async function callerFor(event: RequestEvent) {
  const ctx = await makeContext(await getApp(), event.locals.user, clientIp(event));
  return { ctx, api: factory(ctx) };
}

export const createCaller = factory;
