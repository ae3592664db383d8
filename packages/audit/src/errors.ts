/**
 * Errors of the audit package. Each carries a stable string `code`; messages name the field or option at
 * fault and never contain an entry's values (they may hold PII or, before masking, secrets).
 */
export type AuditErrorCode =
  /** The entry given to `record` does not match the schema (unknown action, bad IP address, oversized changes). */
  | 'audit.invalid_entry'
  /** A list/export filter or pagination option is invalid (limit out of range, `from` after `to`). */
  | 'audit.invalid_query'
  /** The pagination cursor was not produced by this log (tampered, truncated or from another endpoint). */
  | 'audit.invalid_cursor'
  /** A purge option is invalid (retention below one day). */
  | 'audit.invalid_option'
  /** The database refused or failed the write; the entry was not recorded. */
  | 'audit.write_failed'
  /** A row read back from the database does not match the row schema. */
  | 'audit.corrupt_row';

const RETRYABLE: Record<AuditErrorCode, boolean> = {
  'audit.invalid_entry': false,
  'audit.invalid_query': false,
  'audit.invalid_cursor': false,
  'audit.invalid_option': false,
  'audit.write_failed': true,
  'audit.corrupt_row': false,
};

export class AuditError extends Error {
  override readonly name = 'AuditError';
  readonly code: AuditErrorCode;
  readonly retryable: boolean;

  constructor(code: AuditErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options?.retryable ?? RETRYABLE[code];
  }
}

export function isAuditError(err: unknown): err is AuditError {
  return err instanceof AuditError;
}
