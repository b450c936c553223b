/// <reference types="@sveltejs/kit" />
/// <reference no-default-lib="true"/>
/// <reference lib="esnext" />
/// <reference lib="webworker" />
import { activate, install, respond } from './shell';
import { openMail, runAction, showPush } from './notifications';

/** Only wiring: the app shell (offline) and the notifications of held mail. */
const sw = self as unknown as ServiceWorkerGlobalScope;

sw.addEventListener('install', (event) => {
  event.waitUntil(install().then(() => sw.skipWaiting()));
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(activate().then(() => sw.clients.claim()));
});

sw.addEventListener('fetch', (event) => {
  const response = respond(event.request);
  if (response) event.respondWith(response);
});

sw.addEventListener('push', (event) => {
  event.waitUntil(showPush(sw, event.data));
});

sw.addEventListener('notificationclick', (event) => {
  const { notification, action } = event;
  notification.close();
  event.waitUntil(action === 'discard' || action === 'send' ? runAction(sw, notification, action) : openMail(sw, notification));
});
