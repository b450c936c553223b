import { pickLang } from '$lib/push/texts';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = ({ request }) => ({ lang: pickLang(request.headers.get('accept-language')) });
