import { redirect, type RequestHandler } from '@sveltejs/kit';
import { getApp } from '$lib/server/app';
import { visitorUsesHttps } from '$lib/server/auth/csrf';
import { endSession } from '$lib/server/auth/sessions';

/** A form post (its origin checked in the hook), never a GET: a link on another site cannot log you out. */
export const POST: RequestHandler = async (event) => {
  const app = await getApp();
  await endSession(event, app.database.db, visitorUsesHttps(event.request.headers, app.config.web.origin));
  redirect(303, '/login');
};
