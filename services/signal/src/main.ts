/**
 * `pnpm start`: every Signal service in one process on embedded defaults, every HTTP surface on one port.
 * Configuration comes only from env and signal.yaml; a bad value stops here with a message naming it.
 */
import { ConfigError, loadConfig } from '@signal/config';
import { armStallWatchdog, exitOnSignals, type Shutdown } from '@signal/runtime';
import { createLogger } from '@signal/telemetry';
import { buildSignal } from './container';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`signal: refusing to start: ${err.message}`);
    process.exit(1);
  }
  throw err;
}

const logger = createLogger({ level: config.logLevel, name: 'signal' });
let shutdown: Shutdown | undefined;
const FATAL = { reason: 'embedded database stopped', exitCode: 1 } as const;
/**
 * The embedded database runs on this thread, inside synchronous WASM calls. Should one never return (seen once
 * in a while under heavy load when the disk refused a sync: the call that met the failure spun instead of
 * reporting the PANIC), the process would neither serve nor exit, and a supervisor without a liveness probe
 * would never restart it. The watchdog ends it (SIGKILL) once the main thread has not turned for 30 s, far
 * above any pause of a live process (a checkpoint blocks it for well under a second).
 */
armStallWatchdog({
  stallMs: 30_000,
  message:
    'the main thread has not turned for 30 s (a call stuck inside the embedded database?): ending the process so that it is restarted and recovers',
});
let fatal = false;
try {
  const signal = await buildSignal({
    config,
    logger,
    onFatal: (err) => {
      fatal = true;
      logger.fatal(
        { err },
        'the embedded database stopped: stopping Signal so that it is restarted and recovers',
      );
      shutdown?.(FATAL);
    },
  });
  shutdown = exitOnSignals(signal.lifecycle, logger);
  if (fatal) {
    // The database stopped while the rest was being built (its checkpoints run on their own timer).
    shutdown(FATAL);
  } else {
    await signal.lifecycle.start();
    if (!fatal) signal.announce();
  }
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  logger.fatal({ err }, 'start-up failed');
  console.error(`signal: refusing to start: ${message}`);
  logger.flush();
  process.exit(1);
}
