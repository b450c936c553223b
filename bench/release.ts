import { sendBulk, type BulkResult, type SinkRecord } from './children.js';
import { quantile, round } from './stats.js';
import { withUpstream } from './target.js';
import { atLeast, atMost, type Benchmark } from './types.js';

/**
 * Release on time (HOLD_SECONDS=30, the minimum). 10,000 mails sent as fast as 20 concurrent
 * sessions go; the sink (its own process) records when each arrives. Lateness = arrival at the
 * sink − the due time mailhold gave in its 250 reply ("sends at <ISO>"). Then a burst of 1,000
 * mails sent at once over 50 sessions, so that they fall due together (the spread of their due
 * times is reported): the rate at which they reach the sink, first to last arrival.
 */
const MANY = Number(process.env.BENCH_RELEASE_MAILS ?? 10_000);
const BURST = 1_000;

function lateness(sent: BulkResult, arrived: SinkRecord[]): number[] {
  const due = new Map(sent.mails.map((m) => [m.subject, m.dueAt ?? NaN]));
  return arrived.filter((r) => due.has(r.subject)).map((r) => r.at - due.get(r.subject)!);
}

const lastDue = (sent: BulkResult) => Math.max(...sent.mails.map((m) => m.dueAt ?? 0));
const firstDue = (sent: BulkResult) => Math.min(...sent.mails.map((m) => m.dueAt ?? Infinity));

export const release: Benchmark = {
  name: 'release',
  metrics: [
    { key: 'lateP99', label: 'Release: p99 of arrival − due (10,000)', target: '≤ 1 s', unit: 's', pass: atMost(1) },
    { key: 'burstRate', label: 'Release: 1,000 due together, arrival rate', target: '≥ 500 mails/s', unit: 'mails/s', pass: atLeast(500) },
    { key: 'burstDueSpread', label: '  spread of those 1,000 due times', target: '', unit: 's', pass: () => true },
  ],
  async run(db) {
    return withUpstream(db, async (target, sink) => {
      const port = target.server.smtpPort;
      const many = await sendBulk(port, MANY, 20, 'release');
      const arrived = (await sink.waitFor(MANY, lastDue(many) - Date.now() + 180_000)).filter((r) => r.subject.startsWith('release-'));
      const late = lateness(many, arrived);

      const burst = await sendBulk(port, BURST, 50, 'burst');
      const got = (await sink.waitFor(MANY + BURST, lastDue(burst) - Date.now() + 180_000)).filter((r) => r.subject.startsWith('burst-'));
      const times = got.map((r) => r.at).sort((a, b) => a - b);
      const span = (times.at(-1)! - times[0]!) / 1000;
      const burstLate = lateness(burst, got);
      return {
        mails: MANY,
        intakeSeconds: round((many.finished - many.started) / 1000, 1),
        intakeRate: Math.round(MANY / ((many.finished - many.started) / 1000)),
        dueSpreadSeconds: round((lastDue(many) - firstDue(many)) / 1000, 1),
        lateP50: round(quantile(late, 0.5) / 1000, 2),
        lateP99: round(quantile(late, 0.99) / 1000, 2),
        lateMax: round(Math.max(...late) / 1000, 2),
        earliest: round(Math.min(...late) / 1000, 2),
        burst: BURST,
        burstDueSpread: round((lastDue(burst) - firstDue(burst)) / 1000, 2),
        burstArrivalSpan: round(span, 2),
        burstRate: Math.round((got.length - 1) / Math.max(span, 0.001)),
        burstLateP99: round(quantile(burstLate, 0.99) / 1000, 2),
      };
    });
  },
};
