import { describe, expect, it } from 'vitest';
import { describeConfig, parseConfig } from '../../src/lib/server/config.js';

describe('UPSTREAM_CONNECTIONS', () => {
  it('defaults to 20 sessions and is printed with the configuration', () => {
    const config = parseConfig({});
    expect(config.upstreamConnections).toBe(20);
    expect(describeConfig(config)).toContainEqual(['UPSTREAM_CONNECTIONS', '20']);
    expect(parseConfig({ UPSTREAM_CONNECTIONS: '3' }).upstreamConnections).toBe(3);
  });

  it('refuses a value that is not a sensible number of sessions, naming it', () => {
    for (const bad of ['0', '101', '2.5', 'many']) {
      expect(() => parseConfig({ UPSTREAM_CONNECTIONS: bad })).toThrow(/\[delivery\] UPSTREAM_CONNECTIONS: must be/);
    }
  });
});
