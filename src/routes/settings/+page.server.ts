import { error, redirect } from '@sveltejs/kit';
import { callerFor } from '$lib/server/trpc/caller';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
  const { ctx, api } = await callerFor(event);
  if (!ctx.user) redirect(303, '/login?next=/settings');
  if (!ctx.user.isAdmin) error(403, 'for administrators only');
  const [settings, exclusions, users] = await Promise.all([api.settings.get(), api.exclusions.list(), api.users.list()]);
  const outbox = settings.upstream ? null : await api.settings.outbox();
  return { settings, exclusions, users, outbox, me: ctx.user.id };
};
