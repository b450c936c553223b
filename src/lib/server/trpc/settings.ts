import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { ExclusionError } from '../../relay/policy.js';
import { deliveryStatus } from '../status.js';
import { ipViewEnabled, setIpView } from '../web-settings.js';
import { adminProcedure, router } from './init.js';

const OUTBOX_PREVIEW_BYTES = 256 * 1024;

export const settings = router({
  get: adminProcedure.query(async ({ ctx }) => {
    const { app } = ctx;
    const [holdSeconds, ipView, delivery] = await Promise.all([
      app.relay.policy.holdSeconds(),
      ipViewEnabled(app.database.db),
      deliveryStatus(app.database.db, app.config),
    ]);
    return {
      holdSeconds,
      ipView,
      relayNetworks: app.config.smtp.relayNetworks.map((n) => n.text),
      historyDays: app.config.historyDays,
      retryWindowSeconds: app.config.retryWindowSeconds,
      smtp: {
        port: app.config.smtp.port,
        smtpsPort: app.config.smtp.smtpsPort ?? null,
        authMode: app.config.authMode,
        /** So that a mailer can be told which certificate to trust. */
        tls: app.relay.tls.info ? { fingerprint: app.relay.tls.info.fingerprint, selfSigned: app.relay.tls.info.selfSigned } : null,
      },
      ...delivery,
    };
  }),

  /** The hold time applies to mail accepted from now on; held mail keeps its due time. */
  update: adminProcedure
    .input(z.object({ holdSeconds: z.number().int().min(30).max(600).optional(), ipView: z.boolean().optional() }))
    .mutation(async ({ ctx, input }) => {
      try {
        if (input.holdSeconds !== undefined) await ctx.app.relay.policy.setHoldSeconds(input.holdSeconds);
      } catch (err) {
        if (err instanceof ExclusionError) throw new TRPCError({ code: 'BAD_REQUEST', message: err.message });
        throw err;
      }
      if (input.ipView !== undefined) await setIpView(ctx.app.database.db, input.ipView);
      return { holdSeconds: await ctx.app.relay.policy.holdSeconds(), ipView: await ipViewEnabled(ctx.app.database.db) };
    }),

  /** Mail delivered into the built-in outbox (when no UPSTREAM_URL is set), latest first. */
  outbox: adminProcedure.input(z.object({ before: z.number().int().positive().optional() }).optional()).query(async ({ ctx, input }) => {
    return ctx.app.relay.api.outbox(100, input?.before);
  }),

  /** The start of one outbox message as text (its raw source; shown as text, never rendered). */
  outboxMessage: adminProcedure.input(z.object({ id: z.string().min(1).max(100) })).query(async ({ ctx, input }) => {
    const raw = await ctx.app.relay.api.outboxMessage(input.id);
    if (!raw) throw new TRPCError({ code: 'NOT_FOUND', message: 'no such outbox message' });
    return { source: new TextDecoder('utf-8').decode(raw.subarray(0, OUTBOX_PREVIEW_BYTES)), truncated: raw.length > OUTBOX_PREVIEW_BYTES, size: raw.length };
  }),
});
