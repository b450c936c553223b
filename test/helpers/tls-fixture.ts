import { afterAll, afterEach, beforeAll } from 'vitest';
import { createTestDatabase, type TestDatabase } from './db.js';
import type { StartedRelay } from './relay.js';
import type { Sink } from './sink.js';
import { TestCa, type Issued } from './tls.js';

export interface TlsFixture {
  database: TestDatabase;
  /** A test CA, and a certificate from it for the relay (localhost, 127.0.0.1, ::1). */
  ca: TestCa;
  cert: Issued;
  /** Relays a test starts; stopped after each test. */
  started: StartedRelay[];
  /** The upstream of the test, if it starts one; closed after each test. */
  sink: Sink;
}

/**
 * What the TLS, pass-through and IPv6 tests share, with its hooks registered: a test database
 * and a CA for the whole file, relays and the upstream sink cleaned up after every test. The
 * fields are filled in `beforeAll`.
 */
export function tlsFixture(): TlsFixture {
  const f = { started: [] } as unknown as TlsFixture;
  beforeAll(async () => {
    f.database = await createTestDatabase();
    f.ca = await new TestCa().init();
    f.cert = await f.ca.issue();
  });
  afterAll(async () => {
    await f.database.drop();
    f.ca.remove();
  });
  afterEach(async () => {
    for (const s of f.started.splice(0)) await s.stop();
    await f.sink?.close();
    f.sink = undefined as unknown as Sink;
  });
  return f;
}
