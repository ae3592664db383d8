/**
 * The Management API as its own process: `node --import tsx services/management-api/src/main.ts`.
 * Configuration comes only from env and signal.yaml; a missing or bad value stops start-up here with a
 * message naming it, and so does a missing key, JWT secret or migration (exit 1), as for the other services;
 * SIGTERM drains and exits 0 (`runService`).
 */
import { Lifecycle, runService } from '@signal/runtime';
import { buildContainer } from './container';

await runService('management-api', async ({ config }) => {
  const container = await buildContainer(config);
  return {
    lifecycle: new Lifecycle(container.logger).add({
      name: 'management-api',
      start: () => container.start(),
      // The container drains HTTP within its own 10 s, then closes its clients.
      stop: () => container.stop(),
    }),
  };
});
