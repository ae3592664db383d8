/**
 * The Management API as its own process: `node --import tsx services/management-api/src/main.ts`.
 * Configuration comes only from env and signal.yaml; a missing or bad value stops start-up here with a
 * message naming it, and so does a missing key, JWT secret or migration (exit 1), as for the other services.
 */
import { ConfigError, loadConfig, type SignalConfig } from '@signal/config';
import { exitOnSignals, Lifecycle } from '@signal/runtime';
import { buildContainer } from './container';

const SERVICE = 'management-api';

function refuse(err: unknown): never {
  // Configuration and migration errors name what to set or run; nothing secret is in them.
  process.stderr.write(
    `${SERVICE}: refusing to start: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
}

let config: SignalConfig;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) refuse(err);
  throw err;
}

try {
  const container = await buildContainer(config);
  const lifecycle = new Lifecycle(container.logger).add({
    name: SERVICE,
    start: () => container.start(),
    // The container drains HTTP within its own 10 s, then closes its clients.
    stop: () => container.stop(),
  });
  // SIGTERM/SIGINT: stop intake, drain, close clients, exit 0; a second signal forces the exit.
  exitOnSignals(lifecycle, container.logger);
  await lifecycle.start();
} catch (err) {
  refuse(err);
}
