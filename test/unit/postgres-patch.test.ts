import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

describe('the postgres.js we run', () => {
  it('has the guard that keeps a closed connection from crashing the process (scripts/patch-postgres.js)', () => {
    const require = createRequire(import.meta.url);
    // The package's main entry is cjs/src/index.js; the package root is two levels up.
    const dir = path.resolve(path.dirname(require.resolve('postgres')), '..', '..');
    for (const sub of ['src', 'cjs/src']) {
      expect(readFileSync(path.join(dir, sub, 'connection.js'), 'utf8')).toContain('/* mailhold: guarded nextWrite */');
    }
  });
});
