/** The slice of a pino-compatible logger the cache uses. Keys, values and URLs are never logged. */
export interface CacheLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
