import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { EndpointError } from '../push/endpoint.js';
import { publicProcedure, router, userProcedure } from './init.js';

const subscription = z.object({
  endpoint: z.string().max(2048),
  keys: z.object({ p256dh: z.string().max(200), auth: z.string().max(100) }),
  label: z.string().max(200).optional(),
});

/** The device's part of push: the server's key, and (un)subscribing this device; the device list. */
export const push = router({
  publicKey: publicProcedure.query(({ ctx }) => ({ publicKey: ctx.app.push.publicKey })),

  subscribe: userProcedure.input(subscription).mutation(async ({ ctx, input }) => {
    try {
      return { id: await ctx.app.push.subscriptions.save(ctx.user.id, input) };
    } catch (err) {
      if (err instanceof EndpointError) throw new TRPCError({ code: 'BAD_REQUEST', message: err.message });
      throw err;
    }
  }),

  unsubscribe: userProcedure
    .input(z.object({ endpoint: z.string().max(2048) }))
    .mutation(async ({ ctx, input }) => ({ removed: await ctx.app.push.subscriptions.removeEndpoint(ctx.user.id, input.endpoint) })),

  devices: userProcedure.query(({ ctx }) => ctx.app.push.subscriptions.devices(ctx.user.id)),

  removeDevice: userProcedure
    .input(z.object({ id: z.number().int().positive() }))
    .mutation(async ({ ctx, input }) => ({ removed: await ctx.app.push.subscriptions.remove(ctx.user.id, input.id) })),
});
