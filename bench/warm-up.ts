import { runText } from './children.js';

/**
 * A relay that has been running: before a measured intake run, the server takes WARM_UP_MAILS
 * mails (new connection per mail, 10 sessions, 10 KB) so that V8 has compiled the intake path.
 * The first couple of thousand mails after a start run through the interpreter and baseline code
 * and cost about twice the CPU; that start-up cost is reported on its own as the cold figure,
 * not mixed into the steady rate that the targets are about.
 */
export const WARM_UP_MAILS = 2000;
const SCRIPT = process.env.BENCH_INTAKE_LATENCY ?? '/work/shared/bench/intake-latency.py';

export async function warmUp(smtpPort: number, mails = WARM_UP_MAILS): Promise<void> {
  const out = await runText('python3', [SCRIPT, `127.0.0.1:${smtpPort}`, '10', String(mails), '10000']);
  const m = /(\d+) ok, (\d+) errors/.exec(out);
  if (!m || Number(m[2]) > 0) throw new Error(`warm-up failed: ${out.trim().slice(-300)}`);
}
