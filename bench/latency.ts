import { runText } from './children.js';
import { openTarget } from './target.js';
import { atMost, type Benchmark } from './types.js';
import { warmUp } from './warm-up.js';

/**
 * Intake latency: TCP connect to the 250 after DATA, 10 sessions, 1,000 mails of 10 KB, once on
 * a server that has just started (cold) and once after the warm-up (the figure the target is for).
 */
const SCRIPT = process.env.BENCH_INTAKE_LATENCY ?? '/work/shared/bench/intake-latency.py';

export const latency: Benchmark = {
  name: 'latency',
  metrics: [
    { key: 'p99', label: 'Intake latency p99 (connect→250)', target: '≤ 20 ms', unit: 'ms', pass: atMost(20) },
    { key: 'p50', label: '  p50', target: '', unit: 'ms', pass: () => true },
    { key: 'p99Cold', label: '  cold: p99 of the first 1,000 mails after start', target: '', unit: 'ms', pass: () => true },
  ],
  async run(db) {
    const target = await openTarget(db, { HOLD_SECONDS: '600' });
    const measure = async () => {
      const out = await runText('python3', [SCRIPT, `127.0.0.1:${target.server.smtpPort}`, '10', '1000', '10000']);
      const m = /(\d+) ok, (\d+) errors, (\d+) msg\/s; connect->250 ms: p50 ([\d.]+) p90 ([\d.]+) p99 ([\d.]+) max ([\d.]+)/.exec(out);
      if (!m) throw new Error(`unexpected intake-latency output: ${out.trim().slice(-300)}`);
      const [ok, errors, rate, p50, p90, p99, max] = m.slice(1).map(Number) as number[];
      if (errors! > 0) throw new Error(`${errors} of ${ok! + errors!} mails failed: ${out.trim()}`);
      return { p50: p50!, p90: p90!, p99: p99!, max: max!, msgPerSec: rate! };
    };
    try {
      const cold = await measure();
      await warmUp(target.server.smtpPort);
      return { ...(await measure()), p99Cold: cold.p99, p50Cold: cold.p50 };
    } finally {
      await target.close();
    }
  },
};
