/// <reference lib="webworker" />
import { ACTION_PATH, type HeldMessage, type PushMessage } from '$lib/push/message';
import { pickLang, texts, type Lang } from '$lib/push/texts';

/**
 * Notifications of held mail. A "held" push shows the mail with Discard and Send now; its tag is
 * the mail id, so the push sent when the mail leaves, and the result of a button, replace it.
 * A button posts its token to the action endpoint (no session needed, it works from the lock
 * screen); a tap elsewhere opens the mail.
 */
interface HeldData {
  id: string;
  url: string;
  subject: string;
  dueAt: number;
  tokens: HeldMessage['tokens'];
}

const ICON = '/icons/icon-192.png';
const BADGE = '/icons/badge-96.png';

function lang(sw: ServiceWorkerGlobalScope): Lang {
  return pickLang(sw.navigator.languages);
}

function clockTime(at: number, l: Lang): string {
  return new Date(at).toLocaleTimeString(l === 'ja' ? 'ja-JP' : 'en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export async function showPush(sw: ServiceWorkerGlobalScope, data: PushMessageData | null): Promise<void> {
  const l = lang(sw);
  const t = texts(l);
  let message: PushMessage | undefined;
  try {
    message = data?.json() as PushMessage | undefined;
  } catch {
    message = undefined;
  }
  if (!message || message.v !== 1) {
    // A push must always show something (userVisibleOnly).
    await sw.registration.showNotification('mailhold', { icon: ICON, badge: BADGE });
    return;
  }
  const subject = message.subject || t.noSubject;
  if (message.kind === 'held') {
    const to = message.to.join(', ') + (message.more > 0 ? ` ${t.more(message.more)}` : '');
    const held: HeldData = { id: message.id, url: message.url, subject, dueAt: message.dueAt, tokens: message.tokens };
    await sw.registration.showNotification(t.held(subject), {
      body: t.heldBody(to, clockTime(message.dueAt, l)),
      tag: message.id,
      requireInteraction: true,
      timestamp: Date.now(),
      icon: ICON,
      badge: BADGE,
      data: held,
      actions: [
        { action: 'discard', title: t.discard },
        { action: 'send', title: t.sendNow },
      ],
    } as NotificationOptions);
    return;
  }
  await sw.registration.showNotification(`${t.left[message.outcome]}: ${subject}`, {
    tag: message.id,
    silent: true,
    icon: ICON,
    badge: BADGE,
    data: { id: message.id, url: message.url, subject },
  });
}

/** Discard or Send now from the notification: post the token, show what happened. */
export async function runAction(sw: ServiceWorkerGlobalScope, notification: Notification, action: 'discard' | 'send'): Promise<void> {
  const data = notification.data as Partial<HeldData> | null;
  const t = texts(lang(sw));
  const token = data?.tokens?.[action];
  if (!data?.id || !token) return openMail(sw, notification);
  let text: string;
  try {
    const response = await fetch(ACTION_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
      credentials: 'omit',
      cache: 'no-store',
    });
    const result = (await response.json()) as { text?: string };
    text = result.text ?? t.result.failed;
  } catch {
    text = t.result.failed;
  }
  await sw.registration.showNotification(text, {
    body: data.subject ?? '',
    tag: data.id,
    icon: ICON,
    badge: BADGE,
    data: { id: data.id, url: data.url, subject: data.subject },
  });
}

/** A tap on the notification: the mail in an open window of the app, else a new one. */
export async function openMail(sw: ServiceWorkerGlobalScope, notification: Notification): Promise<void> {
  const url = new URL((notification.data as { url?: string } | null)?.url ?? '/mail', sw.location.origin).href;
  const windows = await sw.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const open = windows.find((w) => new URL(w.url).origin === sw.location.origin);
  if (open) {
    await open.navigate(url).catch(() => undefined);
    await open.focus();
    return;
  }
  await sw.clients.openWindow(url);
}
