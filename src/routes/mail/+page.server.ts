import { redirect } from '@sveltejs/kit';
import { callerFor } from '$lib/server/trpc/caller';
import type { PageServerLoad } from './$types';

/** The first page of held mail, rendered on the server; the page then stays live on its own. */
export const load: PageServerLoad = async (event) => {
  const { ctx, api } = await callerFor(event);
  if (!ctx.scope) redirect(303, '/login?next=/mail');
  const [status, list] = await Promise.all([api.mail.status(), api.mail.list({ view: 'active', limit: 100 })]);
  return { status, list, isAdmin: ctx.user?.isAdmin ?? false };
};
