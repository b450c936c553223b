import { redirect, type RequestHandler } from '@sveltejs/kit';
import { getApp } from '$lib/server/app';
import { endSession } from '$lib/server/auth/sessions';

/** A form post (SvelteKit checks its origin), never a GET: a link on another site cannot log you out. */
export const POST: RequestHandler = async (event) => {
  const app = await getApp();
  await endSession(event, app.database.db);
  redirect(303, '/login');
};
