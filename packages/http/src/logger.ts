/**
 * The slice of a pino logger this package uses. Services inject their component logger; nothing here
 * creates or configures logging. Log objects carry codes, paths and fingerprints, never key material.
 */
export interface Logger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

const ignore = (): void => {};

/** A logger that drops everything: the default when none is injected (tests, tools). */
export const silentLogger: Logger = Object.freeze({
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
});
