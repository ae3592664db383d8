import { loadConfig } from '@signal/config';
import { buildContainer } from './container';

/** Runs the Management API alone: config, container, start, stop on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const config = loadConfig();
  const container = await buildContainer(config);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    container.logger.info({ signal }, 'shutting down');
    container
      .stop()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        container.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await container.start();
}

main().catch((error: unknown) => {
  // Configuration errors carry a message naming the variable to set; nothing secret is in it.
  process.stderr.write(`management-api: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
