/**
 * The slice of a pino-compatible logger the store uses. Callers pass a child logger; the store never logs
 * SQL parameters, row values or connection strings.
 */
export interface StoreLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
