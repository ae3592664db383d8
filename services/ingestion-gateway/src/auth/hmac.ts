import { createHmac, timingSafeEqual } from 'node:crypto';

/** ±5 minutes, as the server-source contract promises senders (ARCHITECTURE §4). */
export const HMAC_MAX_SKEW_MS = 5 * 60 * 1000;

export type HmacFailure =
  | 'missing_signature'
  | 'malformed_signature'
  | 'missing_timestamp'
  | 'malformed_timestamp'
  | 'timestamp_skew'
  | 'bad_signature';

export type HmacVerdict =
  | {
      readonly ok: true;
      readonly signatureHex: string;
      readonly timestampMs: number;
      readonly secretIndex: number;
    }
  | { readonly ok: false; readonly reason: HmacFailure };

const SIGNATURE = /^sha256=([0-9a-f]{64})$/i;
const TIMESTAMP = /^\d{10,16}$/;

/** HMAC-SHA256(secret, timestamp + "." + raw body) as lowercase hex. */
export function signBody(secret: Buffer | string, timestamp: string, rawBody: Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
}

/**
 * Checks a server source's `X-Signature: sha256=<hex>` and `X-Timestamp: <unix ms>` against each currently
 * valid secret (the current one, and during a rotation's grace window the previous one). The comparison is
 * constant-time and every secret is tried, so timing tells nothing about which one matched. Replay of a
 * valid signature inside the window is the caller's job (it needs the shared cache).
 */
export function verifyHmac(input: {
  readonly signature: string | undefined;
  readonly timestamp: string | undefined;
  readonly rawBody: Buffer;
  readonly secrets: readonly Buffer[];
  readonly nowMs: number;
}): HmacVerdict {
  if (!input.signature) return { ok: false, reason: 'missing_signature' };
  const match = SIGNATURE.exec(input.signature.trim());
  if (!match?.[1]) return { ok: false, reason: 'malformed_signature' };
  if (!input.timestamp) return { ok: false, reason: 'missing_timestamp' };
  const timestamp = input.timestamp.trim();
  if (!TIMESTAMP.test(timestamp)) return { ok: false, reason: 'malformed_timestamp' };
  const timestampMs = Number(timestamp);
  if (Math.abs(input.nowMs - timestampMs) > HMAC_MAX_SKEW_MS) return { ok: false, reason: 'timestamp_skew' };

  const given = Buffer.from(match[1].toLowerCase(), 'hex');
  let matched = -1;
  input.secrets.forEach((secret, index) => {
    const expected = Buffer.from(signBody(secret, timestamp, input.rawBody), 'hex');
    if (timingSafeEqual(expected, given) && matched === -1) matched = index;
  });
  if (matched === -1) return { ok: false, reason: 'bad_signature' };
  return { ok: true, signatureHex: match[1].toLowerCase(), timestampMs, secretIndex: matched };
}
