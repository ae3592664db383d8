import { createHash, randomBytes } from 'node:crypto';
import { randomBase62 } from './ids';

export const PIPELINE_KEY_ENVIRONMENTS = ['live', 'test'] as const;
export type PipelineKeyEnvironment = (typeof PIPELINE_KEY_ENVIRONMENTS)[number];

/** `dk_live_` / `dk_test_` + 32 base62 characters (≈190 bits). */
export const PIPELINE_KEY_PATTERN = /^dk_(live|test)_[0-9A-Za-z]{32}$/;

export function newPipelineKey(environment: PipelineKeyEnvironment): string {
  return `dk_${environment}_${randomBase62(32)}`;
}

/** What humans see of a key after creation: prefix and the first four random characters. */
export function pipelineKeyHint(key: string): string {
  return `${key.slice(0, 12)}…`;
}

/**
 * Digest for lookups of high-entropy random secrets (pipeline keys, refresh tokens). A fast hash is right
 * here: the inputs are ≥ 190-bit random values, so there is nothing to brute-force, and lookups stay one
 * index probe.
 */
export function digestSecret(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * A pipeline's HMAC secret: 64 hex characters (256 bits). Senders use the string itself as the HMAC-SHA256
 * key (its ASCII bytes), and the gateway receives exactly those bytes.
 */
export function newHmacSecret(): string {
  return randomBytes(32).toString('hex');
}

/** Refresh tokens: 256 random bits, base64url. */
export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** A one-time password for invited users: 24 base62 characters (≈143 bits). */
export function newOneTimePassword(): string {
  return randomBase62(24);
}
