import type { RequestEvent } from '@sveltejs/kit';
import { initTRPC, TRPCError } from '@trpc/server';
import type { App } from '../app.js';
import { getApp } from '../app.js';
import type { Scope } from '../../relay/state.js';
import { normalizeIp } from '../../relay/networks.js';
import { ipViewEnabled } from '../web-settings.js';
import { readSession, SESSION_COOKIE } from '../auth/sessions.js';

/**
 * tRPC for mailhold: one context per request (who asks, from where, and which mail they may
 * see), and three kinds of procedure: public, logged-in user (or IP-view visitor where noted),
 * admin. Procedures stay thin: validate the input with zod, call the domain once.
 */

export interface ContextUser {
  id: number;
  email: string;
  isAdmin: boolean;
}

export interface Context {
  app: App;
  user: ContextUser | null;
  ip: string;
  /** The mail this visitor may see and act on; null when none. */
  scope: Scope | null;
  /**
   * Whether this visitor may still see what `scope` shows (the session is alive, the rights
   * unchanged), for views that outlive the request. Absent for callers without a session.
   */
  stillAllowed?: () => Promise<boolean>;
}

/** Which mail a visitor may see: an admin all, a user their own, an IP-view visitor their IP's. */
export async function scopeFor(app: App, user: ContextUser | null, ip: string): Promise<Scope | null> {
  if (user) return user.isAdmin ? { kind: 'all' } : { kind: 'user', userId: user.id };
  if (ip && app.relay.policy.isRelayClient(ip) && (await ipViewEnabled(app.database.db))) return { kind: 'ip', ip };
  return null;
}

export async function makeContext(app: App, user: ContextUser | null, ip: string): Promise<Context> {
  return { app, user, ip, scope: await scopeFor(app, user, ip) };
}

export function clientIp(event: RequestEvent): string {
  const raw = event.getClientAddress();
  return normalizeIp(raw) ?? raw;
}

export async function createContext(event: RequestEvent): Promise<Context> {
  const app = await getApp();
  const ip = clientIp(event);
  const context = await makeContext(app, event.locals.user, ip);
  const token = event.cookies.get(SESSION_COOKIE);
  context.stillAllowed = async () => {
    const user = token ? await readSession(app.database.db, token) : null;
    return sameScope(await scopeFor(app, user, ip), context.scope);
  };
  return context;
}

function sameScope(a: Scope | null, b: Scope | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.kind === 'user' && b.kind === 'user') return a.userId === b.userId;
  if (a.kind === 'ip' && b.kind === 'ip') return a.ip === b.ip;
  return a.kind === b.kind;
}

const t = initTRPC.context<Context>().create({
  sse: {
    // A comment line now and then keeps proxies from closing a quiet stream.
    ping: { enabled: true, intervalMs: 15_000 },
    client: { reconnectAfterInactivityMs: 30_000 },
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure;

/** A logged-in user; `ctx.user` is non-null. */
export const userProcedure = t.procedure.use(({ ctx, next }) => {
  if (!ctx.user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'log in first' });
  return next({ ctx: { ...ctx, user: ctx.user, scope: ctx.scope! } });
});

/** Anyone who may see some mail: a user, or a visitor through the IP view. */
export const viewerProcedure = t.procedure.use(({ ctx, next }) => {
  if (!ctx.scope) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'log in first' });
  return next({ ctx: { ...ctx, scope: ctx.scope } });
});

export const adminProcedure = userProcedure.use(({ ctx, next }) => {
  if (!ctx.user.isAdmin) throw new TRPCError({ code: 'FORBIDDEN', message: 'for administrators only' });
  return next({ ctx });
});
