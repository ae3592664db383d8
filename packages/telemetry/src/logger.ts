import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;
export type LogLevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export const REDACTED = '[redacted]';

/**
 * Keys whose values are secrets or PII wherever they appear in a log object, at any depth. Matched on the
 * key name, case-insensitively, ignoring `_`/`-`. Kept deliberately broad: a log line loses a detail, an
 * auditor never finds a credential.
 */
const SENSITIVE_KEY =
  /^(.*(password|passwd|secret|token|apikey|privatekey|credential|authorization|cookie|signature|encryptionkey|ciphertext|plaintext)|key|keys|previouskey|dek|kek|email|emails|em|phone|phones|ph|phonenumber|firstname|lastname|fn|ln|dob|dateofbirth|birthday|ssn|address|street|zip|zp|postalcode|ip|ipaddress|traits|userdata|user_data)$/;

// Bounded quantifiers: an unbounded local part makes the scan quadratic on long strings without an `@`.
const EMAIL = /[^\s@"'<>]{1,64}@[^\s@"'<>]{1,253}\.[a-z]{2,24}/gi;
/** 256-bit keys in hex and v1 ciphertexts in text form never belong in a log, whatever their key name. */
const KEY_HEX = /\b[0-9a-fA-F]{64}\b/g;
const V1_TEXT = /\bv1\.[A-Za-z0-9_-]{40,}/g;

function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, '');
}

export function scrubString(value: string): string {
  return value.replace(EMAIL, '[redacted-email]').replace(KEY_HEX, REDACTED).replace(V1_TEXT, REDACTED);
}

/** Returns a copy of `value` with sensitive keys and sensitive-looking strings redacted. */
export function scrub(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 12) return '[depth]';
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1, seen));
  if (value instanceof Error) {
    return {
      type: value.name,
      message: scrubString(value.message),
      code: (value as { code?: unknown }).code,
    };
  }
  // Objects with their own JSON form (Secret, Date, URL) are rendered through it.
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return scrub(toJSON.call(value), depth + 1, seen);
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    out[key] =
      SENSITIVE_KEY.test(normaliseKey(key)) && key !== 'level' ? REDACTED : scrub(child, depth + 1, seen);
  }
  return out;
}

export interface CreateLoggerOptions {
  readonly level: LogLevelName;
  /** Service or component name, added as `service` to every line. */
  readonly name: string;
  /** Defaults to stdout. Tests pass a stream to read what was written. */
  readonly destination?: DestinationStream;
}

/**
 * The one root logger of a process: JSON lines, secrets and PII redacted before serialisation. Components
 * take `logger.child({ component })`; requests take `child({ requestId })`.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      // Path-based redaction (compiled once by pino) for the usual places, then a structural scrub of
      // everything else. The scrub runs only for lines that pass the level check.
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["x-pipeline-key"]',
          'req.headers["x-signature"]',
          'res.headers["set-cookie"]',
        ],
        censor: REDACTED,
      },
      formatters: {
        log: (object) => scrub(object) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          // Scrub the message string too (emails, hex keys, v1 ciphertexts).
          const scrubbed = args.map((arg) => (typeof arg === 'string' ? scrubString(arg) : arg));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
