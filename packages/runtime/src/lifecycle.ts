export interface LifecycleLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Something with a start and a stop: an HTTP server, a consumer, a client pool. */
export interface Component {
  readonly name: string;
  start?(): Promise<void>;
  /** Stop intake, finish in-flight work within `deadlineMs`, release resources. */
  stop(deadlineMs: number): Promise<void>;
}

/**
 * Starts components in order and stops them in reverse (STYLE §3): transports stop taking work before the
 * clients they use are closed. A component that fails to start stops the ones already started.
 */
export class Lifecycle {
  readonly #components: Component[] = [];
  readonly #started: Component[] = [];
  readonly #logger: LifecycleLogger;
  #stopping: Promise<void> | undefined;

  constructor(logger: LifecycleLogger) {
    this.#logger = logger;
  }

  add(component: Component): this {
    this.#components.push(component);
    return this;
  }

  async start(): Promise<void> {
    for (const component of this.#components) {
      try {
        await component.start?.();
        this.#started.push(component);
      } catch (err) {
        this.#logger.error({ err, component: component.name }, 'start-up failed');
        await this.stop(5_000);
        throw err;
      }
    }
  }

  /** Idempotent: a second call returns the first call's promise. */
  stop(deadlineMs: number): Promise<void> {
    this.#stopping ??= (async () => {
      const until = Date.now() + deadlineMs;
      for (const component of [...this.#started].reverse()) {
        const left = Math.max(0, until - Date.now());
        try {
          await component.stop(left);
        } catch (err) {
          this.#logger.error({ err, component: component.name }, 'stop failed');
        }
      }
    })();
    return this.#stopping;
  }
}

/** Why the process stops: logged, and the exit code once the lifecycle stopped (1 also when stopping failed). */
export interface ShutdownReason {
  readonly reason: string;
  readonly exitCode: 0 | 1;
}

/** Starts one graceful stop of the process; later calls while it runs are ignored. */
export type Shutdown = (why: ShutdownReason) => void;

/**
 * SIGTERM/SIGINT: stop gracefully within the deadline, then exit 0 (1 if stopping failed). A second signal
 * forces an immediate exit, for an operator who does not want to wait. Returns the same graceful stop for
 * the process's own reasons to end, such as an embedded database that stopped for good (exit 1, so that a
 * supervisor restarts it).
 */
export function exitOnSignals(lifecycle: Lifecycle, logger: LifecycleLogger, deadlineMs = 25_000): Shutdown {
  let stopping = false;
  const shutdown: Shutdown = ({ reason, exitCode }) => {
    if (stopping) return;
    stopping = true;
    // Also the code if the loop empties before the stop settles (a stop waiting on something that never comes).
    process.exitCode = exitCode;
    logger.info({ reason, deadlineMs }, 'stopping');
    const force = setTimeout(() => {
      logger.error({ deadlineMs }, 'graceful stop overran its deadline: exiting');
      process.exit(1);
    }, deadlineMs + 5_000);
    force.unref();
    lifecycle.stop(deadlineMs).then(
      () => {
        logger.info({ reason, exitCode }, 'stopped');
        process.exit(exitCode);
      },
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    // During a stop the process started itself, the first signal lets it finish (its exit code stays).
    shutdown({ reason: signal, exitCode: 0 });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return shutdown;
}
