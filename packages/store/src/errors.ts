/**
 * The store's closed error model. Messages carry the SQLSTATE and schema identifiers (constraint, table,
 * column) but never parameter values, row contents or the server's DETAIL line: those may hold secrets or
 * PII (`Key (email)=(a@b.example) already exists.`). The driver error is deliberately not kept as `cause`
 * because loggers serialise causes, and both drivers attach values to their errors.
 */
export type StoreErrorCode =
  /** Cannot reach the server or the connection broke: retry later. */
  | 'unavailable'
  /** A statement, lock or pool checkout timed out. */
  | 'timeout'
  /** A unique or exclusion constraint refused the row. */
  | 'conflict'
  /** Serialization failure or deadlock: rerun the whole transaction. */
  | 'serialization_failure'
  /** TLS could not be established or the server's certificate was not trusted; never retried in plaintext. */
  | 'tls_failed'
  /** The adapter options are invalid (bad URL, unreadable CA file, unsafe sslmode). */
  | 'invalid_config'
  /** An applied migration's SQL changed, or a new migration sits before an applied one. */
  | 'migration_mismatch'
  /** The database or transaction handle was already closed. */
  | 'closed'
  /** Any other failed statement (syntax, constraint other than unique, data exception, …). */
  | 'query_failed';

const RETRYABLE: Record<StoreErrorCode, boolean> = {
  unavailable: true,
  timeout: true,
  conflict: false,
  serialization_failure: true,
  tls_failed: false,
  invalid_config: false,
  migration_mismatch: false,
  closed: false,
  query_failed: false,
};

export interface StoreErrorDetails {
  /** SQLSTATE from the server, e.g. `23505`. */
  readonly sqlState?: string;
  /** Name of the violated constraint (a schema identifier, never a value). */
  readonly constraint?: string;
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly retryable: boolean;
  readonly sqlState: string | undefined;
  readonly constraint: string | undefined;

  constructor(code: StoreErrorCode, message: string, details: StoreErrorDetails = {}) {
    super(message);
    this.code = code;
    this.retryable = RETRYABLE[code];
    this.sqlState = details.sqlState;
    this.constraint = details.constraint;
  }
}

export function isStoreError(err: unknown): err is StoreError {
  return err instanceof StoreError;
}

/** Node socket error codes that mean "the server is not reachable right now". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/** Node/OpenSSL error codes raised while verifying the server's certificate or negotiating TLS. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_)/;

/**
 * SQLSTATE classes whose primary message names only schema objects and SQL text, never values: integrity
 * (23: the values are in DETAIL, which we drop), syntax/access (42), transaction state (25, 40), object
 * state (55), operator intervention (57), resources (53), connection (08), features (0A), catalog/schema
 * names (3D, 3F). Data exceptions (22: `invalid input syntax for type integer: "…"`) and user-raised
 * errors (P0) echo values, so their message is replaced by the SQLSTATE alone.
 */
const SAFE_MESSAGE_CLASSES = new Set(['23', '42', '25', '40', '55', '57', '53', '08', '0A', '3D', '3F']);

interface DriverErrorFields {
  code?: unknown;
  message?: unknown;
  constraint?: unknown;
  errors?: unknown;
}

function fields(err: unknown): DriverErrorFields {
  return typeof err === 'object' && err !== null ? (err as DriverErrorFields) : {};
}

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** First Node error code on `err`, looking inside AggregateError (dual-stack connects fail per address). */
export function nodeCode(err: unknown): string | undefined {
  const f = fields(err);
  const code = stringField(f.code);
  if (code !== undefined) return code;
  if (Array.isArray(f.errors)) {
    for (const inner of f.errors) {
      const innerCode = nodeCode(inner);
      if (innerCode !== undefined) return innerCode;
    }
  }
  return undefined;
}

function fromSqlState(sqlState: string, err: unknown): StoreError {
  const f = fields(err);
  const constraint = stringField(f.constraint);
  const serverMessage = stringField(f.message);
  const cls = sqlState.slice(0, 2);
  const text =
    serverMessage !== undefined && SAFE_MESSAGE_CLASSES.has(cls)
      ? `${serverMessage} (SQLSTATE ${sqlState})`
      : `statement failed (SQLSTATE ${sqlState})`;
  const details: StoreErrorDetails = constraint === undefined ? { sqlState } : { sqlState, constraint };
  if (sqlState === '23505' || sqlState === '23P01') return new StoreError('conflict', text, details);
  if (sqlState === '40001' || sqlState === '40P01') {
    return new StoreError('serialization_failure', text, details);
  }
  if (sqlState === '57014' || sqlState === '55P03' || sqlState === '25P03') {
    return new StoreError('timeout', text, details);
  }
  if (cls === '08' || sqlState === '57P01' || sqlState === '57P02' || sqlState === '57P03') {
    return new StoreError('unavailable', text, details);
  }
  if (sqlState === '53300') return new StoreError('unavailable', text, details);
  return new StoreError('query_failed', text, details);
}

/** Five characters; no SQLSTATE class starts with `E`, while Node errno codes (`EPIPE`) all do. */
const SQLSTATE = /^[0-9A-DF-Z][0-9A-Z]{4}$/;

/**
 * Maps a pg or PGlite error to a StoreError. `context` says what was attempted (e.g. "query", "connect");
 * it must be a constant, never input.
 */
export function toStoreError(err: unknown, context: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = nodeCode(err);
  if (code !== undefined && SQLSTATE.test(code)) return fromSqlState(code, err);
  if (code !== undefined && NETWORK_CODES.has(code)) {
    return new StoreError('unavailable', `${context}: database unreachable (${code})`);
  }
  if (code !== undefined && TLS_CODE.test(code)) {
    return new StoreError('tls_failed', `${context}: TLS to the database failed (${code})`);
  }
  // pg reports these as plain Errors without a code; the texts are fixed strings in pg and pg-pool.
  const message = stringField(fields(err).message) ?? '';
  if (message.includes('does not support SSL') || message.includes('establishing an SSL connection')) {
    return new StoreError('tls_failed', `${context}: the database server refused TLS`);
  }
  if (message.includes('timeout exceeded when trying to connect')) {
    return new StoreError('timeout', `${context}: no pooled connection free within the checkout timeout`);
  }
  if (message.includes('timeout') && message.includes('onnect')) {
    return new StoreError('unavailable', `${context}: connecting to the database timed out`);
  }
  if (message.includes('Query read timeout')) {
    return new StoreError('timeout', `${context}: the database did not answer within the query timeout`);
  }
  if (
    message.includes('Connection terminated') ||
    message.includes('Client has encountered a connection error') ||
    message.includes('Connection ended') ||
    message.includes('not queryable')
  ) {
    return new StoreError('unavailable', `${context}: the database connection was lost`);
  }
  if (message.includes('Cannot use a pool after calling end') || message.includes('PGlite is clos')) {
    return new StoreError('closed', `${context}: the database was closed`);
  }
  return new StoreError('query_failed', `${context}: failed (${code ?? 'no error code'})`);
}
