import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startRelay, type StartedRelay } from '../helpers/relay.js';

let database: TestDatabase;
let relay: StartedRelay;

beforeAll(async () => {
  database = await createTestDatabase();
  relay = await startRelay(database.db, { clock: new ManualClock(), env: { RELAY_NETWORKS: '127.0.0.1/32' } });
});
afterAll(async () => {
  await relay.stop();
  await database.drop();
});

/** Milliseconds from connect to the 220 greeting. */
function greetingTime(localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect({ port: relay.port, host: '127.0.0.1', localAddress });
    s.once('data', (d) => {
      expect(String(d)).toMatch(/^220 /);
      s.destroy();
      resolve(performance.now() - t0);
    });
    s.once('error', reject);
  });
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('the greeting (src/lib/relay/smtp-server.ts)', () => {
  it('goes out at once to a client in RELAY_NETWORKS', async () => {
    const times: number[] = [];
    for (let i = 0; i < 9; i++) times.push(await greetingTime('127.0.0.1'));
    expect(median(times)).toBeLessThan(50);
  });

  it('keeps smtp-server’s early-talker pause for everyone else', async () => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) times.push(await greetingTime('127.0.0.2'));
    expect(median(times)).toBeGreaterThanOrEqual(90);
  });
});
