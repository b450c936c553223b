import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamPool } from '../../src/lib/relay/upstream-pool.js';
import { upstreamOptions } from '../../src/lib/relay/upstream.js';
import { rawMail } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';

let sink: Sink;
let pool: UpstreamPool | undefined;

afterEach(async () => {
  pool?.close();
  pool = undefined;
  await sink?.close();
});

async function start(maxConnections: number, idleMs = 10_000) {
  sink = await new Sink().start();
  pool = new UpstreamPool({ connection: upstreamOptions(sink.url()), maxConnections, maxMessages: 1000, idleMs });
  return pool;
}

const message = (subject: string) => () => Readable.from([Buffer.from(rawMail({ subject }))], { objectMode: false });
const envelope = { from: 'a@example.com', to: ['b@example.org'] };
const subjects = () => sink.received.map((m) => /Subject: (.*)\r\n/.exec(m.raw.toString())![1]).sort();

describe('sessions to the upstream', () => {
  it('sends one mail after another over the same session', async () => {
    const p = await start(1);
    for (let i = 0; i < 5; i++) await p.send(envelope, message(`m${i}`));
    expect(subjects()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(sink.connections).toBe(1);
  });

  it('keeps mails waiting for a free session when all are busy, and sends them all', async () => {
    const p = await start(2);
    await Promise.all(Array.from({ length: 12 }, (_, i) => p.send(envelope, message(`w${String(i).padStart(2, '0')}`))));
    expect(subjects()).toHaveLength(12);
    expect(sink.mostOpen).toBeLessThanOrEqual(2);
  });

  it('keeps the session after the upstream refuses a mail (RSET), and sends the next one on it', async () => {
    const p = await start(1);
    sink.rcpt = (address) => (address === 'nobody@example.org' ? { code: 550, message: 'No such user' } : 'accept');
    await expect(p.send({ from: 'a@example.com', to: ['nobody@example.org'] }, message('refused'))).rejects.toMatchObject({ code: 'EENVELOPE' });
    await p.send(envelope, message('after'));
    expect(subjects()).toEqual(['after']);
    expect(sink.connections).toBe(1);
  });

  it('sends again on a new session when the upstream closed a reused one before the mail went out', async () => {
    const p = await start(1);
    await p.send(envelope, message('first'));
    // The second transaction of a session is answered 421, as an upstream that timed the idle session out.
    sink.mailFrom = (transaction) => (transaction > 1 ? { code: 421, message: 'Idle too long, closing' } : 'accept');
    await p.send(envelope, message('second'));
    expect(subjects()).toEqual(['first', 'second']);
    expect(sink.connections).toBe(2);
  });

  it('does not send twice when a fresh session fails', async () => {
    const p = await start(1);
    sink.mailFrom = () => ({ code: 421, message: 'Too busy' });
    await expect(p.send(envelope, message('busy'))).rejects.toMatchObject({ responseCode: 421 });
    expect(sink.connections).toBe(1);
    expect(sink.received).toEqual([]);
  });

  it('closes an idle session after a while', async () => {
    const p = await start(1, 200);
    await p.send(envelope, message('one'));
    await new Promise((r) => setTimeout(r, 600));
    await p.send(envelope, message('two'));
    expect(sink.connections).toBe(2);
  });

  it('refuses to send once closed', async () => {
    const p = await start(1);
    p.close();
    await expect(p.send(envelope, message('late'))).rejects.toThrow(/closed/);
  });
});
