import { json } from '@sveltejs/kit';
import { getApp } from '$lib/server/app';
import type { ActResult } from '$lib/server/push/service';
import { pickLang, texts } from '$lib/push/texts';
import type { RequestHandler } from './$types';

/**
 * The buttons of a push notification post their token here (from the service worker, without a
 * session). The token is the whole authorisation: one action on one mail, once, until its due time.
 */
export const POST: RequestHandler = async ({ request, getClientAddress }) => {
  const lang = pickLang(request.headers.get('accept-language'));
  let token: unknown;
  try {
    token = ((await request.json()) as { token?: unknown }).token;
  } catch {
    token = undefined;
  }
  const app = await getApp();
  const result: ActResult = typeof token === 'string' ? await app.push.act(token, getClientAddress()) : { status: 400, key: 'invalid' };
  return json(
    { outcome: result.key, text: texts(lang).result[result.key], id: result.mailId ?? null, state: result.state ?? null },
    { status: result.status, headers: { 'cache-control': 'no-store' } },
  );
};
