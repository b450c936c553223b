import { redirect } from '@sveltejs/kit';
import { getApp } from '$lib/server/app';
import { callerFor } from '$lib/server/trpc/caller';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
  const { ctx, api } = await callerFor(event);
  if (!ctx.scope) redirect(303, '/login?next=/mail/history');
  const cursor = event.url.searchParams.get('after') ?? undefined;
  const list = await api.mail.list({ view: 'history', limit: 100, cursor });
  return { list, historyDays: (await getApp()).config.historyDays, isAdmin: ctx.user?.isAdmin ?? false, paged: Boolean(cursor) };
};
