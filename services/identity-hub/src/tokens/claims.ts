import { randomBytes } from 'node:crypto';
import type { EncryptionContext } from '@signal/crypto';
import { resourceIdSchema } from '@signal/events';
import { ANONYMOUS_ID_PATTERN } from '@signal/http';
import { z } from 'zod';
import { isHostName } from './hosts';

/** The encryption purpose of cross-domain tokens (ARCHITECTURE §5). */
export const TOKEN_PURPOSE = 'xdomain-token';
/** Upper bound of a token's lifetime; deployments may configure less, never more. */
export const MAX_TOKEN_TTL_SECONDS = 120;

const hostSchema = z.string().refine(isHostName, 'must be a lower-case host name');

/**
 * What a token says, sealed inside it. Times are Unix seconds. `aud` is also bound into the encryption
 * context, so a token only opens where its audience is asked for; the copy in the claims is checked too
 * (defence in depth). `jti` is 128 random bits, base64url: the single-use key.
 */
export const tokenClaimsSchema = z
  .strictObject({
    anonymous_id: z.string().regex(ANONYMOUS_ID_PATTERN),
    org: resourceIdSchema,
    pipeline: resourceIdSchema,
    from: hostSchema,
    aud: hostSchema,
    iat: z.int().min(0),
    exp: z.int().min(0),
    jti: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  })
  .refine((c) => c.exp > c.iat && c.exp - c.iat <= MAX_TOKEN_TTL_SECONDS, {
    message: `exp must be after iat and at most ${MAX_TOKEN_TTL_SECONDS} s later`,
  });

export type TokenClaims = z.infer<typeof tokenClaimsSchema>;

/**
 * The context a token is sealed and opened under: purpose, the `tokens` data key, and the audience. Nothing
 * else: a token is not stored anywhere, so there is no table, column or row to bind it to.
 */
export function tokenContext(audience: string): EncryptionContext {
  return { purpose: TOKEN_PURPOSE, dataClass: 'tokens', extra: { aud: audience } };
}

export interface ClaimsInput {
  readonly anonymousId: string;
  readonly org: string;
  readonly pipeline: string;
  readonly from: string;
  readonly aud: string;
}

/** Fresh claims: `iat` now, `exp` after `ttlSeconds` (1…120), a new random `jti`. */
export function newClaims(input: ClaimsInput, nowMs: number, ttlSeconds: number): TokenClaims {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    throw new RangeError(`token lifetime must be 1-${MAX_TOKEN_TTL_SECONDS} seconds`);
  }
  const iat = Math.floor(nowMs / 1000);
  return tokenClaimsSchema.parse({
    anonymous_id: input.anonymousId,
    org: input.org,
    pipeline: input.pipeline,
    from: input.from,
    aud: input.aud,
    iat,
    exp: iat + ttlSeconds,
    jti: randomBytes(16).toString('base64url'),
  });
}

export type TimeVerdict = 'valid' | 'expired' | 'not_yet_valid';

/**
 * Checks the validity window with `skewSeconds` of tolerance on both ends (the issuing and the resolving
 * process may run on different machines): valid while `iat - skew <= now < exp + skew`.
 */
export function checkTimes(
  claims: Pick<TokenClaims, 'iat' | 'exp'>,
  nowMs: number,
  skewSeconds: number,
): TimeVerdict {
  const now = nowMs / 1000;
  if (now >= claims.exp + skewSeconds) return 'expired';
  if (now < claims.iat - skewSeconds) return 'not_yet_valid';
  return 'valid';
}

/** Parses decrypted claims; null when they are not exactly the shape this service seals. */
export function parseClaims(plaintext: string): TokenClaims | null {
  let json: unknown;
  try {
    json = JSON.parse(plaintext);
  } catch {
    return null;
  }
  const parsed = tokenClaimsSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}
