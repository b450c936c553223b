import { json } from '@sveltejs/kit';
import { getApp } from '$lib/server/app';

/** For load balancers and monitoring: answers once the relay is up. */
export async function GET() {
  const app = await getApp();
  return json({ ok: true, smtp: app.relay.smtpAddress?.port ?? null, db: app.database.kind }, { headers: { 'cache-control': 'no-store' } });
}
