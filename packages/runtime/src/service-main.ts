import { ConfigError, loadConfig, type SignalConfig } from '@signal/config';
import { createLogger, createMetrics, type Logger, type Metrics } from '@signal/telemetry';
import { exitOnSignals, type Lifecycle } from './lifecycle';

export interface ServiceMainDeps {
  readonly config: SignalConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

function refuse(service: string, err: unknown): never {
  // Configuration, key and migration errors name what to set or run; nothing secret is in them.
  process.stderr.write(
    `${service}: refusing to start: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
}

/**
 * A service's process entry point (`services/<name>/src/main.ts`): configuration only from env and
 * signal.yaml, then the composition root `build`, then start. A bad or missing value, database, key or
 * migration stops start-up with `<service>: refusing to start: <what to do>` and exit 1. SIGTERM/SIGINT stop
 * intake, drain within the deadline, close clients and exit 0; a second signal forces the exit.
 */
export async function runService(
  service: string,
  build: (deps: ServiceMainDeps) => Promise<{ readonly lifecycle: Lifecycle }>,
): Promise<void> {
  let config: SignalConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) refuse(service, err);
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, name: service });
  const metrics = createMetrics();
  try {
    const { lifecycle } = await build({ config, logger, metrics });
    exitOnSignals(lifecycle, logger);
    await lifecycle.start();
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    logger.flush();
    refuse(service, err);
  }
}
