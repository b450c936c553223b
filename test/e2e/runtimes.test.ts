import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';
import { startServer } from '../helpers/server.js';

let sink: Sink;
beforeAll(async () => {
  sink = await new Sink().start();
});
afterAll(async () => {
  await sink.close();
});

/** What a user does first: start it, send a mail, open the page, stop it. */
async function smoke(runtime: 'deno' | 'npm-start') {
  const server = await startServer({ runtime, env: { UPSTREAM_URL: sink.url().href, ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: 'admin-password' } });
  try {
    const res = await send({ port: server.smtpPort, subject: `smoke under ${runtime}` });
    expect(res.response).toMatch(/^250 2\.6\.0 Held as /);
    const health = await fetch(`${server.url}/healthz`);
    expect(await health.json()).toMatchObject({ ok: true, db: 'pglite' });
    const login = await fetch(`${server.url}/login`);
    expect(login.status).toBe(200);
    expect(await login.text()).toMatch(/name="password"/);
    const root = await fetch(`${server.url}/`, { redirect: 'manual' });
    expect([302, 303, 307]).toContain(root.status);
  } finally {
    expect(await server.stop()).toBe(0);
  }
  expect(server.output()).toMatch(/"msg":"mailhold stopped"/);
}

describe('the built server runs', () => {
  it('under Deno (deno run -A build/index.js)', () => smoke('deno'));
  it('through npm start (scripts/start.js)', () => smoke('npm-start'));
});
