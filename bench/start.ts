import net from 'node:net';
import { sendBulk } from './children.js';
import { round } from './stats.js';
import { openTarget } from './target.js';
import { atMost, type Benchmark } from './types.js';

/**
 * Start on an existing data directory / database: a server that holds 1,000 mails is stopped
 * and started again; the time from spawn until its SMTP port answers 220 (and /healthz, for
 * reference).
 */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('220'));
    });
    s.on('error', () => done(false));
    s.on('close', () => done(buf.startsWith('220')));
  });
}

export const start: Benchmark = {
  name: 'start',
  metrics: [{ key: 'smtpReadyMs', label: 'Start to SMTP 220 (existing data)', target: '≤ 3000 ms', unit: 'ms', pass: atMost(3000) }],
  async run(db) {
    const target = await openTarget(db, { HOLD_SECONDS: '600' });
    try {
      await sendBulk(target.server.smtpPort, 1000, 10, 'start');
      await target.server.stop();
      const t0 = Date.now();
      const server = await target.restart({ waitReady: false });
      let smtpReadyMs = NaN;
      while (Date.now() - t0 < 60_000) {
        if (server.child.exitCode !== null) throw new Error(`the server exited: ${server.output().slice(-500)}`);
        if (await greets(server.smtpPort)) {
          smtpReadyMs = Date.now() - t0;
          break;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      if (!Number.isFinite(smtpReadyMs)) throw new Error('no 220 within 60 s');
      let httpReadyMs = NaN;
      while (Date.now() - t0 < 60_000) {
        const ok = await fetch(`${server.url}/healthz`).then((r) => r.ok, () => false);
        if (ok) {
          httpReadyMs = Date.now() - t0;
          break;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      return { smtpReadyMs, healthzReadyMs: round(httpReadyMs, 0) };
    } finally {
      await target.close();
    }
  },
};
