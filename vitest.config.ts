import { defineConfig } from 'vitest/config';

// One runner for the whole repository. Unit tests (`*.test.ts`) sit next to the code; integration tests
// (`*.int.test.ts`) talk to real PostgreSQL/Redis/TLS servers on loopback; `test/e2e` drives running services.
export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'services/*/src/**/*.test.ts',
      'services/*/test/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // CI also writes a JSON summary that .ci/run turns into one plain "N passed, N failed" closing line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    ...(process.env.CI ? { outputFile: { json: '.ci-test-results.json' } } : {}),
  },
});
