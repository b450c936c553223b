import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/relay/clock.js';
import { ExclusionError, normalizeExclusion } from '../../src/lib/relay/policy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { send, startRelay, until, type StartedRelay } from '../helpers/relay.js';
import { Sink } from '../helpers/sink.js';

let database: TestDatabase;
let sink: Sink;
let started: StartedRelay;
const all = { kind: 'all' } as const;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await new Sink().start();
  started = await startRelay(database.db, { clock: new ManualClock(), upstream: sink.url() });
});
afterAll(async () => {
  await started.stop();
  await sink.close();
  await database.drop();
});
afterEach(async () => {
  for (const e of await started.relay.policy.listExclusions()) await started.relay.policy.removeExclusion(e.id);
  sink.received = [];
});

async function stateOf(subject: string) {
  const all2 = [...(await started.relay.api.list(all, { view: 'active' })).items, ...(await started.relay.api.list(all, { view: 'history' })).items];
  return all2.find((m) => m.subject === subject);
}

describe('exclusions: delivered at once, without a hold', () => {
  it('by sender address or domain, case-insensitive', async () => {
    await started.relay.policy.addExclusion('sender', 'Boss@Example.com');
    await started.relay.policy.addExclusion('sender', '@Scanner.Example.org');
    await send({ port: started.port, from: 'boss@EXAMPLE.com', subject: 'sender address' });
    await send({ port: started.port, from: 'copier@scanner.example.org', subject: 'sender domain' });
    await send({ port: started.port, from: 'someone@example.com', subject: 'not excluded' });
    await sink.waitFor(2);
    expect((await stateOf('sender address'))?.excludedBy).toBe('sender');
    expect((await stateOf('sender domain'))?.excludedBy).toBe('sender');
    expect((await stateOf('not excluded'))?.state).toBe('held');
  });

  it('by recipient only when every recipient is on the list', async () => {
    await started.relay.policy.addExclusion('recipient', 'example.net');
    await started.relay.policy.addExclusion('recipient', 'partner@example.org');
    await send({ port: started.port, to: ['a@example.net', 'Partner@example.org'], subject: 'all recipients listed' });
    await send({ port: started.port, to: ['a@example.net', 'stranger@example.org'], subject: 'one recipient not listed' });
    await sink.waitFor(1);
    expect((await stateOf('all recipients listed'))?.excludedBy).toBe('recipient');
    expect((await stateOf('one recipient not listed'))?.state).toBe('held');
  });

  it('by source IP (IPv4 CIDR, IPv6, IPv4-mapped normalised)', async () => {
    await started.relay.policy.addExclusion('source_ip', '127.0.0.0/24');
    await send({ port: started.port, subject: 'from an excluded network' });
    await until(async () => (await stateOf('from an excluded network'))?.excludedBy === 'source_ip', 'excluded by ip');
    await started.relay.policy.removeExclusion((await started.relay.policy.listExclusions())[0]!.id);
    await started.relay.policy.addExclusion('source_ip', '::ffff:127.0.0.2');
    await send({ port: started.port, subject: 'from another address' });
    expect((await stateOf('from another address'))?.state).toBe('held');
    expect(await started.relay.policy.exclusionFor('x@y.z', ['a@b.c'], '127.0.0.2')).toBe('source_ip');
    await started.relay.policy.addExclusion('source_ip', '2001:db8::/32');
    expect(await started.relay.policy.exclusionFor('x@y.z', ['a@b.c'], '2001:db8:1::5')).toBe('source_ip');
    expect(await started.relay.policy.exclusionFor('x@y.z', ['a@b.c'], '2001:db9::5')).toBeNull();
  });

  it('refuses values that are not addresses, domains or networks, with a clear message', () => {
    expect(() => normalizeExclusion('sender', 'not an address')).toThrow(ExclusionError);
    expect(() => normalizeExclusion('source_ip', '300.1.1.1')).toThrow(/not an IP address or network/);
    expect(normalizeExclusion('sender', '@Example.COM')).toBe('example.com');
    expect(normalizeExclusion('source_ip', '10.1.2.3/8')).toBe('10.0.0.0/8');
  });
});
