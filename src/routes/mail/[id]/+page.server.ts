import { error, redirect } from '@sveltejs/kit';
import { TRPCError } from '@trpc/server';
import { callerFor } from '$lib/server/trpc/caller';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
  const { ctx, api } = await callerFor(event);
  if (!ctx.scope) redirect(303, `/login?next=${encodeURIComponent(event.url.pathname)}`);
  try {
    return { mail: await api.mail.get({ id: event.params.id }), isAdmin: ctx.user?.isAdmin ?? false };
  } catch (err) {
    if (err instanceof TRPCError && err.code === 'NOT_FOUND') error(404, 'no such mail');
    throw err;
  }
};
