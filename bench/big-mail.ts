import { memoryOf } from '../test/helpers/server.js';
import { runClient } from './children.js';
import { MiB, round } from './stats.js';
import { withUpstream } from './target.js';
import { atLeast, atMost, type Benchmark } from './types.js';

/**
 * One 100 MiB mail, from a client process to mailhold (HOLD_SECONDS=30) to a sink process:
 * intake speed (DATA to 250, at the client), the server's RSS growth over its RSS before the
 * mail (sampled every 20 ms) while accepting and while delivering, and the SHA-256 at both ends.
 */
const BYTES = 100 * MiB;

interface BigResult {
  sha256: string;
  bytes: number;
  dataStart: number;
  accepted: number;
  mibPerSec: number;
  reply: string;
  ok: boolean;
}

export const bigMail: Benchmark = {
  name: 'bigmail',
  metrics: [
    { key: 'intakeMiBps', label: 'Big mail intake (100 MiB)', target: '≥ 50 MiB/s', unit: 'MiB/s', pass: atLeast(50) },
    { key: 'rssGrowthMiB', label: 'Big mail RSS growth (accept+deliver)', target: '≤ 64 MiB', unit: 'MiB', pass: atMost(64) },
    { key: 'identical', label: 'Big mail byte-identical at sink', target: 'yes', pass: (v) => v === true },
  ],
  async run(db) {
    return withUpstream(db, async (target, sink) => {
      const pid = target.server.child.pid!;
      await new Promise((r) => setTimeout(r, 1000)); // let start-up settle
      const before = memoryOf(pid).rss;
      let phase: 'accept' | 'deliver' = 'accept';
      const peak = { accept: before, deliver: before };
      const sampler = setInterval(() => {
        try {
          const rss = memoryOf(pid).rss;
          if (rss > peak[phase]) peak[phase] = rss;
        } catch {
          /* the process is gone */
        }
      }, 20);
      try {
        const sent = await runClient<BigResult>(['big', target.server.smtpPort, BYTES]);
        if (!sent.ok) throw new Error(`the server refused the mail: ${sent.reply}`);
        phase = 'deliver';
        const [got] = await sink.waitFor(1, 180_000);
        const deliveredAfterDue = got!.at - (Date.parse(/sends at (\S+)/.exec(sent.reply)?.[1] ?? '') || got!.at);
        return {
          intakeMiBps: round(sent.mibPerSec),
          acceptSeconds: round((sent.accepted - sent.dataStart) / 1000, 2),
          rssBeforeMiB: round(before / MiB),
          rssGrowthAcceptMiB: round((peak.accept - before) / MiB),
          rssGrowthDeliverMiB: round((peak.deliver - before) / MiB),
          rssGrowthMiB: round((Math.max(peak.accept, peak.deliver) - before) / MiB),
          identical: got!.sha256 === sent.sha256 && got!.size === sent.bytes,
          sentBytes: sent.bytes,
          sinkBytes: got!.size,
          deliveredAfterDueSeconds: round(deliveredAfterDue / 1000, 2),
        };
      } finally {
        clearInterval(sampler);
      }
    });
  },
};
