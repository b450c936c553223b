import { redirect, type RequestHandler } from '@sveltejs/kit';
import { isLocale } from '$lib/i18n';

/** The language switch: remembers the choice for a year and goes back to the page it came from. */
export const POST: RequestHandler = async ({ request, cookies }) => {
  const form = await request.formData();
  const lang = form.get('lang');
  const back = String(form.get('back') ?? '/');
  if (isLocale(lang)) {
    // Not a secret: no Secure flag, so that it works over plain http on a LAN as well.
    cookies.set('lang', lang, { path: '/', httpOnly: false, sameSite: 'lax', secure: false, maxAge: 365 * 24 * 3600 });
  }
  redirect(303, back.startsWith('/') && !back.startsWith('//') && !back.startsWith('/\\') ? back : '/');
};
