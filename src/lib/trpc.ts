import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '$lib/server/trpc/router';

/**
 * The typed API client of the pages: queries and mutations over HTTP (mutations as JSON POSTs,
 * which the server requires), `mail.changes` over Server-Sent Events.
 */
export function createClient(base = '') {
  const url = `${base}/api/trpc`;
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url }),
        false: httpBatchLink({ url }),
      }),
    ],
  });
}

export type Client = ReturnType<typeof createClient>;

let client: Client | undefined;

export function api(): Client {
  client ??= createClient();
  return client;
}

/** NOT_FOUND and the like, for a readable message on the page. */
export function errorCode(err: unknown): string | undefined {
  return err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
