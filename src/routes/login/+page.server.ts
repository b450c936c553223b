import { fail, redirect } from '@sveltejs/kit';
import { getApp } from '$lib/server/app';
import { visitorUsesHttps } from '$lib/server/auth/csrf';
import { startSession } from '$lib/server/auth/sessions';
import { clientIp } from '$lib/server/trpc/init';
import { LoginUnavailableError, webLogin } from '$lib/server/auth/login';
import type { Actions, PageServerLoad } from './$types';

/** Only a path on this site: never send a freshly logged-in user somewhere else. */
function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/mail';
}

export const load: PageServerLoad = ({ locals, url }) => {
  if (locals.user) redirect(303, safeNext(url.searchParams.get('next')));
};

export const actions: Actions = {
  default: async (event) => {
    const app = await getApp();
    const form = await event.request.formData();
    const email = String(form.get('email') ?? '').trim().toLowerCase().slice(0, 320);
    const password = String(form.get('password') ?? '').slice(0, 1024);
    const ip = clientIp(event);
    // The same counters as SMTP AUTH: failures on either path count together.
    const keys = [`ip:${ip}`, `user:${email}`];
    const wait = app.relay.throttle.retryAfter(keys);
    if (wait > 0) return fail(429, { email, error: 'throttled' as const, seconds: Math.ceil(wait / 1000) });
    // The same check as SMTP AUTH: local accounts, or the provider's login in AUTH_MODE=upstream.
    let user;
    try {
      user = email && password ? await webLogin(app, email, password) : undefined;
    } catch (err) {
      if (!(err instanceof LoginUnavailableError)) throw err;
      // The provider cannot be asked just now: not the user's fault, not counted as a failure.
      return fail(503, { email, error: 'unavailable' as const, seconds: 0 });
    }
    if (!user) {
      app.relay.throttle.fail(keys);
      app.log.info({ ip, user: email }, 'web login failed');
      return fail(400, { email, error: 'failed' as const, seconds: 0 });
    }
    app.relay.throttle.succeed([`user:${email}`]);
    await startSession(event, app.database.db, user, ip, visitorUsesHttps(event.request.headers, app.config.web.origin));
    app.log.info({ ip, user: user.email }, 'web login');
    redirect(303, safeNext(event.url.searchParams.get('next')));
  },
};
