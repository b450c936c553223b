import { runText } from './children.js';
import { openTarget } from './target.js';
import { atLeast, type Benchmark, type Figures } from './types.js';

/**
 * Intake throughput against Postfix in the same run: /work/shared/bench/peer-accept.sh drives
 * Postfix's smtp-source (a new connection per mail, 2,000 mails of 10 KB) first at Postfix
 * accepting into its hold queue, then at mailhold (HOLD_SECONDS=600, loopback may relay).
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
  metrics: SESSIONS.flatMap((s) => [
    { key: `ratio${s}`, label: `Intake vs Postfix, ${s} sessions`, target: '≥ 1.0×', unit: '×', pass: atLeast(1.0) },
    { key: `mailhold${s}`, label: `  mailhold, ${s} sessions`, target: '', unit: 'msg/s', pass: () => true },
    { key: `postfix${s}`, label: `  Postfix (same run), ${s} sessions`, target: '', unit: 'msg/s', pass: () => true },
  ]),
  async run(db) {
    const target = await openTarget(db, { HOLD_SECONDS: '600' });
    const figures: Figures = {};
    try {
      for (const s of SESSIONS) {
        const out = await runText('bash', [SCRIPT, `127.0.0.1:${target.server.smtpPort}`, String(s), '2000', '10000']);
        const r = parsePeerAccept(out);
        Object.assign(figures, { [`ratio${s}`]: r.ratio, [`postfix${s}`]: r.postfix, [`mailhold${s}`]: r.mailhold, [`errorLines${s}`]: r.errorLines });
      }
    } finally {
      await target.close();
    }
    return figures;
  },
};
