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

/**
 * SIGTERM/SIGINT: stop gracefully within the deadline, then exit 0 (1 if stopping failed). A second signal
 * forces an immediate exit, for an operator who does not want to wait.
 */
export function exitOnSignals(lifecycle: Lifecycle, logger: LifecycleLogger, deadlineMs = 25_000): void {
  let received = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    received = true;
    logger.info({ signal, deadlineMs }, 'stopping');
    const force = setTimeout(() => {
      logger.error({ deadlineMs }, 'graceful stop overran its deadline: exiting');
      process.exit(1);
    }, deadlineMs + 5_000);
    force.unref();
    lifecycle.stop(deadlineMs).then(
      () => {
        logger.info({}, 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
