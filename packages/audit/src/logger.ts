/**
 * The slice of a pino-compatible logger the audit package uses (a component's child logger). It never logs
 * entry contents: only actions, sequence numbers, counts and error codes.
 */
export interface AuditLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
