import type { ServerInit } from '@sveltejs/kit';
import { getApp } from '$lib/server/app';

/** The relay starts with the web server, once, before the first request is answered. */
export const init: ServerInit = async () => {
  await getApp();
};
