/// <reference lib="webworker" />
import { build, files, version } from '$service-worker';

/**
 * The app shell: the built JS/CSS and the static files are cached at install, so the app opens
 * without a network; a page that cannot be fetched gets the offline page, which says so.
 * Everything else (pages, the API, the action endpoint) always goes to the network.
 */
const CACHE = `mailhold-shell-${version}`;
export const OFFLINE_PAGE = '/offline.html';
const ASSETS = new Set([...build, ...files]);

export async function install(): Promise<void> {
  const cache = await caches.open(CACHE);
  await cache.addAll([...ASSETS]);
}

export async function activate(): Promise<void> {
  for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
}

/** A response for requests the shell answers, or undefined to leave the request to the browser. */
export function respond(request: Request): Promise<Response> | undefined {
  if (request.method !== 'GET') return undefined;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return undefined;
  if (ASSETS.has(url.pathname)) return fromCache(url.pathname).then((r) => r ?? fetch(request));
  if (request.mode === 'navigate') {
    return fetch(request).catch(async () => (await fromCache(OFFLINE_PAGE)) ?? new Response('offline', { status: 503, headers: { 'content-type': 'text/plain' } }));
  }
  return undefined;
}

async function fromCache(path: string): Promise<Response | undefined> {
  const cache = await caches.open(CACHE);
  return cache.match(path);
}
