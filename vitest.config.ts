import { defineConfig } from 'vitest/config';

/**
 * `npm test` runs every project: pure unit tests, the integration tests once against embedded
 * PGlite and once against the PostgreSQL server (TEST_DATABASE_URL), and the end-to-end tests
 * (the built server, Chromium, Deno).
 */
const integration = (db: 'pglite' | 'postgres') => ({
  extends: true as const,
  test: {
    name: `integration-${db}`,
    include: ['test/integration/**/*.test.ts'],
    env: { MAILHOLD_TEST_DB: db },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

export default defineConfig({
  test: {
    reporters: process.env.CI ? ['verbose'] : ['default'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      integration('pglite'),
      integration('postgres'),
      {
        extends: true,
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, fileParallelism: false },
      },
    ],
  },
});
