import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import type { MailDetail, MailListItem } from '../../relay/api.js';
import type { ActionResult, Actor, Scope } from '../../relay/state.js';
import { onSessionsChanged } from '../auth/session-changes.js';
import { watchMail } from '../live.js';
import { textPreview } from '../preview.js';
import { router, viewerProcedure, type Context } from './init.js';

const PREVIEW_BYTES = 256 * 1024;
// Any id is accepted: one that is malformed, unknown or someone else's answers NOT_FOUND alike.
const id = z.object({ id: z.string().min(1).max(100) });
const bulk = z.object({ ids: z.array(z.string().max(100)).max(10_000).optional() }).optional();

/** The list item a viewer gets; an IP-view visitor is not told which account owns a mail. */
export type MailView = MailListItem;

function view<T extends MailListItem>(scope: Scope, m: T): T {
  return scope.kind === 'ip' ? { ...m, owner: null, authUser: null } : m;
}

function actor(ctx: Context): Actor {
  return { by: ctx.user?.isAdmin ? 'admin' : 'page', userId: ctx.user?.id ?? null, ip: ctx.ip };
}

/** Done and too-late are answers; a mail that is not there (or not yours) is NOT_FOUND, alike. */
function answer(result: ActionResult): Exclude<ActionResult, { outcome: 'not_found' }> {
  if (result.outcome === 'not_found') throw new TRPCError({ code: 'NOT_FOUND', message: 'no such mail' });
  return result;
}

function listItem(d: MailDetail): MailListItem {
  const { recipientStates: _r, headers: _h, ...item } = d;
  return item;
}

export type MailChange =
  | { type: 'MailHeld'; id: string; state: 'held'; at: number; item: MailListItem | null }
  | { type: Exclude<import('../../relay/events.js').MailEvent['type'], 'MailHeld'>; id: string; state: MailListItem['state']; at: number; dueAt?: number; reply?: string; by?: string };

export const mail = router({
  /** Held and on-its-way mail (`active`, earliest due first) or the history (latest first). */
  list: viewerProcedure
    .input(z.object({ view: z.enum(['active', 'history']).default('active'), cursor: z.string().max(100).optional(), limit: z.number().int().min(1).max(500).optional() }))
    .query(async ({ ctx, input }) => {
      const page = await ctx.app.relay.api.list(ctx.scope, input);
      return { ...page, items: page.items.map((m) => view(ctx.scope, m)), now: Date.now() };
    }),

  /** What the page header shows: the visitor's IP, the hold time, how many mails are held. */
  status: viewerProcedure.query(async ({ ctx }) => {
    const [holdSeconds, held] = await Promise.all([ctx.app.relay.policy.holdSeconds(), ctx.app.relay.api.countHeld(ctx.scope)]);
    return { ip: ctx.ip, holdSeconds, held, now: Date.now() };
  }),

  /** One mail with all recipients, headers and a text preview of the body. */
  get: viewerProcedure.input(id).query(async ({ ctx, input }) => {
    const detail = await ctx.app.relay.api.get(ctx.scope, input.id);
    if (!detail) throw new TRPCError({ code: 'NOT_FOUND', message: 'no such mail' });
    const raw = await ctx.app.relay.api.rawStart(ctx.scope, input.id, PREVIEW_BYTES);
    const preview = raw ? await textPreview(raw, raw.length < PREVIEW_BYTES && raw.length >= detail.size) : null;
    return { ...view(ctx.scope, detail), preview, now: Date.now() };
  }),

  discard: viewerProcedure.input(id).mutation(async ({ ctx, input }) => answer(await ctx.app.relay.api.discard(ctx.scope, input.id, actor(ctx)))),

  sendNow: viewerProcedure.input(id).mutation(async ({ ctx, input }) => answer(await ctx.app.relay.api.sendNow(ctx.scope, input.id, actor(ctx)))),

  /** Every held mail the viewer may see, or only `ids` of them (what the confirmation counted). */
  discardAll: viewerProcedure.input(bulk).mutation(async ({ ctx, input }) => {
    const ids = await ctx.app.relay.api.discardAll(ctx.scope, actor(ctx), input?.ids);
    return { count: ids.length, ids };
  }),

  sendAll: viewerProcedure.input(bulk).mutation(async ({ ctx, input }) => {
    const ids = await ctx.app.relay.api.sendAll(ctx.scope, actor(ctx), input?.ids);
    return { count: ids.length, ids };
  }),

  /** Live changes to the viewer's mail, over SSE; ends when the client leaves or the server stops. */
  changes: viewerProcedure.subscription(async function* ({ ctx, signal }) {
    // The stream ends when its session does (logout, expiry, a new password, a removed user) or
    // the viewer's rights change: at once for changes made here, within a minute otherwise.
    const revoked = new AbortController();
    const check = () => {
      void ctx.stillAllowed?.().then(
        (allowed) => allowed || revoked.abort(),
        () => {}, // the database is away for a moment: keep the stream, check again later
      );
    };
    const timer = setInterval(check, 60_000);
    const stopListening = onSessionsChanged(check);
    const stop = AbortSignal.any([ctx.app.shutdown, revoked.signal, ...(signal ? [signal] : [])]);
    try {
      yield* follow(ctx, stop);
    } finally {
      clearInterval(timer);
      stopListening();
    }
  }),
});

type ViewerContext = Context & { scope: Scope };

async function* follow(ctx: ViewerContext, stop: AbortSignal): AsyncGenerator<MailChange> {
  for await (const e of watchMail(ctx.app.relay.bus, ctx.scope, stop)) {
    if (e.type === 'MailHeld') {
      const detail = await ctx.app.relay.api.get(ctx.scope, e.id);
      yield { type: e.type, id: e.id, state: 'held', at: e.at, item: detail ? view(ctx.scope, listItem(detail)) : null } satisfies MailChange as MailChange;
    } else {
      yield {
        type: e.type,
        id: e.id,
        state: e.state,
        at: e.at,
        ...('dueAt' in e ? { dueAt: e.dueAt } : {}),
        ...('reply' in e ? { reply: e.reply } : {}),
        ...('by' in e && e.by ? { by: e.by } : {}),
      } satisfies MailChange as MailChange;
    }
  }
}
