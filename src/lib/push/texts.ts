/**
 * The words of the push feature in both languages: the notification (service worker), the result
 * of an action (server), the switch and the device list (pages).
 */
export type Lang = 'ja' | 'en';

export function pickLang(preferred: readonly string[] | string | null | undefined): Lang {
  const list = typeof preferred === 'string' ? preferred.split(',') : (preferred ?? []);
  for (const item of list) {
    const tag = item.trim().toLowerCase();
    if (tag.startsWith('ja')) return 'ja';
    if (tag.startsWith('en')) return 'en';
  }
  return 'en';
}

export type ResultKey =
  | 'discarded'
  | 'sentNow'
  | 'tooLateSent'
  | 'alreadyDiscarded'
  | 'alreadyGoing'
  | 'notFound'
  | 'used'
  | 'expired'
  | 'invalid'
  | 'failed';

const en = {
  held: (subject: string) => `Held: ${subject}`,
  heldBody: (to: string, at: string) => `→ ${to}\nsends at ${at}`,
  more: (n: number) => `+${n} more`,
  noSubject: '(no subject)',
  discard: 'Discard',
  sendNow: 'Send now',
  left: { sent: 'Sent', discarded: 'Discarded', failed: 'Failed' } as Record<'sent' | 'discarded' | 'failed', string>,
  result: {
    discarded: 'Discarded — it will not be sent',
    sentNow: 'Sending now',
    tooLateSent: 'Too late — already sent',
    alreadyDiscarded: 'Already discarded',
    alreadyGoing: 'Already on its way',
    notFound: 'This mail is not there any more',
    used: 'This button was used already; nothing changed',
    expired: 'Too late — the hold has ended',
    invalid: 'Not a valid action',
    failed: 'Could not reach mailhold; try again from the app',
  } as Record<ResultKey, string>,
  switchLabel: 'Notify me on this device',
  state: {
    unsupported: 'This browser cannot receive notifications',
    denied: 'Notifications are blocked for this site in the browser settings',
    off: 'Off',
    on: 'On — held mail shows up on this device',
    working: 'One moment…',
    error: 'Could not change the setting',
    insecure: 'Notifications need https',
  },
  devices: 'Devices that get notifications',
  noDevices: 'No device gets notifications yet.',
  remove: 'Remove',
  added: 'added',
  lastPush: 'last notification',
  never: 'never',
  failures: 'failed attempts',
  thisDevice: 'this device',
  account: 'Account',
  loginNeeded: 'Log in to see your devices.',
  offline: 'You are offline. mailhold needs the network to show and change held mail.',
};

type Texts = typeof en;

const ja: Texts = {
  held: (subject) => `保留中: ${subject}`,
  heldBody: (to, at) => `→ ${to}\n${at} に送信`,
  more: (n) => `他 ${n} 件`,
  noSubject: '(件名なし)',
  discard: '破棄',
  sendNow: '今すぐ送信',
  left: { sent: '送信しました', discarded: '破棄しました', failed: '送信できませんでした' },
  result: {
    discarded: '破棄しました — 送信されません',
    sentNow: '今すぐ送信します',
    tooLateSent: '間に合いませんでした — 送信済みです',
    alreadyDiscarded: 'すでに破棄されています',
    alreadyGoing: 'すでに送信中です',
    notFound: 'このメールはもうありません',
    used: 'このボタンは使用済みです。何も変わっていません',
    expired: '間に合いませんでした — 保留時間が終わりました',
    invalid: '無効な操作です',
    failed: 'mailhold に接続できませんでした。アプリから操作してください',
  },
  switchLabel: 'この端末に通知する',
  state: {
    unsupported: 'このブラウザは通知を受け取れません',
    denied: 'ブラウザの設定でこのサイトの通知がブロックされています',
    off: 'オフ',
    on: 'オン — 保留中のメールがこの端末に通知されます',
    working: 'お待ちください…',
    error: '設定を変更できませんでした',
    insecure: '通知には https が必要です',
  },
  devices: '通知を受け取る端末',
  noDevices: '通知を受け取る端末はまだありません。',
  remove: '削除',
  added: '登録',
  lastPush: '最後の通知',
  never: 'なし',
  failures: '失敗した回数',
  thisDevice: 'この端末',
  account: 'アカウント',
  loginNeeded: '端末の一覧を見るにはログインしてください。',
  offline: 'オフラインです。保留中のメールの表示と操作にはネットワークが必要です。',
};

export function texts(lang: Lang): Texts {
  return lang === 'ja' ? ja : en;
}
