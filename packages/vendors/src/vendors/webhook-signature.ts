import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signatures of the generic webhook. The same scheme as Signal's own server-source ingestion (`X-Signature`
 * over `timestamp + "." + body`), under `X-Signal-*` names:
 *
 *   X-Signal-Timestamp: <unix milliseconds>
 *   X-Signal-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>
 *
 * During a secret rotation the header carries one signature per secret, comma-separated
 * (`sha256=<a>, sha256=<b>`), so a receiver holding either secret accepts the request.
 */

export const SIGNATURE_HEADER = 'x-signal-signature';
export const TIMESTAMP_HEADER = 'x-signal-timestamp';
export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Default tolerance for the timestamp, either side of the receiver's clock. */
export const DEFAULT_SIGNATURE_TOLERANCE_MS = 5 * 60_000;

function hmacHex(secret: string, timestamp: string, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The `X-Signal-Signature` value for a body, with one `sha256=` entry per secret (current first). */
export function signWebhook(
  secrets: string | readonly string[],
  timestamp: string,
  body: string | Uint8Array,
): string {
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  return list.map((secret) => `sha256=${hmacHex(secret, timestamp, body)}`).join(', ');
}

export type WebhookVerification =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason:
        | 'missing_signature'
        | 'malformed_signature'
        | 'missing_timestamp'
        | 'timestamp_out_of_range'
        | 'signature_mismatch';
    };

export interface VerifyWebhookInput {
  /** The receiver's secret(s): during a rotation, both the new and the old one. */
  readonly secrets: string | readonly string[];
  readonly signature: string | undefined;
  readonly timestamp: string | undefined;
  /** The raw body exactly as received (before any JSON parsing). */
  readonly body: string | Uint8Array;
  /** Receiver clock, Unix ms. Default `Date.now()`. */
  readonly now?: number;
  readonly toleranceMs?: number;
}

const ENTRY = /^sha256=([0-9a-f]{64})$/;

/**
 * Checks a webhook request the way a receiver should: timestamp within the tolerance (replay window), then a
 * constant-time comparison of every offered signature against every secret. Receivers should also refuse a
 * repeated `Idempotency-Key` (or signature) inside the window.
 */
export function verifyWebhookSignature(input: VerifyWebhookInput): WebhookVerification {
  if (input.signature === undefined || input.signature.trim() === '')
    return { ok: false, reason: 'missing_signature' };
  if (input.timestamp === undefined || input.timestamp.trim() === '')
    return { ok: false, reason: 'missing_timestamp' };
  const timestamp = input.timestamp.trim();
  if (!/^\d{1,16}$/.test(timestamp)) return { ok: false, reason: 'timestamp_out_of_range' };
  const now = input.now ?? Date.now();
  const tolerance = input.toleranceMs ?? DEFAULT_SIGNATURE_TOLERANCE_MS;
  if (Math.abs(now - Number(timestamp)) > tolerance) return { ok: false, reason: 'timestamp_out_of_range' };

  const offered: Buffer[] = [];
  for (const entry of input.signature.split(',')) {
    const hex = ENTRY.exec(entry.trim())?.[1];
    if (hex === undefined) return { ok: false, reason: 'malformed_signature' };
    offered.push(Buffer.from(hex, 'hex'));
  }
  const secrets = typeof input.secrets === 'string' ? [input.secrets] : input.secrets;
  let match = false;
  for (const secret of secrets) {
    const expected = Buffer.from(hmacHex(secret, timestamp, input.body), 'hex');
    // No early exit: every pair is compared, so timing does not reveal which entry or secret matched.
    for (const candidate of offered) match = timingSafeEqual(expected, candidate) || match;
  }
  return match ? { ok: true } : { ok: false, reason: 'signature_mismatch' };
}
