export type BusErrorCode =
  /** The bus or subscription was closed. */
  | 'bus_closed'
  /** The write was not acknowledged as durable; nothing can be assumed written. Retry. */
  | 'bus_publish_failed'
  /** A message does not match its topic's schema (a producer bug) or breaks a bound. */
  | 'bus_invalid_message'
  /** A topic name, partition count or options object is invalid. */
  | 'bus_invalid_argument'
  /** The adapter configuration is invalid. */
  | 'bus_invalid_config'
  /** The topic does not exist and the adapter does not create topics on demand. */
  | 'bus_unknown_topic'
  /**
   * A stored payload does not open: unknown key id, modified or moved ciphertext, damaged records. The
   * partition halts there (nothing skipped) and retries with backoff: a missing key can be put back.
   */
  | 'bus_unreadable';

const RETRYABLE: Record<BusErrorCode, boolean> = {
  bus_closed: false,
  bus_publish_failed: true,
  bus_invalid_message: false,
  bus_invalid_argument: false,
  bus_invalid_config: false,
  bus_unknown_topic: false,
  bus_unreadable: true,
};

export class BusError extends Error {
  override readonly name = 'BusError';
  readonly code: BusErrorCode;
  readonly retryable: boolean;

  constructor(code: BusErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = RETRYABLE[code];
  }
}

export function isBusError(err: unknown): err is BusError {
  return err instanceof BusError;
}

/** What to log about an error: its class, code and message, never attached values. */
export function describeError(err: unknown): { type: string; code?: string; message: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string'
      ? { type: err.name, code, message: err.message }
      : { type: err.name, message: err.message };
  }
  return { type: typeof err, message: 'non-error thrown' };
}
