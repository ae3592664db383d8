import { isIP } from 'node:net';
import type { VendorRequestResult } from '@signal/http';
import type { CapturedResponse } from './outcome';

/** Longest body excerpt kept for the DLQ (`lastResponse.body`); the DLQ schema allows 4096. */
export const MAX_CAPTURED_BODY = 1024;
/** Longest per-event detail (a vendor's row error message). */
export const MAX_DETAIL = 300;
/** Only this much of a body is scanned: anything after it is cut away by the truncation anyway. */
const SCAN_LIMIT = 16 * 1024;
/** Shorter secrets are not searched for (they would blank unrelated text); schemas require longer ones. */
const MIN_SECRET_LENGTH = 8;

const REDACTED = '[redacted]';

/**
 * Patterns that identify a secret or PII regardless of the integration's own credentials: a vendor may echo
 * a token it was sent, or a person's address or IP in a validation message.
 */
const PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  // access_token=…, "api_secret": "…", client_secret: …
  [
    /((?:access[_-]?token|api[_-]?secret|client[_-]?secret|refresh[_-]?token|developer[_-]?token|secret|password|token)["']?\s*[:=]\s*["']?)[^"'&\s,;}]+/gi,
    `$1${REDACTED}`,
  ],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${REDACTED}`],
  [/[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+\.[A-Za-z]{2,}/g, '[email]'],
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, '[ip]'],
];

/**
 * IPv6 candidates (two colons or more); only real addresses are replaced, so `12:30:45` stays, and so does a
 * bare `::` (the unspecified address, no one's: LinkedIn's `ERROR :: /field :: message` separator).
 */
const IPV6_CANDIDATE = /[0-9A-Fa-f]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f.]*/g;

export type Redactor = (text: string) => string;

/**
 * Builds the scrubber for one integration: every credential string (as sent, URL-encoded and JSON-escaped)
 * plus the generic secret and PII patterns. Scrubbing happens before truncation, so a cut can never leave a
 * recognisable fragment of a secret that the full text would have had replaced.
 */
export function createRedactor(secrets: readonly string[]): Redactor {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  // Longest first, so a secret containing another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text.length > SCAN_LIMIT ? text.slice(0, SCAN_LIMIT) : text;
    for (const form of ordered) out = out.split(form).join(REDACTED);
    for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
    return out.replace(IPV6_CANDIDATE, (match) => (match !== '::' && isIP(match) === 6 ? '[ip]' : match));
  };
}

/** Every string leaf of a parsed credentials object (tokens nested in objects included). */
export function secretStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(secretStrings);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(secretStrings);
  return [];
}

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A scrubbed, truncated text, or undefined for an empty one. */
export function scrub(text: string | undefined, redact: Redactor, max: number): string | undefined {
  if (text === undefined) return undefined;
  const clean = truncate(redact(text).trim(), max);
  return clean === '' ? undefined : clean;
}

/** Longest error code kept (`lastResponse.errorCode`); the DLQ schema allows 128. */
const MAX_ERROR_CODE = 128;

/** HTTP statuses the DLQ schema (and RFC 9110) know: three digits, 100-599. */
function isHttpStatus(status: number): boolean {
  return Number.isInteger(status) && status >= 100 && status <= 599;
}

/**
 * The DLQ's view of a vendor answer: status and a scrubbed body start, or the network error code. Whatever a
 * vendor or a proxy in front of it answers, the result fits `dlqMessageSchema.lastResponse`: a status outside
 * 100-599 (LinkedIn's and some WAFs' `999`) is not a status, so it is kept as the error code
 * `http_status_<n>` instead; otherwise the dead letter built from it would fail validation and its batch
 * would be redelivered, and re-sent, forever.
 */
export function captureResponse(result: VendorRequestResult, redact: Redactor): CapturedResponse {
  if (result.type === 'network_error') {
    return { errorCode: result.error.code.slice(0, MAX_ERROR_CODE) };
  }
  const body = scrub(result.body, redact, MAX_CAPTURED_BODY);
  const status = isHttpStatus(result.status)
    ? { status: result.status }
    : { errorCode: `http_status_${String(result.status).slice(0, 32)}` };
  return { ...status, ...(body === undefined ? {} : { body }) };
}
