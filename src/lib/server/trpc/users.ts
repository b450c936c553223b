import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { deleteUserSessions } from '../auth/sessions.js';
import { addUser, getUser, listUsers, removeUser, setAdmin, setPassword, UserError } from '../users.js';
import { adminProcedure, router } from './init.js';

async function domain<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UserError) throw new TRPCError({ code: 'BAD_REQUEST', message: err.message });
    throw err;
  }
}

const userId = z.object({ id: z.number().int() });

export const users = router({
  list: adminProcedure.query(({ ctx }) => listUsers(ctx.app.database.db)),

  add: adminProcedure
    .input(z.object({ email: z.string().min(3).max(254), password: z.string().max(1024), isAdmin: z.boolean().default(false) }))
    .mutation(({ ctx, input }) =>
      domain(async () => {
        const user = await addUser(ctx.app.database.db, input.email, input.password, input.isAdmin);
        // Mail sent without AUTH from this address belongs to the new user from now on.
        await ctx.app.relay.policy.refresh();
        return user;
      }),
    ),

  /** A new password also ends the user's web sessions. */
  setPassword: adminProcedure.input(userId.extend({ password: z.string().max(1024) })).mutation(async ({ ctx, input }) => {
    const db = ctx.app.database.db;
    if (!(await getUser(db, input.id))) throw new TRPCError({ code: 'NOT_FOUND', message: 'no such user' });
    await domain(() => setPassword(db, input.id, input.password));
    await deleteUserSessions(db, input.id);
    return { id: input.id };
  }),

  setAdmin: adminProcedure.input(userId.extend({ isAdmin: z.boolean() })).mutation(async ({ ctx, input }) => {
    if (input.id === ctx.user.id && !input.isAdmin) throw new TRPCError({ code: 'BAD_REQUEST', message: 'you cannot take away your own admin rights' });
    const db = ctx.app.database.db;
    if (!(await getUser(db, input.id))) throw new TRPCError({ code: 'NOT_FOUND', message: 'no such user' });
    await setAdmin(db, input.id, input.isAdmin);
    return { id: input.id, isAdmin: input.isAdmin };
  }),

  remove: adminProcedure.input(userId).mutation(async ({ ctx, input }) => {
    if (input.id === ctx.user.id) throw new TRPCError({ code: 'BAD_REQUEST', message: 'you cannot remove yourself' });
    if (!(await removeUser(ctx.app.database.db, input.id))) throw new TRPCError({ code: 'NOT_FOUND', message: 'no such user' });
    await ctx.app.relay.policy.refresh();
    return { id: input.id };
  }),
});
