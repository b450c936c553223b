import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { EXCLUSION_KINDS } from '../db/schema.js';
import { ExclusionError } from '../../relay/policy.js';
import { adminProcedure, router } from './init.js';

export const exclusions = router({
  list: adminProcedure.query(({ ctx }) => ctx.app.relay.policy.listExclusions()),

  add: adminProcedure.input(z.object({ kind: z.enum(EXCLUSION_KINDS), value: z.string().min(1).max(320) })).mutation(async ({ ctx, input }) => {
    try {
      return await ctx.app.relay.policy.addExclusion(input.kind, input.value);
    } catch (err) {
      if (err instanceof ExclusionError) throw new TRPCError({ code: 'BAD_REQUEST', message: err.message });
      throw err;
    }
  }),

  remove: adminProcedure.input(z.object({ id: z.number().int() })).mutation(async ({ ctx, input }) => {
    if (!(await ctx.app.relay.policy.removeExclusion(input.id))) throw new TRPCError({ code: 'NOT_FOUND', message: 'no such exclusion' });
    return { id: input.id };
  }),
});
