import { initTRPC, TRPCError } from '@trpc/server';
import type { App } from '../app.js';
import type { Scope } from '../../relay/state.js';

/** The caller of a procedure: the app, the logged-in user (if any), the client IP and what they may see. */
export interface Context {
  app: App;
  user: { id: number; email: string; isAdmin: boolean } | null;
  ip: string;
  scope: Scope | null;
}

const t = initTRPC.context<Context>().create();

export const router = t.router;
export const publicProcedure = t.procedure;

export const userProcedure = t.procedure.use(({ ctx, next }) => {
  if (!ctx.user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'log in first' });
  return next({ ctx: { ...ctx, user: ctx.user } });
});

export const adminProcedure = userProcedure.use(({ ctx, next }) => {
  if (!ctx.user.isAdmin) throw new TRPCError({ code: 'FORBIDDEN', message: 'for administrators only' });
  return next({ ctx });
});
