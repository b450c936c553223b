import { runText } from './children.js';
import { openTarget } from './target.js';
import { atLeast, type Benchmark, type Figures } from './types.js';

/**
 * Intake throughput against Postfix in the same run: /work/shared/bench/peer-accept.sh drives
 * Postfix's smtp-source (a new connection per mail, 2,000 mails of 10 KB) first at Postfix
 * accepting into its hold queue, then at mailhold (HOLD_SECONDS=600, loopback may relay).
 * The first 10-session run goes to a server that has just started and is reported as the cold
 * figure; it also warms the server up (see warm-up.ts) for the measured runs that follow.
 */
const SCRIPT = process.env.BENCH_PEER_ACCEPT ?? '/work/shared/bench/peer-accept.sh';
const SESSIONS = [10, 50];

export function parsePeerAccept(out: string): { postfix: number; mailhold: number; ratio: number; errorLines: number } {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`unexpected peer-accept output: ${out.trim().slice(-300)}`);
    return Number(m[1]);
  };
  return {
    postfix: num(/^postfix-hold: ([\d.]+) msg\/s/m),
    mailhold: num(/^under-test: ([\d.]+) msg\/s/m),
    ratio: num(/^ratio under-test\/postfix: ([\d.]+)/m),
    errorLines: num(/^under-test: .*?(\d+) error lines/m),
  };
}

export const intake: Benchmark = {
  name: 'intake',
  metrics: [
    ...SESSIONS.flatMap((s) => [
    { key: `ratio${s}`, label: `Intake vs Postfix, ${s} sessions`, target: '≥ 1.0×', unit: '×', pass: atLeast(1.0) },
    { key: `mailhold${s}`, label: `  mailhold, ${s} sessions`, target: '', unit: 'msg/s', pass: () => true },
    { key: `postfix${s}`, label: `  Postfix (same run), ${s} sessions`, target: '', unit: 'msg/s', pass: () => true },
    ]),
    { key: 'ratio10Cold', label: '  cold: first 2,000 mails after start, 10 sessions', target: '', unit: '×', pass: () => true },
  ],
  async run(db) {
    const target = await openTarget(db, { HOLD_SECONDS: '600' });
    const figures: Figures = {};
    const peerAccept = async (sessions: number) => {
      // Postfix runs first in each pair: it must not meet the flush of mailhold's last run (or
      // of the new database) on the disk, which would slow its fsyncs.
      await target.settle();
      return parsePeerAccept(await runText('bash', [SCRIPT, `127.0.0.1:${target.server.smtpPort}`, String(sessions), '2000', '10000']));
    };
    try {
      const cold = await peerAccept(10);
      Object.assign(figures, { ratio10Cold: cold.ratio, postfix10Cold: cold.postfix, mailhold10Cold: cold.mailhold });
      for (const s of SESSIONS) {
        const r = await peerAccept(s);
        Object.assign(figures, { [`ratio${s}`]: r.ratio, [`postfix${s}`]: r.postfix, [`mailhold${s}`]: r.mailhold, [`errorLines${s}`]: r.errorLines });
      }
    } finally {
      await target.close();
    }
    return figures;
  },
};
