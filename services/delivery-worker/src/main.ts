/**
 * The Delivery Worker as its own process: `node --import tsx services/delivery-worker/src/main.ts`.
 * Configuration comes only from env and signal.yaml; a missing or bad value stops start-up here with a
 * message naming it, and so does a missing database, key or migration (exit 1).
 */
import { ConfigError, loadConfig, type SignalConfig } from '@signal/config';
import { exitOnSignals } from '@signal/runtime';
import { createLogger, createMetrics } from '@signal/telemetry';
import { buildContainer } from './container';

const SERVICE = 'delivery-worker';

let config: SignalConfig;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${SERVICE}: refusing to start: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const logger = createLogger({ level: config.logLevel, name: SERVICE });
const metrics = createMetrics();
try {
  const container = await buildContainer({ config, logger, metrics });
  // SIGTERM/SIGINT: stop intake, drain within the deadline, close clients, exit 0; a second signal
  // forces the exit.
  exitOnSignals(container.lifecycle, logger);
  await container.lifecycle.start();
} catch (err) {
  logger.fatal({ err }, 'start-up failed');
  logger.flush();
  process.stderr.write(
    `${SERVICE}: refusing to start: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
}
