import type { SignalConfig } from '@signal/config';
import { createLogger, type Logger } from '@signal/telemetry';
import type { CliIo } from './verb';

/**
 * The services' logger (JSON lines, secrets and PII scrubbed, LOG_LEVEL) writing to stderr, so a verb's
 * stdout carries only its result. `beforeWrite` lets a progress bar step aside for a log line.
 */
export function cliLogger(
  io: Pick<CliIo, 'stderr'>,
  config: Pick<SignalConfig, 'logLevel'>,
  beforeWrite: () => void = () => {},
): Logger {
  return createLogger({
    level: config.logLevel,
    name: 'signal-cli',
    destination: {
      write(line: string) {
        beforeWrite();
        io.stderr(line);
      },
    },
  });
}
