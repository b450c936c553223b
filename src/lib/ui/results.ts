import type { ActionResult } from '../relay/state.js';
import { formatTime, type Translate } from '../i18n/index.js';

/** The sentence after an action on one mail: "Discarded: …" or "Too late — it was already sent at 10:42:17". */
export function actionMessage(t: Translate, action: 'discard' | 'sendNow', result: ActionResult, subject: string): { text: string; ok: boolean } {
  if (result.outcome === 'done') return { text: t(action === 'discard' ? 'result.discarded' : 'result.sent', { subject }), ok: true };
  if (result.outcome === 'not_found') return { text: t('result.notFound'), ok: false };
  const time = result.at ? formatTime(result.at) : '–';
  const key =
    result.state === 'sent' ? 'result.tooLate.sent' : result.state === 'failed' ? 'result.tooLate.failed' : result.state === 'discarded' ? 'result.tooLate.discarded' : 'result.tooLate.sending';
  return { text: t(key, { time }), ok: false };
}
