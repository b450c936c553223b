import { getApp } from '$lib/server/app';

export async function load() {
  const app = await getApp();
  const page = await app.relay.api.list({ kind: 'all' }, { view: 'active', limit: 100 });
  return { items: page.items.map((m) => ({ id: m.id, subject: m.subject, recipients: m.recipients, dueAt: m.dueAt, state: m.state })) };
}
