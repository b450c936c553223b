import { redirect } from '@sveltejs/kit';
import type { PageServerLoad } from './$types';

/** The deep link of a notification: the hold page, scrolled to the mail. */
export const load: PageServerLoad = ({ params }) => {
  redirect(307, `/mail#mail-${encodeURIComponent(params.id)}`);
};
